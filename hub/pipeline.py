"""Envelope → connector.parse → normalizer → ticket core, one transaction per envelope.

The envelope is claimed (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), applied in a savepoint,
and marked in the same transaction: ``processed`` together with its ticket message, so it is
never applied twice, or ``failed`` with its error, to be retried later while the others go on.
One envelope per transaction keeps a worker from holding the locks of one new customer while
it waits for another's, which deadlocks two PostgreSQL workers whose batches share customers.
SQLite has one writer at a time and no such deadlock, so there the envelopes of a round share
a transaction (still a savepoint each) for up to ``SHARED_SECONDS``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

import structlog
from pydantic import ValidationError
from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from hub import notices, progress_codes
from hub.backoff import Backoff
from hub.ingest import store_envelope
from hub.logs import redact_text
from hub.metrics import PROCESSED
from hub.outbox import enqueue_message
from hub.reactions import Reactions, forget_pending
from hub.registry import Registry
from hub.sdk import ApplyResult, InboundEnvelope, TicketCommand, Unreadable
from hub.settings import Settings
from hub.sla import auto_close_after
from hub.store import Envelope, EnvelopeStatus, SessionFactory
from hub.thread_hints import ticket_for_hints
from normalizer import build_understanding, normalize
from normalizer.routing import Router
from ticket_core import (
    DEFAULT_BOOK,
    Clock,
    IllegalTransition,
    IncomingAttachment,
    Outcome,
    PolicyBook,
    Status,
    TicketNotFound,
    TransitionRequest,
    add_attachments,
    add_note,
    add_outbound,
    add_reference,
    get_ticket,
    latest_reply_address,
    receive,
    transition,
)

log = structlog.get_logger(__name__)

SHARED_SECONDS = 0.1
"""On SQLite, how long envelopes keep adding to one transaction before it commits."""


class ConnectorMissing(Exception):
    pass


def describe_error(exc: Exception) -> str:
    """The error as operators see it (stored, logged, shown on receipts): it names the problem
    but never carries the message's content."""
    if isinstance(exc, ValidationError):
        fields = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
            for err in exc.errors(include_url=False, include_input=False)
        )
        return f"ValidationError: {fields}"[:2000]
    return redact_text(f"{type(exc).__name__}: {exc}")[:2000]


@dataclass(frozen=True, slots=True)
class Processed:
    ticket_number: str | None
    message_id: int | None


