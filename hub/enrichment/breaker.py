"""A circuit breaker per context provider, kept in the database so every worker obeys it.

While a provider keeps failing, its lookups stay in the outbox instead of spending their
retries (and a worker's time) on a system that is down: after ``breaker_failures`` transient
failures in a row, its rows are not claimed until ``open_until``. The calls made when the
pause ends are the probe: one success closes the breaker, and then every lookup that waited
is brought forward and every one that ran out of retries meanwhile is asked again, so tickets
opened during the outage get their context once the provider is back.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

import structlog
from sqlalchemy import update
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.logs import redact_text
from hub.outbox import InFlight, replay
from hub.sdk import DeliveryResult, DeliveryStatus
from hub.store import ContextProviderState, OutboxRow, OutboxStatus
from hub.store.upsert import dialect_insert
from ticket_core.models import ContextState, TicketContext

log = structlog.get_logger(__name__)

_REQUEUE_BATCH = 1000


class ProviderBreaker:
    def __init__(self, failures: int, pause_seconds: float) -> None:
        self._failures = failures
        self._pause = timedelta(seconds=pause_seconds)

    async def paused(self, session: AsyncSession, names: list[str], now: datetime) -> set[str]:
        """Providers whose breaker is open now."""
        rows = await session.exec(
            select(ContextProviderState.name)
            .where(col(ContextProviderState.name).in_(names))
            .where(col(ContextProviderState.open_until) > now)
        )
        return set(rows.all())

    async def record(
        self, session: AsyncSession, name: str, result: DeliveryResult, now: datetime
    ) -> bool:
        """Count one call's result; True when it ended a run of failures (the provider is
        back). A refusal says nothing about availability and leaves the breaker as it is."""
        if result.status == DeliveryStatus.give_up:
            return False
        await session.exec(
            dialect_insert(session, ContextProviderState.__table__)
            .values(name=name, consecutive_failures=0, updated_at=now)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        state = (
            await session.exec(
                select(ContextProviderState)
                .where(ContextProviderState.name == name)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).one()
        state.updated_at = now
        if result.status == DeliveryStatus.delivered:
            recovered = state.consecutive_failures > 0
            if recovered:
                log.info("context.provider_recovered", provider=name, since=state.failing_since)
            state.consecutive_failures = 0
            state.failing_since = None
            state.open_until = None
            session.add(state)
            return recovered
        state.consecutive_failures += 1
        state.failing_since = state.failing_since or now
        state.last_error = redact_text(result.reason)[:500] or None
        if state.consecutive_failures >= self._failures:
            state.open_until = now + self._pause
            log.warning(
                "context.breaker_open",
                provider=name,
                failures=state.consecutive_failures,
                until=state.open_until.isoformat(),
            )
        session.add(state)
        return False


async def ask_again(session: AsyncSession, name: str, target: str, now: datetime) -> int:
    """The provider is back: bring its waiting lookups forward, and put those whose retries
    ran out during the outage back in the queue (same ids, fresh budget)."""
    await session.exec(
        update(OutboxRow)
        .where(col(OutboxRow.target) == target)
        .where(col(OutboxRow.status) == OutboxStatus.pending)
        .where(col(OutboxRow.next_attempt_at) > now)
        .where(or_(col(OutboxRow.locked_until).is_(None), col(OutboxRow.locked_until) < now))
        .values(next_attempt_at=now)
    )
    stranded = (
        await session.exec(
            select(TicketContext)
            .where(TicketContext.provider == name)
            .where(TicketContext.state == ContextState.unavailable)
            .order_by(col(TicketContext.id))
            .limit(_REQUEUE_BATCH)
            .with_for_update()
        )
    ).all()
    for pending in stranded:
        if pending.outbox_id is not None:
            # InFlight: an operator replayed it a moment ago; it is being asked now.
            with contextlib.suppress(InFlight):
                await replay(session, pending.outbox_id, now)
        pending.state = ContextState.pending
        pending.next_attempt_at = now
        pending.updated_at = now
        session.add(pending)
    if stranded:
        log.info("context.asked_again", provider=name, lookups=len(stranded))
    return len(stranded)
