"""Answers by mail: composed so they thread in the customer's client, sent through aiosmtplib,
and every outcome read as delivered, retry or give up.

Threading: ``Message-ID`` is derived from the outbox idempotency key (a retry sends the same
id, so a duplicate that slipped through shows as one mail), ``In-Reply-To`` and
``References`` name the customer's last mail, the subject is theirs with ``Re:`` and the
ticket token, and with ``plus_addressing`` the Reply-To carries the token too.

Loops: mail the hub writes by itself (acknowledgements, progress notices) says so with
``Auto-Submitted`` (RFC 3834) and Exchange's ``X-Auto-Response-Suppress``, so a customer's
out-of-office responder stays quiet; an agent's reply is a person's mail and carries neither.

Outcomes (RFC 5321 reply codes): 2xx delivered; 4xx (greylisting, a full queue, rate limits),
lost connections and timeouts are retried; 5xx is final and given up with the code kept, so
agents see "550 5.1.1 user unknown" on the message. A refused login is retried, not given up:
it is our configuration, not the message, that is wrong, and it comes right once fixed.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

import aiosmtplib

from connectors.email.config import EmailConfig, Security, SmtpServer
from connectors.email.headers import canonical_address
from connectors.email.imap import tls_context
from connectors.email.threads import answer_subject, outbound_message_id, reply_address
from hub.sdk import DeliveryResult, DeliveryStatus, OutboundMessage

HUMAN_PURPOSES = frozenset({"reply"})
"""Purposes written by a person; everything else the hub sends on its own."""

_MAX_REFERENCES = 10


class Undeliverable(Exception):
    """The message cannot be sent as it stands (no usable recipient); final."""


def compose(config: EmailConfig, message: OutboundMessage) -> tuple[EmailMessage, str]:
    """The mail for ``message`` and the address it goes to."""
    recipient = canonical_address(str(message.recipient.get("email") or ""))
    if recipient is None:
        raise Undeliverable("the recipient has no usable mail address")
    if recipient.lower() in {a.lower() for a in config.our_addresses}:
        raise Undeliverable("the recipient is one of our own addresses; not sending to ourselves")
    mail = EmailMessage(policy=policy.SMTP)
    local, _, domain = config.address.rpartition("@")
    mail["From"] = (
        Address(config.display_name, local, domain) if config.display_name else (config.address)
    )
    mail["To"] = recipient
    if config.plus_addressing:
        mail["Reply-To"] = reply_address(config.address, message.ticket_number)
    mail["Subject"] = answer_subject(
        str(message.recipient.get("subject") or ""), message.ticket_number, config.fallback_subject
    )
    mail["Date"] = format_datetime(message.created_at)
    mail["Message-ID"] = outbound_message_id(
        message.ticket_number, message.idempotency_key, config.id_domain
    )
    parent = message.recipient.get("message_id")
    if isinstance(parent, str) and parent.startswith("<") and parent.endswith(">"):
        mail["In-Reply-To"] = parent
        mail["References"] = " ".join(_references(message.recipient.get("references"), parent))
    if message.purpose not in HUMAN_PURPOSES:
        mail["Auto-Submitted"] = (
            "auto-replied" if message.purpose == "acknowledgement" else "auto-generated"
        )
        mail["X-Auto-Response-Suppress"] = "All"
    mail["X-Tongdao-Ticket"] = message.ticket_number
    mail.set_content(message.text, charset="utf-8")
    return mail, recipient


def _references(earlier: object, parent: str) -> list[str]:
    """The parent's References plus the parent (RFC 5322 3.6.4), the first and the latest
    kept when the chain is long: clients need the root and the nearest to thread."""
    chain = [r for r in earlier if isinstance(r, str)] if isinstance(earlier, list) else []
    chain = [r for r in chain if r != parent] + [parent]
    if len(chain) > _MAX_REFERENCES:
        chain = [chain[0], *chain[-(_MAX_REFERENCES - 1) :]]
    return chain


TokenProvider = Callable[[], Awaitable[str]]


def smtp_client(server: SmtpServer, timeout: float, token: TokenProvider | None) -> aiosmtplib.SMTP:
    context = tls_context(server.ca_file) if server.security != Security.none else None
    return aiosmtplib.SMTP(
        hostname=server.host,
        port=server.port,
        username=server.username or None,
        password=server.password.get_secret_value() if server.password else None,
        oauth_token_generator=token if server.oauth2 is not None else None,
        use_tls=server.security == Security.ssl,
        start_tls=server.security == Security.starttls,
        tls_context=context,
        timeout=timeout,
        local_hostname=server.local_hostname,
    )


async def send(
    config: EmailConfig, message: OutboundMessage, token: TokenProvider | None = None
) -> DeliveryResult:
    """Send one message; never raises for the server's behaviour."""
    if config.smtp is None:
        return DeliveryResult.give_up("connectors.email.smtp is not configured")
    try:
        mail, recipient = compose(config, message)
    except Undeliverable as exc:
        return DeliveryResult.give_up(str(exc))
    message_id = str(mail["Message-ID"])
    try:
        client = smtp_client(config.smtp, config.timeout_seconds, token)
    except (OSError, ssl.SSLError) as exc:
        return DeliveryResult.retry(f"cannot use connectors.email.smtp.ca_file: {exc}")
    try:
        async with client:
            _, answer = await client.send_message(
                mail, sender=config.address, recipients=[recipient]
            )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        refused = exc.recipients[0] if exc.recipients else None
        if refused is None:
            return DeliveryResult.retry("recipient refused without a reply code")
        return _by_code(refused.code, refused.message, "recipient refused")
    except aiosmtplib.SMTPAuthenticationError as exc:
        return DeliveryResult(
            DeliveryStatus.retry,
            f"SMTP login refused ({exc.code} {_excerpt(exc.message)}): check "
            "connectors.email.smtp credentials",
            status_code=exc.code,
            response_excerpt=_excerpt(exc.message),
        )
    except aiosmtplib.SMTPResponseException as exc:
        return _by_code(exc.code, exc.message, _step(exc))
    except (aiosmtplib.SMTPTimeoutError, TimeoutError):
        return DeliveryResult.retry("SMTP server timed out")
    except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
        return DeliveryResult.retry(f"SMTP connection failed: {type(exc).__name__}: {exc}"[:300])
    return DeliveryResult(
        DeliveryStatus.delivered,
        peer_reference=message_id,
        status_code=250,
        response_excerpt=_excerpt(answer),
    )


def _by_code(code: int, text: str, step: str) -> DeliveryResult:
    excerpt = _excerpt(text)
    reason = f"{step}: {code} {excerpt}".strip()
    status = DeliveryStatus.give_up if 500 <= code < 600 else DeliveryStatus.retry
    return DeliveryResult(status, reason, status_code=code, response_excerpt=excerpt)


def _step(exc: aiosmtplib.SMTPResponseException) -> str:
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        return "sender refused"
    if isinstance(exc, aiosmtplib.SMTPDataError):
        return "message refused"
    return "SMTP error"


def _excerpt(text: str) -> str:
    return " ".join(str(text).split())[:200]