class Pipeline:
    def __init__(
        self,
        sessions: SessionFactory,
        registry: Registry,
        clock: Clock,
        settings: Settings,
        identity_key: bytes,
        reactions: Reactions,
        book: PolicyBook = DEFAULT_BOOK,
    ) -> None:
        self._sessions = sessions
        self._reactions = reactions
        self._book = book
        self._auto_close_after = auto_close_after(settings.tickets.auto_close_days)
        taxonomy = settings.classify.taxonomy
        self._understanding = build_understanding(
            str(taxonomy) if taxonomy else None,
            settings.classify.plugins,
            settings.classify.min_confidence,
        )
        self._router = Router.parse(settings.routing.rules)
        self._registry = registry
        self._shared_transactions = settings.database.is_sqlite
        self._clock = clock
        self._identity_key = identity_key
        self._max_attempts = settings.worker.envelope_max_attempts
        self._reopen_window = timedelta(days=settings.tickets.reopen_window_days)
        self._backoff = Backoff(
            settings.worker.envelope_backoff_initial, settings.worker.envelope_backoff_max
        )

    def warm_up(self) -> None:
        """Do the classifier's one-time loading now (``serve`` and ``worker`` call this before
        they report ready)."""
        self._understanding.warm_up()

    async def process_once(self, limit: int = 50) -> int:
        """Claim and process up to ``limit`` due envelopes; returns how many were attempted."""
        now = self._clock.now()
        # Only channels enabled here: a worker without a connector leaves its envelopes to
        # one that has it, instead of spending their retries.
        channels = [name for name, _ in self._registry.items()]
        if not channels:
            return 0
        query = (
            select(Envelope)
            .where(col(Envelope.channel).in_(channels))
            .where(col(Envelope.status).in_([EnvelopeStatus.pending, EnvelopeStatus.failed]))
            .where(Envelope.next_attempt_at <= now)
            .where(Envelope.attempts < self._max_attempts)
            .order_by(col(Envelope.id))
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if self._shared_transactions:
            return await self._process_shared(query, limit, now)
        for done in range(limit):
            async with self._sessions() as session, session.begin():
                row = (await session.exec(query)).first()
                if row is None:
                    return done
                await self._process_one(session, row, now)
        return limit

    async def _process_shared(
        self, query: SelectOfScalar[Envelope], limit: int, now: datetime
    ) -> int:
        """SQLite: envelopes share a transaction (each still in its own savepoint, marked
        ``failed`` alone when it fails), committed every ``SHARED_SECONDS`` or at the end.
        SQLite has one writer at a time, so no two workers can deadlock on customers here;
        the commit (a disk flush at ``synchronous=FULL``), ``BEGIN IMMEDIATE`` and the session
        are paid once per transaction instead of once per envelope, and the write lock is
        never held for longer than about ``SHARED_SECONDS`` at a time, so acks still get in."""
        done = 0
        while done < limit:
            asked = limit - done
            started = time.monotonic()
            async with self._sessions() as session, session.begin():
                rows = (await session.exec(query.limit(asked))).all()
                for row in rows:
                    await self._process_one(session, row, now)
                    done += 1
                    if time.monotonic() - started > SHARED_SECONDS:
                        break  # the rest are still due: the next transaction claims them
            if len(rows) < asked and done - (limit - asked) == len(rows):
                return done  # fewer were due than asked for, and all of them are done
        return done

    async def _process_one(
        self, session: AsyncSession, row: Envelope, now: datetime
    ) -> Literal["applied", "refused", "not_found", "deferred"]:
        row_id, attempts, channel = row.id, row.attempts, row.channel
        try:
            async with session.begin_nested():
                done = await self._apply(session, row, now)
                await self._reactions.run(session, now)
                row.status = EnvelopeStatus.processed
                row.processed_at = now
                row.attempts = attempts + 1
                row.last_error = None
                row.ticket_number = done.ticket_number
                row.message_id = done.message_id
                session.add(row)
            PROCESSED.labels(row.channel, "processed").inc()
            return "applied"
        except (IllegalTransition, TicketNotFound, Unreadable) as refusal:
            # The ticket's rules said no, or the connector can never read the envelope: final,
            # never retried, kept with the reason (the raw bytes stay in the envelope).
            forget_pending(session)
            await session.exec(
                update(Envelope)
                .where(col(Envelope.id) == row_id)
                .values(
                    status=EnvelopeStatus.refused,
                    attempts=attempts + 1,
                    last_error=str(refusal),
                    processed_at=now,
                )
            )
            PROCESSED.labels(channel, "refused").inc()
            return "not_found" if isinstance(refusal, TicketNotFound) else "refused"
        except Exception as exc:
            forget_pending(session)
            error = describe_error(exc)
            delay = self._backoff.delay(attempts + 1)
            await session.exec(
                update(Envelope)
                .where(col(Envelope.id) == row_id)
                .values(
                    status=EnvelopeStatus.failed,
                    attempts=attempts + 1,
                    last_error=error,
                    next_attempt_at=now + timedelta(seconds=delay),
                )
            )
            PROCESSED.labels(channel, "failed").inc()
            log.warning("envelope.failed", envelope=row_id, attempt=attempts + 1, error=error)
            return "deferred"

    async def apply_now(self, envelope: InboundEnvelope) -> ApplyResult:
        """Store and apply in one transaction, for peers that must hear the outcome at once;
        a repeat of the external id answers as the first time did."""
        now = self._clock.now()
        async with self._sessions() as session, session.begin():
            stored = await store_envelope(session, envelope)
            row = (
                await session.exec(select(Envelope).where(Envelope.receipt == stored.receipt))
            ).one()
            if stored.created:
                outcome = await self._process_one(session, row, now)
                await session.refresh(row)
            else:
                outcome = _outcome_of(row)
            return ApplyResult(
                stored.receipt, stored.created, outcome, row.last_error or "", row.ticket_number
            )

    async def _apply(self, session: AsyncSession, row: Envelope, now: datetime) -> Processed:
        connector = self._registry.get(row.channel)
        if connector is None:
            raise ConnectorMissing(f"no enabled connector for channel {row.channel!r}")
        envelope = InboundEnvelope(
            channel=row.channel,
            external_id=row.external_id,
            body=row.body,
            content_type=row.content_type,
            received_at=row.received_at,
            headers=row.headers,
            metadata=row.meta,
        )
        parsed = connector.parse(envelope)
        if isinstance(parsed, TicketCommand):
            return await self._command(session, parsed, now)
        if parsed.attaches_to is not None:
            # Media fetched after its message (WeChat): onto that message, no new ticket. A
            # message not yet applied raises MessageNotFound, and this envelope is retried.
            ticket, message = await add_attachments(
                session,
                channel=envelope.channel,
                external_id=parsed.attaches_to,
                attachments=tuple(
                    IncomingAttachment(a.name, a.content_type, a.data) for a in parsed.attachments
                ),
                note=parsed.text.strip() or None,
                now=now,
            )
            return Processed(ticket.number, message.id)
        if not parsed.opens_ticket:
            return Processed(None, None)
        if parsed.thread_hints:
            number = await ticket_for_hints(session, envelope.channel, parsed.thread_hints)
            if number is not None:
                parsed = replace(parsed, ticket_reference=number)
        incoming = normalize(envelope, parsed, self._understanding, self._router)
        intake = await receive(
            session,
            incoming,
            identity_key=self._identity_key,
            now=now,
            reopen_window=self._reopen_window,
            book=self._book,
        )
        ticket = intake.ticket
        if intake.opened and connector.capabilities.customer_messages:
            # The customer's progress code travels once, in the acknowledgement's outbox row;
            # the ticket keeps its keyed hash and the stored message shows it masked.
            assert ticket.number is not None
            code = progress_codes.issue()
            ticket.progress_code_hash = progress_codes.digest(
                self._identity_key, ticket.number, code
            )
            ack = await add_outbound(
                session,
                ticket,
                text=notices.render("acknowledgement", ticket, code=progress_codes.MASK),
                author="system",
                purpose="acknowledgement",
                reply_to=incoming.reply_to,
                now=now,
            )
            row = enqueue_message(session, ticket, ack, now)
            row.payload = {
                **row.payload,
                "text": notices.render("acknowledgement", ticket, code=code),
            }
        if intake.opened:
            # A channel that is not the customer's (a regulator's desk) gets no acknowledgement:
            # the bank contacts the complainant itself (POST /tickets/{n}/contacts).
            await transition(
                session, ticket, TransitionRequest(Status.open), actor="system", now=now
            )
        return Processed(ticket.number, intake.message.id)

    async def _command(
        self, session: AsyncSession, command: TicketCommand, now: datetime
    ) -> Processed:
        ticket = await get_ticket(session, command.ticket_number, for_update=True)
        actor = command.actor
        if command.reference is not None:
            kind, value = command.reference
            await add_reference(session, ticket, kind=kind, value=value, actor=actor, now=now)
        if command.note:
            await add_note(session, ticket, text=command.note, author=actor, now=now)
        if command.status:
            request = TransitionRequest(
                Status(command.status),
                Outcome(command.outcome) if command.outcome else None,
                command.summary,
            )
            await transition(
                session,
                ticket,
                request,
                actor=actor,
                now=now,
                book=self._book,
                auto_close_after=self._auto_close_after,
            )
        message_id = None
        if command.customer_message:
            if ticket.status in (Status.closed, Status.under_review):
                raise IllegalTransition(
                    ticket.status,
                    ticket.status,
                    f"the ticket is {ticket.status}; nothing can be sent to the customer now",
                )
            message = await add_outbound(
                session,
                ticket,
                text=command.customer_message,
                author=actor,
                purpose="progress",
                reply_to=await latest_reply_address(session, ticket),
                now=now,
                book=self._book,
            )
            enqueue_message(session, ticket, message, now)
            message_id = message.id
        return Processed(ticket.number, message_id)


def _outcome_of(row: Envelope) -> Literal["applied", "refused", "not_found", "deferred"]:
    if row.status == EnvelopeStatus.processed:
        return "applied"
    if row.status == EnvelopeStatus.refused:
        return "not_found" if (row.last_error or "").startswith("no ticket") else "refused"
    return "deferred"
