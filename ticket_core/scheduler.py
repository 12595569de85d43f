"""The SLA scheduler's tick: find the clocks whose next check is due and act on them.

Only the index on ``sla_clock.next_check_at`` is read to find work, so a tick costs what is
due, not what is open. Tickets are locked in id order with ``SKIP LOCKED``: several workers
tick side by side, and a ticket an agent is changing right now is simply taken next time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ticket_core import audit
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
    due_clocks = await _due_clocks(session, [ticket.id for ticket in tickets], now)
    events: list[ClockEvent] = []
    for ticket in tickets:
        for clock in due_clocks.get(ticket.id, ()):
            if clock.name == AUTO_CLOSE:
                events.extend(await _auto_close(session, ticket, clock, book, now))
            else:
                events.extend(await check(session, ticket, clock, book, now, escalation_queue))
    await audit.flush(session)
    return events


async def _due_clocks(
    session: AsyncSession, ticket_ids: list[int | None], now: datetime
) -> dict[int | None, list[SlaClock]]:
    """The locked tickets' due clocks, each ticket's in id order.

    One query for the batch rather than one per ticket: a query per ticket also autoflushed
    the previous ticket's changes, a round trip and a unit of work per due ticket. Acting on
    one ticket touches only its own clocks, so loading them all before acting on any reads
    what the per-ticket queries read.
    """
    query = (
        select(SlaClock)
        .where(col(SlaClock.ticket_id).in_(ticket_ids))
        .where(col(SlaClock.next_check_at).is_not(None))
        .where(col(SlaClock.next_check_at) <= now)
        .order_by(col(SlaClock.ticket_id), col(SlaClock.id))
    )
    by_ticket: dict[int | None, list[SlaClock]] = {}
    for clock in (await session.exec(query)).all():
        by_ticket.setdefault(clock.ticket_id, []).append(clock)
    return by_ticket


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
