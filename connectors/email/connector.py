"""The email channel: IMAP mailboxes (and optionally LMTP/SMTP delivery) in, SMTP out.

Inbound, the hub polls (``poll``; the cursor holds each mailbox's UIDVALIDITY and last UID)
and an IDLE watcher per mailbox takes new mail in between polls. Every mail is stored raw as
an envelope keyed by its Message-ID. ``parse`` then reads it (``reading``), decides whether it
may open a ticket at all (machines' mail never does, nor our own mail coming back), and finds
its ticket on the strongest evidence (``threads``). Outbound, ``send`` composes and sends an
answer that threads in the customer's client (``sending``).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from typing import Any, ClassVar

import structlog

from connectors.email import threads
from connectors.email.config import EmailConfig, OAuth2
from connectors.email.cursor import Cursor
from connectors.email.imap import ImapError
from connectors.email.intake import IntakeServer
from connectors.email.mailboxes import CONTENT_TYPE, IdleWatcher, MailboxReader
from connectors.email.oauth import TokenError, TokenSource
from connectors.email.reading import Limits, ReadMail, Refused, read_mail
from connectors.email.reading import external_id as mail_external_id
from connectors.email.sending import TokenProvider, send, smtp_client
from hub.sdk import (
    MIB,
    Attachment,
    Capabilities,
    ChannelConnector,
    ConnectorContext,
    DeliveryResult,
    Health,
    Identity,
    InboundEnvelope,
    InboundMessage,
    IngestResult,
    OutboundMessage,
    PollResult,
)

log = structlog.get_logger(__name__)

FULL_TEXT_NAME = "邮件原文.txt"
"""When quoted history or a signature was cut from the ticket text, the whole text is kept
beside it under this name, so an agent can always read what the customer sent."""
EMPTY_TEXT = "（邮件无正文）"
_FUTURE_SLACK = timedelta(days=1)
_MAX_HINTS = 20
_MAX_REPLY_REFERENCES = 9


class EmailConnector(ChannelConnector[EmailConfig]):
    name = "email"
    sdk_version = "1.1"
    Config = EmailConfig
    capabilities = Capabilities(
        inbound=True,
        outbound=True,
        message_kinds=("text",),
        attachments=True,
        max_attachment_bytes=10 * MIB,
    )
    poll_interval: ClassVar[float | None] = 60.0

    def __init__(self, config: EmailConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        # The configured interval, read by the hub from the instance (the class default is
        # only what ``tongdao connectors list`` shows).
        self.poll_interval = config.poll_seconds  # type: ignore[misc]
        self._tokens: dict[tuple[str, ...], TokenSource] = {}
        self._readers = {
            box.name: MailboxReader(
                config,
                box,
                channel=self.name,
                clock=context.clock,
                state=context.state,
                tokens=self._token_source(box.oauth2),
            )
            for box in config.mailboxes
        }
        self._limits = Limits(
            max_attachment_bytes=config.max_attachment_bytes,
            max_attachments=config.max_attachments,
            max_text_chars=config.max_text_chars,
        )
        self._problems: dict[str, str] = {}
        self._stop = asyncio.Event()
        self.watchers: dict[str, IdleWatcher] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.intake: IntakeServer | None = None

    def _token_source(self, settings: OAuth2 | None) -> TokenSource | None:
        if settings is None:
            return None
        key = (
            str(settings.token_url),
            settings.client_id,
            settings.client_secret.get_secret_value(),
            settings.scope,
        )
        if key not in self._tokens:
            self._tokens[key] = TokenSource(settings, self.context.http, self.context.clock)
        return self._tokens[key]

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        self._stop.clear()
        if self.config.idle:
            for name, reader in self._readers.items():
                watcher = IdleWatcher(
                    reader,
                    ingest=self.context.ingest,
                    state=self.context.state,
                    clock=self.context.clock,
                )
                self.watchers[name] = watcher
                self._tasks.append(asyncio.create_task(watcher.run(self._stop)))
        if self.config.intake is not None:
            self.intake = IntakeServer(self.config, self._deliver)
            await self.intake.start()

    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()  # a watcher may be minutes into an IDLE
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self.intake is not None:
            await self.intake.stop()
            self.intake = None

    # --- inbound --------------------------------------------------------------------

    async def poll(self, cursor: str | None) -> PollResult:
        """Every mailbox after its position; one failing mailbox never holds up another, and
        never loses the position it reached before failing."""
        state = Cursor.load(cursor)
        envelopes: list[InboundEnvelope] = []
        for name, reader in self._readers.items():
            try:
                polled = await reader.poll(state.get(name))
            except (ImapError, TokenError) as exc:
                self._problems[name] = str(exc)
                log.warning("email.poll_failed", mailbox=name, error=str(exc))
                continue
            envelopes.extend(polled.envelopes)
            if polled.position is not None:
                state = state.with_position(name, polled.position)
            if polled.error:
                self._problems[name] = polled.error
                log.warning("email.poll_interrupted", mailbox=name, error=polled.error)
            else:
                self._problems.pop(name, None)
        return PollResult(tuple(envelopes), state.dump() if state.positions else cursor)

    async def _deliver(self, raw: bytes, metadata: dict[str, Any]) -> IngestResult:
        """A mail handed over by the intake server: stored before the server is answered."""
        return await self.context.ingest.accept(
            InboundEnvelope(
                channel=self.name,
                external_id=mail_external_id(raw),
                body=raw,
                content_type=CONTENT_TYPE,
                received_at=self.context.clock.now(),
                metadata=metadata,
            )
        )

    def parse(self, envelope: InboundEnvelope) -> InboundMessage:
        meta = envelope.metadata
        size = meta.get("size")
        truncated = bool(meta.get("truncated")) and isinstance(size, int)
        mail = read_mail(envelope.body, self._limits, truncated_size=size if truncated else None)
        config = self.config
        sender = mail.sender
        if sender is None:  # only a machine's mail gets this far without one
            return InboundMessage(
                text="", identities=(), sent_at=envelope.received_at, opens_ticket=False
            )
        ours = {a.lower() for a in config.our_addresses}
        opens = not (
            mail.automation is not None
            or sender.address.lower() in ours
            or (mail.message_id and threads.is_our_message_id(mail.message_id, [config.id_domain]))
            or self._ignored(sender.address)
        )
        recipients = [*_strings(meta.get("rcpt_to")), *mail.recipients]
        nearest_first = [*mail.in_reply_to, *reversed(mail.references)]
        reference = threads.ticket_from_recipients(
            recipients, config.our_addresses
        ) or threads.ticket_from_message_ids(nearest_first, [config.id_domain])
        hints: tuple[str, ...] = ()
        if reference is None:
            hints = tuple(dict.fromkeys(nearest_first))[:_MAX_HINTS]
            reference = threads.ticket_from_subject(mail.subject)
        subject = threads.clean_subject(mail.subject)
        return InboundMessage(
            text=_ticket_text(mail, subject),
            identities=(Identity("email", sender.address, verified=True),),
            sent_at=_sent_at(mail.sent_at, envelope.received_at),
            reply_address=self._reply_address(mail, sender.address, subject),
            display_name=sender.name or None,
            subject=subject,
            ticket_reference=reference,
            attachments=_attachments(mail),
            opens_ticket=opens,
            received_at=_arrived_at(meta.get("arrived_at"), envelope.received_at),
            thread_hints=hints,
        )

    def _ignored(self, address: str) -> bool:
        address = address.lower()
        domain = "@" + address.rpartition("@")[2]
        return any(item in (address, domain) for item in self.config.ignore_senders)

    def _reply_address(self, mail: ReadMail, address: str, subject: str) -> dict[str, Any]:
        """Where and how to answer: the sender's address (never a Reply-To the mail names: a
        forged sender must not receive the real customer's answers), the mail answered, its
        thread, and its subject."""
        chain = list(mail.references)
        if len(chain) > _MAX_REPLY_REFERENCES:  # the root and the nearest thread best
            chain = [chain[0], *chain[-(_MAX_REPLY_REFERENCES - 1) :]]
        return {
            "email": address,
            "message_id": mail.message_id,
            "references": chain,
            "subject": subject,
        }

    # --- outbound -------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        try:
            return await send(self.config, message, self._smtp_token())
        except TokenError as exc:
            return DeliveryResult.retry(f"no access token for SMTP: {exc}")

    def _smtp_token(self) -> TokenProvider | None:
        smtp = self.config.smtp
        if smtp is None or smtp.oauth2 is None:
            return None
        source = self._token_source(smtp.oauth2)
        assert source is not None
        return source.token

    # --- health ---------------------------------------------------------------------

    async def health(self) -> Health:
        """Each mailbox reachable and its folder open, the SMTP server answering (and taking
        our login), and the intake listening; the first problem found is the detail."""
        problems: list[str] = []
        for name, reader in self._readers.items():
            try:
                session = await reader.open()
                try:
                    await session.select()
                finally:
                    await session.close()
            except (ImapError, TokenError) as exc:
                problems.append(f"mailbox {name}: {exc}")
                continue
            if name in self._problems:  # reachable now, but the last poll stopped short
                problems.append(f"mailbox {name}, last poll: {self._problems[name]}")
        if self.config.smtp is not None:
            problem = await self._smtp_problem()
            if problem:
                problems.append(f"smtp: {problem}")
        if self.intake is not None and self.intake.problem:
            problems.append(f"intake: {self.intake.problem}")
        for name, watcher in self.watchers.items():
            if watcher.status.startswith("reconnecting"):
                problems.append(f"idle {name}: {watcher.status}")
        if problems:
            return Health(ok=False, detail="; ".join(problems)[:1000])
        parts = [f"{len(self._readers)} mailbox(es) ok"]
        if self.config.smtp is not None:
            parts.append(f"smtp {self.config.smtp.host}:{self.config.smtp.port} ok")
        if self.intake is not None:
            parts.append(f"intake on port {self.intake.port}")
        return Health(ok=True, detail=", ".join(parts))

    async def _smtp_problem(self) -> str | None:
        smtp = self.config.smtp
        assert smtp is not None
        try:
            async with smtp_client(smtp, self.config.timeout_seconds, self._smtp_token()) as client:
                await client.noop()
        except Exception as exc:
            return f"{smtp.host}:{smtp.port} {type(exc).__name__}: {exc}"[:300]
        return None


def _strings(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _ticket_text(mail: ReadMail, subject: str) -> str:
    text = mail.text or subject or ("" if mail.attachments else EMPTY_TEXT)
    if mail.refused:
        text += "\n\n" + _refused_note(mail.refused)
    return text.strip()


def _refused_note(refused: tuple[Refused, ...]) -> str:
    lines = ["[未收录的附件 / attachments not taken in]"]
    lines += [f"- {item.name}: {item.reason}" for item in refused]
    return "\n".join(lines)


def _attachments(mail: ReadMail) -> tuple[Attachment, ...]:
    found = list(mail.attachments)
    if mail.full_text and mail.full_text.strip() != mail.text.strip():
        found.append(Attachment(FULL_TEXT_NAME, "text/plain", mail.full_text.encode()))
    return tuple(found)


def _sent_at(sent_at: datetime | None, received_at: datetime) -> datetime:
    """The Date header is the sender's claim: used when plausible, never in the future."""
    if sent_at is None or sent_at > received_at + _FUTURE_SLACK:
        return received_at
    return min(sent_at, received_at)


def _arrived_at(value: object, received_at: datetime) -> datetime | None:
    """When the bank's mail server took the mail (IMAP INTERNALDATE): the regulatory clock
    starts there, not when the hub got round to it. Never later than the hub's own time."""
    if not isinstance(value, str):
        return None
    try:
        arrived = datetime.fromisoformat(value)
    except ValueError:
        return None
    if arrived.tzinfo is None:
        return None
    return arrived if arrived < received_at else None
