"""The SLA scheduler's tick: find the clocks whose next check is due and act on them.

Only the index on ``sla_clock.next_check_at`` is read to find work, so a tick costs what is
due, not what is open. Tickets are locked in id order with ``SKIP LOCKED``: several workers
tick side by side, and a ticket an agent is changing right now is simply taken next time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ticket_core.clocks import AUTO_CLOSE, ClockEvent, check
from ticket_core.errors import IllegalTransition
from ticket_core.lifecycle import TransitionRequest
from ticket_core.models import ClockState, SlaClock, Status, Ticket
from ticket_core.policies import PolicyBook
from ticket_core.tickets import transition

AUTO_CLOSE_RETRY = timedelta(hours=1)


async def run_due(
    session: AsyncSession,
    now: datetime,
    book: PolicyBook,
    *,
    escalation_queue: str | None,
    limit: int = 100,
) -> list[ClockEvent]:
    """Act on up to ``limit`` tickets with a clock due; returns what was done."""
    due = (
        select(SlaClock.ticket_id)
        .where(col(SlaClock.next_check_at).is_not(None))
        .where(col(SlaClock.next_check_at) <= now)
        .order_by(col(SlaClock.next_check_at))
        .limit(limit)
    )
    ticket_ids = sorted(set((await session.exec(due)).all()))
    if not ticket_ids:
        return []
    tickets = (
        await session.exec(
            select(Ticket)
            .where(col(Ticket.id).in_(ticket_ids))
            .order_by(col(Ticket.id))
            .with_for_update(skip_locked=True)
        )
    ).all()
    events: list[ClockEvent] = []
    for ticket in tickets:
        clocks = (
            await session.exec(
                select(SlaClock)
                .where(SlaClock.ticket_id == ticket.id)
                .where(col(SlaClock.next_check_at).is_not(None))
                .where(col(SlaClock.next_check_at) <= now)
                .order_by(col(SlaClock.id))
            )
        ).all()
        for clock in clocks:
            if clock.name == AUTO_CLOSE:
                events.extend(await _auto_close(session, ticket, clock, book, now))
            else:
                events.extend(await check(session, ticket, clock, book, now, escalation_queue))
    return events


async def _auto_close(
    session: AsyncSession, ticket: Ticket, clock: SlaClock, book: PolicyBook, now: datetime
) -> list[ClockEvent]:
    """Close a resolved ticket nobody objected to; one the rules keep open is tried later
    (a regulator transfer whose feedback is not yet acknowledged)."""
    if Status(ticket.status) != Status.resolved:
        clock.state, clock.stopped_at, clock.next_check_at = ClockState.stopped, now, None
        session.add(clock)
        return []
    try:
        await transition(
            session,
            ticket,
            TransitionRequest(Status.closed, reason="auto_close"),
            actor="system",
            now=now,
            book=book,
        )
    except IllegalTransition:
        clock.next_check_at = now + AUTO_CLOSE_RETRY
        session.add(clock)
        return []
    return [ClockEvent(ticket.id or 0, AUTO_CLOSE, "auto_closed")]
