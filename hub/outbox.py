"""The durable outbound queue and its dispatcher.

Rows are written in the same transaction as the change that causes them. The dispatcher
claims due rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; the single ``BEGIN IMMEDIATE``
writer on SQLite) by stamping a lease and a claim token, sends them outside any transaction,
then records the result only if its claim still holds. Delivery is at least once; every
attempt carries the row's idempotency key so peers can drop repeats.

A row's ``target`` is ``<kind>:<name>``; a ``DeliveryHandler`` per kind says which targets
may be claimed now, delivers, and keeps its own retry policy and bookkeeping: channels
(``channel:app``, here) and webhook subscriptions (``webhook:<id>``, in ``hub.webhooks``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog
from sqlalchemy import or_, update
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.backoff import Backoff
from hub.logs import redact_text
from hub.metrics import DELIVERIES
from hub.registry import Registry
from hub.sdk import DeliveryResult, DeliveryStatus, OutboundMessage
from hub.settings import OutboxSettings
from hub.store import OutboxRow, OutboxStatus, SessionFactory
from ticket_core import Clock, DeliveryState, Message, Ticket, mark_delivery

log = structlog.get_logger(__name__)

_CANDIDATES_MAX = 2048
"""Rows looked at in one step of a claim at most (see ``_claimable_rows``)."""

_RENEWAL_POLL = 0.2
"""Seconds between looks at the clock while claims are in flight; a renewal is due every
third of the lease."""


def channel_target(channel: str) -> str:
    return f"channel:{channel}"


def enqueue_message(
    session: AsyncSession,
    ticket: Ticket,
    message: Message,
    now: datetime,
    metadata: dict[str, Any] | None = None,
) -> OutboxRow:
    """Queue an outbound ticket message on the ticket's channel, inside the caller's transaction.

    ``metadata`` reaches the connector as ``OutboundMessage.metadata`` (a template's fields, a
    regulator's feedback record)."""
    assert message.id is not None and ticket.number is not None
    row = OutboxRow(
        idempotency_key=f"msg_{uuid.uuid4().hex}",
        target=channel_target(message.channel),
        purpose=message.purpose,
        payload={
            "channel": message.channel,
            "ticket_number": ticket.number,
            "recipient": dict(message.reply_to),
            "text": message.text,
            "created_at": now.isoformat(),
            "metadata": metadata or {},
        },
        ticket_id=ticket.id,
        message_id=message.id,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(row)
    return row


@dataclass(frozen=True, slots=True)
class Claim:
    row_id: int
    token: str
    attempts: int
    target: str
    purpose: str
    idempotency_key: str
    payload: dict[str, Any]
    ticket_id: int | None
    lease_until: datetime

    @property
    def kind(self) -> str:
        return self.target.partition(":")[0]

    @property
    def name(self) -> str:
        return self.target.partition(":")[2]


class DeliveryHandler(Protocol):
    kind: str
    max_attempts: int
    backoff: Backoff

    async def claimable(self, session: AsyncSession, now: datetime) -> list[str]:
        """The targets of this kind whose rows may be claimed now."""
        ...

    async def deliver(self, claim: Claim) -> DeliveryResult:
        """Send one row; never raise for the peer's behaviour."""
        ...

    async def record(
        self,
        session: AsyncSession,
        claim: Claim,
        result: DeliveryResult,
        now: datetime,
        latency: float,
    ) -> None:
        """Bookkeeping of the kind's own, in the transaction that records the result."""
        ...


DeliveryObserver = Callable[[AsyncSession, OutboxRow, DeliveryResult, datetime], Awaitable[None]]
"""Acts on a channel delivery's result in the transaction that records it (the regulator's
acknowledgement of feedback, ``hub.regulator_feedback``); sees the row as just updated."""


class ChannelDelivery:
    """Messages to customers through the enabled channel connectors."""

    kind = "channel"

    def __init__(
        self,
        registry: Registry,
        settings: OutboxSettings,
        observers: Sequence[DeliveryObserver] = (),
    ) -> None:
        self._registry = registry
        self._observers = tuple(observers)
        self.max_attempts = settings.max_attempts
        self.backoff = Backoff(settings.backoff_initial, settings.backoff_max)

    async def claimable(self, session: AsyncSession, now: datetime) -> list[str]:
        # Only channels enabled here: a process without the connector leaves the rows to one
        # that has it.
        return [channel_target(name) for name, _ in self._registry.items()]

    async def deliver(self, claim: Claim) -> DeliveryResult:
        connector = self._registry.get(claim.name)
        if connector is None:
            return DeliveryResult.retry(f"no enabled connector for target {claim.target!r}")
        try:
            return await connector.send(_outbound(claim))
        except Exception as exc:  # a connector bug must not kill the dispatcher
            log.exception("connector.send raised", target=claim.target)
            return DeliveryResult.retry(f"connector raised {type(exc).__name__}: {exc}")

    async def record(
        self,
        session: AsyncSession,
        claim: Claim,
        result: DeliveryResult,
        now: datetime,
        latency: float,
    ) -> None:
        if not self._observers:
            return
        row = await session.get(OutboxRow, claim.row_id)
        # A stale claim (the lease ran out and the row was claimed again) did not decide the
        # row's state; the claim that owns it now reports its own result.
        if row is None or row.claim_token is not None or row.attempts != claim.attempts:
            return
        for observer in self._observers:
            await observer(session, row, result, now)


class Dispatcher:
    def __init__(
        self,
        sessions: SessionFactory,
        clock: Clock,
        settings: OutboxSettings,
        handlers: list[DeliveryHandler],
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._settings = settings
        self._handlers = {handler.kind: handler for handler in handlers}

    async def dispatch_once(self, limit: int = 50) -> int:
        """Claim and attempt up to ``limit`` due rows; returns how many were attempted.

        Claims are taken ``concurrency`` rows at a time and all sent at once, so no claimed
        row waits for a free slot while its lease runs out.
        """
        attempted = 0
        while attempted < limit:
            claims = await self._claim(min(limit - attempted, self._settings.concurrency))
            if not claims:
                break
            await self._send_under_lease(claims)
            attempted += len(claims)
            if len(claims) < self._settings.concurrency:
                break
        return attempted

    async def _send_under_lease(self, claims: list[Claim]) -> None:
        """Send a claimed batch while renewing its lease, so a slow peer or a busy database
        cannot let a live claim run out and another dispatcher send the row again; only a
        dispatcher that died (or stalled a whole lease) leaves its rows to the others."""
        in_flight = {claim.row_id for claim in claims}
        done = asyncio.Event()

        async def attempt(claim: Claim) -> None:
            try:
                await self._attempt(claim)
            finally:
                in_flight.discard(claim.row_id)

        keeper = asyncio.create_task(self._keep_lease(claims[0].token, in_flight, done))
        try:
            await asyncio.gather(*(attempt(claim) for claim in claims))
        finally:
            # Stopped by an event rather than cancelled: a renewal mid-transaction finishes.
            done.set()
            await keeper

    async def _keep_lease(self, token: str, in_flight: set[int], done: asyncio.Event) -> None:
        lease = self._settings.lease_seconds
        renewed = self._clock.now()
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), timeout=min(_RENEWAL_POLL, lease / 3))
            now = self._clock.now()
            if done.is_set() or not in_flight or (now - renewed).total_seconds() < lease / 3:
                continue
            try:
                async with self._sessions() as session, session.begin():
                    await session.exec(
                        update(OutboxRow)
                        .where(col(OutboxRow.id).in_(sorted(in_flight)))
                        .where(col(OutboxRow.claim_token) == token)
                        .values(locked_until=now + timedelta(seconds=lease))
                        .execution_options(synchronize_session=False)
                    )
                renewed = now
            except Exception:  # the next round tries again; the lease still has two thirds
                log.exception("outbox.lease_renewal_failed", rows=len(in_flight))

    async def _attempt(self, claim: Claim) -> None:
        if self._clock.now() >= claim.lease_until:
            return  # too late to send under this claim; another dispatcher may own the row
        handler = self._handlers.get(claim.kind)
        started = time.perf_counter()
        if handler is None:
            result = DeliveryResult.retry(f"no handler for target {claim.target!r}")
        else:
            result = await handler.deliver(claim)
        # Record at once: the fewer results wait, the fewer repeats after a crash.
        await self._record(claim, result, time.perf_counter() - started)

    async def _claim(self, limit: int) -> list[Claim]:
        now = self._clock.now()
        token = uuid.uuid4().hex
        lease = now + timedelta(seconds=self._settings.lease_seconds)
        async with self._sessions() as session, session.begin():
            targets = [
                target
                for handler in self._handlers.values()
                for target in await handler.claimable(session, now)
            ]
            if not targets:
                return []
            rows = await _claimable_rows(session, targets, now, limit)
            claims = []
            for row in rows:
                row.locked_until = lease
                row.claim_token = token
                row.attempts += 1
                session.add(row)
                claims.append(
                    Claim(
                        row_id=row.id,  # type: ignore[arg-type]
                        token=token,
                        attempts=row.attempts,
                        target=row.target,
                        purpose=row.purpose,
                        idempotency_key=row.idempotency_key,
                        payload=dict(row.payload),
                        ticket_id=row.ticket_id,
                        lease_until=lease,
                    )
                )
        return claims

    async def _record(self, claim: Claim, result: DeliveryResult, latency: float) -> None:
        now = self._clock.now()
        handler = self._handlers.get(claim.kind)
        max_attempts = handler.max_attempts if handler else self._settings.max_attempts
        async with self._sessions() as session, session.begin():
            row = (
                await session.exec(
                    select(OutboxRow).where(OutboxRow.id == claim.row_id).with_for_update()
                )
            ).one()
            if row.claim_token != claim.token:
                # The lease ran out and another dispatcher owns the row now; the attempt still
                # happened, so the handler's log keeps it.
                if handler is not None:
                    await handler.record(session, claim, result, now, latency)
                return
            row.locked_until = None
            row.claim_token = None
            state: DeliveryState | None = None
            if result.status == DeliveryStatus.delivered:
                row.status = OutboxStatus.delivered
                row.delivered_at = now
                row.last_error = None
                state = DeliveryState.delivered
            elif result.status == DeliveryStatus.give_up or row.attempts >= max_attempts:
                row.status = OutboxStatus.dead
                row.last_error = _budget_note(result, row.attempts)
                state = DeliveryState.failed
            else:
                row.last_error = redact_text(result.reason)
                backoff = handler.backoff if handler else Backoff(1, 60)
                row.next_attempt_at = now + timedelta(
                    seconds=backoff.delay(row.attempts, result.retry_after)
                )
            session.add(row)
            if handler is not None:
                await handler.record(session, claim, result, now, latency)
            if state is not None and row.message_id is not None:
                await mark_delivery(session, row.message_id, state, row.last_error)
        DELIVERIES.labels(claim.target, result.status.value).inc()
        report = log.debug if result.status == DeliveryStatus.delivered else log.warning
        report(
            "outbox.attempt",
            row=claim.row_id,
            key=claim.idempotency_key,  # what the peer saw, to match with its logs
            target=claim.target,
            attempt=claim.attempts,
            result=result.status.value,
            reason=redact_text(result.reason) or None,
        )


async def _claimable_rows(
    session: AsyncSession, targets: list[str], now: datetime, limit: int
) -> list[OutboxRow]:
    """The first ``limit`` due, unlocked rows of ``targets`` in id order, locked for the
    caller's transaction, leaving out a row while an earlier one of its ticket and target is
    still pending (in flight or backing off): a ticket's messages to one target leave in order.

    Two steps rather than one query with the ordering rule as an anti-join: on PostgreSQL that
    query's plan depends on statistics, and on a freshly filled outbox (a burst, before
    autovacuum's ANALYZE) it probed the rule for every pending row, 0.3 s a claim. Here the
    candidates come by id under a plain ``LIMIT``, and the rule is checked for those alone."""
    claimed: list[int] = []
    after = 0
    batch = limit  # with nothing blocked, exactly the rows claimed are locked
    while len(claimed) < limit:
        # Ids alone: what is sorted is small, not every pending row with its payload. The
        # candidates are locked as they are read, blocked ones too (for the claim's few
        # milliseconds), so a concurrent dispatcher skips them and reads further instead of
        # reading the same ones and finding them taken.
        candidates = list(
            (
                await session.exec(
                    select(OutboxRow.id)
                    .where(col(OutboxRow.target).in_(targets))
                    .where(OutboxRow.status == OutboxStatus.pending)
                    .where(OutboxRow.next_attempt_at <= now)
                    .where(
                        or_(
                            col(OutboxRow.locked_until).is_(None),
                            col(OutboxRow.locked_until) < now,
                        )
                    )
                    .where(col(OutboxRow.id) > after)
                    .order_by(col(OutboxRow.id))
                    .limit(batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
        )
        if not candidates:
            break
        blocked = await _blocked(session, candidates)  # type: ignore[arg-type]
        claimed.extend(row_id for row_id in candidates if row_id not in blocked)  # type: ignore[misc]
        if len(candidates) < batch:
            break
        after = candidates[-1]  # type: ignore[assignment]
        batch = min(batch * 4, _CANDIDATES_MAX)  # a long blocked run: look further at once
    if not claimed:
        return []
    rows = (
        select(OutboxRow).where(col(OutboxRow.id).in_(claimed[:limit])).order_by(col(OutboxRow.id))
    )
    return list((await session.exec(rows)).all())  # locked above, in this transaction


async def _blocked(session: AsyncSession, ids: list[int]) -> set[int]:
    """Those of ``ids`` with an earlier pending row of the same ticket and target."""
    earlier = aliased(OutboxRow)
    query = (
        select(OutboxRow.id)
        .where(col(OutboxRow.id).in_(ids))
        .where(
            select(earlier.id)
            .where(earlier.ticket_id == OutboxRow.ticket_id)
            .where(earlier.target == OutboxRow.target)
            .where(earlier.status == OutboxStatus.pending)
            .where(col(earlier.id) < OutboxRow.id)
            .exists()
        )
    )
    return {row_id for row_id in (await session.exec(query)).all() if row_id is not None}


def _budget_note(result: DeliveryResult, attempts: int) -> str:
    reason = redact_text(result.reason)
    if result.status == DeliveryStatus.give_up:
        return f"gave up: {reason}"
    return f"retry budget spent after {attempts} attempts; last error: {reason}"


def _outbound(claim: Claim) -> OutboundMessage:
    payload = claim.payload
    return OutboundMessage(
        channel=payload["channel"],
        idempotency_key=claim.idempotency_key,
        ticket_number=payload["ticket_number"],
        recipient=payload.get("recipient", {}),
        text=payload["text"],
        purpose=claim.purpose,
        created_at=datetime.fromisoformat(payload["created_at"]),
        metadata=dict(payload.get("metadata", {})),
    )


class InFlight(Exception):
    """The row is being sent right now; replaying it would send it twice."""


async def replay(session: AsyncSession, row_id: int, now: datetime) -> OutboxRow | None:
    """Put a dead-lettered (or delivered) row back in the queue with a fresh retry budget.

    The idempotency key stays the same, so a peer that already has it can drop the repeat.
    """
    row = await session.get(OutboxRow, row_id, with_for_update=True)
    if row is None:
        return None
    if row.status == OutboxStatus.pending and row.locked_until and row.locked_until > now:
        raise InFlight(f"outbox row {row_id} is being sent now; replay it once that attempt ends")
    row.status = OutboxStatus.pending
    row.attempts = 0
    row.next_attempt_at = now
    row.locked_until = None
    row.claim_token = None
    session.add(row)
    if row.message_id is not None:
        await mark_delivery(session, row.message_id, DeliveryState.pending)
    return row


async def replay_dead(session: AsyncSession, now: datetime) -> int:
    ids = (
        await session.exec(select(OutboxRow.id).where(OutboxRow.status == OutboxStatus.dead))
    ).all()
    for row_id in ids:
        await replay(session, row_id, now)  # type: ignore[arg-type]
    return len(ids)
