"""Which ticket a mail belongs to, on the strongest evidence first.

1. Our reply address token: mail to ``support+TD-20261123-000001@bank.example`` was written to
   that ticket's address, which only our own mail handed out.
2. In-Reply-To and References naming a mail we sent: our Message-IDs carry the ticket number
   (``<TD-20261123-000001.<digest>@bank.example>``), so a reply from any client threads even
   when the customer rewrote the subject. Ids of mail we *received* are passed to the hub as
   ``thread_hints``: only the hub knows which ticket holds them.
3. A ``[TD-…]`` token in the subject, which customers keep, edit, or type themselves.

Every piece of evidence is a claim the hub still checks: it threads a message onto a ticket
only when the ticket belongs to the same customer, so a forged token opens a new ticket
rather than joining someone else's.

Our Message-IDs are derived from the outbox idempotency key, so a retried delivery carries the
same id and the customer's client (and the customer's reply) sees one message, not two.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

TICKET_NUMBER = re.compile(r"TD-\d{8}-\d{6,12}")
_BRACKETED = re.compile(r"\[\s*(TD-\d{8}-\d{6,12})\s*\]")
_OUR_ID = re.compile(r"^<(TD-\d{8}-\d{6,12})\.([0-9a-f]{24})@([^<>@\s]+)>$")
_REPLY_PREFIX = re.compile(
    r"^\s*((re|fw|fwd|aw|wg|sv|vs|tr|antw|答复|回复|回覆|答覆|转发|轉寄|转寄)\s*(\[\d+\])?\s*[:：]\s*)+",
    re.IGNORECASE,
)


def outbound_message_id(ticket_number: str, idempotency_key: str, domain: str) -> str:
    """Our Message-ID for one outbound delivery: the same on every attempt."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]
    return f"<{ticket_number}.{digest}@{domain.lower()}>"


def is_our_message_id(message_id: str, domains: Iterable[str]) -> bool:
    match = _OUR_ID.match(message_id)
    return match is not None and match.group(3).lower() in {d.lower() for d in domains}


def ticket_from_message_ids(ids: Iterable[str], domains: Iterable[str]) -> str | None:
    """The ticket of the nearest mail of ours that ``ids`` (In-Reply-To, then References
    newest first) name."""
    ours = {d.lower() for d in domains}
    for message_id in ids:
        match = _OUR_ID.match(message_id)
        if match and match.group(3).lower() in ours:
            return match.group(1)
    return None


def reply_address(address: str, ticket_number: str) -> str:
    """``support@bank.example`` → ``support+TD-20261123-000001@bank.example``."""
    local, _, domain = address.rpartition("@")
    return f"{local}+{ticket_number}@{domain}"


def ticket_from_recipients(recipients: Iterable[str], our_addresses: Iterable[str]) -> str | None:
    """The ticket named by a plus-address of ours among the recipients."""
    ours = {a.lower() for a in our_addresses}
    for recipient in recipients:
        local, _, domain = recipient.rpartition("@")
        base, plus, tag = local.partition("+")
        if plus and f"{base}@{domain}".lower() in ours and TICKET_NUMBER.fullmatch(tag.upper()):
            return tag.upper()
    return None


def ticket_from_subject(subject: str) -> str | None:
    """A ``[TD-…]`` token, or else a bare ticket number the customer typed."""
    match = _BRACKETED.search(subject) or TICKET_NUMBER.search(subject)
    if match is None:
        return None
    return match.group(1) if match.re is _BRACKETED else match.group(0)


def clean_subject(subject: str) -> str:
    """The subject without reply/forward prefixes and our ticket token: what the mail is
    about, for the ticket and for our answer's ``Re:``."""
    subject = _BRACKETED.sub(" ", subject)
    subject = _REPLY_PREFIX.sub("", subject)
    return " ".join(subject.split())[:200]


def answer_subject(subject: str, ticket_number: str, fallback: str) -> str:
    """``Re: <subject> [TD-…]``: replies in the customer's client thread by subject too, and
    the token survives if the customer starts a new mail from it. ``fallback`` stands in for
    a customer's mail that had no subject."""
    base = clean_subject(subject)
    if base:
        return f"Re: {base} [{ticket_number}]"
    return f"{fallback} [{ticket_number}]" if fallback else f"[{ticket_number}]"
