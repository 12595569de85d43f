"""A ticket's SLA clocks: started, paused, resumed, extended, stopped, and checked when due.

Each clock is a row (``SlaClock``) with its due time and ``next_check_at``: the next moment
something can happen to it (a warning, the breach). Everything here runs inside the caller's
transaction with the ticket row held for update, and records what it does in the ticket's
audit chain, so webhooks and notices follow from the audit events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ticket_core import audit
from ticket_core.calendar import CalendarHours, TimeBasis
from ticket_core.errors import TicketCoreError
from ticket_core.models import ClockState, Kind, SlaClock, Status, Ticket
from ticket_core.policies import (
    FIRST_RESPONSE,
    NEXT_RESPONSE,
    RESOLUTION,
    REVIEW,
    Policy,
    PolicyBook,
)

AUTO_CLOSE = "auto_close"
LIFECYCLE_POLICY = "lifecycle"


def _open(clock: SlaClock) -> bool:
    """Not yet stopped: running, paused, or breached and still waiting for the answer."""
    return clock.stopped_at is None and clock.state != ClockState.stopped


class ExtensionRefused(TicketCoreError):
    """An extension the policy does not allow; the message names the rule."""


class ApprovalRequired(ExtensionRefused):
    """The extension is allowed only with a supervisor's approval."""


@dataclass(frozen=True, slots=True)
class ClockEvent:
    """Something the scheduler did to a clock, for the caller's counters and logs."""

    ticket_id: int
    clock: str
    what: str  # "warning", "breached", "auto_closed"


async def clocks_of(session: AsyncSession, ticket: Ticket) -> list[SlaClock]:
    query = select(SlaClock).where(SlaClock.ticket_id == ticket.id).order_by(col(SlaClock.id))
    return list((await session.exec(query)).all())


async def _clock(session: AsyncSession, ticket: Ticket, name: str) -> SlaClock | None:
    query = select(SlaClock).where(SlaClock.ticket_id == ticket.id, SlaClock.name == name)
    return (await session.exec(query)).first()


def _policy(book: PolicyBook, ticket: Ticket) -> Policy | None:
    return book.get(ticket.sla_policy) if ticket.sla_policy else None


def _basis(book: PolicyBook, clock: SlaClock) -> TimeBasis:
    if clock.basis == "calendar" or clock.basis not in book.calendars:
        return CalendarHours()
    return book.calendars[clock.basis]


def _schedule(clock: SlaClock, policy: Policy | None, basis: TimeBasis, now: datetime) -> None:
    """Set ``next_check_at`` to the earliest unsent warning, else the due time."""
    if clock.state != ClockState.running:
        clock.next_check_at = None
        return
    moments = [clock.due_at]
    if policy is not None:
        remaining = basis.elapsed(now, clock.due_at) if now < clock.due_at else timedelta()
        target = timedelta(seconds=clock.target_seconds)
        for warning in policy.warnings:
            if warning.label in clock.warnings_sent:
                continue
            if warning.fraction is not None:
                left_at_warning = target * (1 - warning.fraction)
                lead = remaining - left_at_warning
                moments.append(basis.add(now, lead) if lead > timedelta() else now)
            elif warning.before is not None and warning.before < target:
                moments.append(max(now, clock.due_at - warning.before))
    clock.next_check_at = min(moments)


def _sync_summary(ticket: Ticket, clock: SlaClock) -> None:
    """Mirror due times on the ticket, where lists, reports and the API read them."""
    if clock.name == FIRST_RESPONSE:
        ticket.first_response_due_at = clock.due_at
    elif clock.name == RESOLUTION:
        ticket.resolution_due_at = clock.due_at


def _new_clock(
    ticket: Ticket,
    name: str,
    policy: str,
    basis_name: str,
    basis: TimeBasis,
    started: datetime,
    target: timedelta,
    now: datetime,
    cap: datetime | None = None,
    factory: Callable[..., Any] = SlaClock,
) -> SlaClock:
    due = basis.add(started, target)
    if cap is not None and cap < due:
        due = cap
    clock: SlaClock = factory(
        ticket_id=ticket.id,  # type: ignore[arg-type]
        name=name,
        policy=policy,
        basis=basis_name,
        started_at=started,
        due_at=due,
        target_seconds=int(target.total_seconds()),
        state=ClockState.running,
        warnings_sent=[],
    )
    return clock


async def start_clocks(
    session: AsyncSession,
    ticket: Ticket,
    book: PolicyBook,
    now: datetime,
    preferred: str | None = None,
) -> Policy | None:
    """Choose the ticket's policy and start its clocks from ``clock_started_at``.

    ``preferred`` (a routing rule's choice) wins when the book knows it; otherwise the book's
    rules choose. A sender's deadline (a regulator's 办理时限) caps the resolution clock when
    earlier.
    """
    policy, clocks = plan_clocks(ticket, book, now, preferred)
    for clock in clocks:
        session.add(clock)
    return policy


def plan_clocks(
    ticket: Ticket,
    book: PolicyBook,
    now: datetime,
    preferred: str | None = None,
    factory: Callable[..., Any] = SlaClock,
) -> tuple[Policy | None, list[SlaClock]]:
    """What ``start_clocks`` starts, without a session: the policy (set on the ticket, with
    the due times it mirrors) and the clocks, for a caller that writes them in bulk.

    ``factory`` makes each clock from ``SlaClock``'s fields; a bulk writer may give a plain
    record (building a table model costs a tenth of a millisecond)."""
    flags = [name for name, on in (("regulator_transfer", ticket.is_regulator_transfer),) if on]
    policy = book.get(preferred) if preferred else None
    if policy is None:
        policy = book.choose(ticket.kind, ticket.channel, ticket.category, flags)
    if policy is None:
        return None, []
    ticket.sla_policy = policy.name
    basis = book.basis_of(policy)
    started = ticket.clock_started_at or now
    clocks = []
    for name, target in policy.targets_for(Kind(ticket.kind)).items():
        if name == NEXT_RESPONSE:
            continue  # starts when the customer writes after our first response
        cap = ticket.deadline_at if name == RESOLUTION else None
        clock = _new_clock(
            ticket, name, policy.name, policy.basis, basis, started, target, now, cap, factory
        )
        _schedule(clock, policy, basis, now)
        _sync_summary(ticket, clock)
        clocks.append(clock)
    return policy, clocks


async def responded(session: AsyncSession, ticket: Ticket, book: PolicyBook, now: datetime) -> None:
    """We answered the customer: the response clocks stop."""
    for name in (FIRST_RESPONSE, NEXT_RESPONSE):
        clock = await _clock(session, ticket, name)
        if clock is not None and _open(clock):
            _stop(session, ticket, clock, now)


async def customer_wrote(
    session: AsyncSession, ticket: Ticket, book: PolicyBook, now: datetime
) -> None:
    """The customer wrote again after our first response: the next-response clock starts."""
    policy = _policy(book, ticket)
    if policy is None or ticket.first_responded_at is None:
        return
    target = policy.targets_for(Kind(ticket.kind)).get(NEXT_RESPONSE)
    if target is None:
        return
    basis = book.basis_of(policy)
    clock = await _clock(session, ticket, NEXT_RESPONSE)
    if clock is not None and _open(clock):
        return  # the earlier question is still unanswered; its clock keeps running
    if clock is None:
        clock = _new_clock(
            ticket, NEXT_RESPONSE, policy.name, policy.basis, basis, now, target, now
        )
    else:
        clock.started_at, clock.due_at = now, basis.add(now, target)
        clock.state, clock.stopped_at, clock.breached_at = ClockState.running, None, None
        clock.warnings_sent, clock.paused_at, clock.remaining_seconds = [], None, None
    _schedule(clock, policy, basis, now)
    session.add(clock)


def _stop(session: AsyncSession, ticket: Ticket, clock: SlaClock, now: datetime) -> None:
    if clock.state == ClockState.running:
        if now <= clock.due_at:
            clock.state = ClockState.met
        else:
            clock.state, clock.breached_at = ClockState.breached, clock.due_at
    elif clock.state == ClockState.paused:
        clock.state = ClockState.met
    clock.stopped_at = now
    clock.next_check_at = None
    session.add(clock)


async def status_changed(
    session: AsyncSession,
    ticket: Ticket,
    before: Status,
    after: Status,
    reason: str | None,
    book: PolicyBook,
    now: datetime,
    auto_close_after: timedelta | None,
) -> None:
    """Pause, resume and stop clocks as the lifecycle moves; arm and disarm auto-close."""
    policy = _policy(book, ticket)
    clocks = {clock.name: clock for clock in await clocks_of(session, ticket)}
    if after == Status.resolved:
        for name in (FIRST_RESPONSE, NEXT_RESPONSE, RESOLUTION, REVIEW):
            if name in clocks and _open(clocks[name]):
                _stop(session, ticket, clocks[name], now)
        if auto_close_after is not None:
            _arm_auto_close(session, ticket, clocks.get(AUTO_CLOSE), now, auto_close_after)
        return
    if after == Status.closed:
        for clock in clocks.values():
            if _open(clock):
                _stop(session, ticket, clock, now)
        return
    if before == Status.resolved and AUTO_CLOSE in clocks:
        clock = clocks[AUTO_CLOSE]
        if _open(clock):
            clock.state, clock.stopped_at, clock.next_check_at = ClockState.stopped, now, None
            session.add(clock)
    if after == Status.under_review and REVIEW in clocks and _open(clocks[REVIEW]):
        _stop(session, ticket, clocks[REVIEW], now)  # escalated to the reviewer in time
    if policy is None:
        return
    pause = policy.pauses_on(after.value, reason)
    for clock in clocks.values():
        if clock.name == AUTO_CLOSE or not _open(clock):
            continue
        basis = _basis(book, clock)
        if pause and clock.state == ClockState.running:
            left = basis.elapsed(now, clock.due_at) if now < clock.due_at else timedelta()
            clock.state, clock.paused_at = ClockState.paused, now
            clock.remaining_seconds = int(left.total_seconds())
            clock.next_check_at = None
            session.add(clock)
            audit.record(
                session,
                ticket,
                actor="system",
                action="sla.paused",
                at=now,
                after={"clock": clock.name, "status": after.value, "reason": reason},
            )
        elif not pause and clock.state == ClockState.paused:
            left = timedelta(seconds=clock.remaining_seconds or 0)
            clock.due_at = basis.add(now, left)
            clock.state, clock.paused_at, clock.remaining_seconds = ClockState.running, None, None
            _schedule(clock, policy, basis, now)
            _sync_summary(ticket, clock)
            session.add(clock)
            audit.record(
                session,
                ticket,
                actor="system",
                action="sla.resumed",
                at=now,
                after={"clock": clock.name, "due_at": clock.due_at.isoformat()},
            )


def _arm_auto_close(
    session: AsyncSession,
    ticket: Ticket,
    clock: SlaClock | None,
    now: datetime,
    after: timedelta,
) -> None:
    if clock is None:
        clock = SlaClock(
            ticket_id=ticket.id,  # type: ignore[arg-type]
            name=AUTO_CLOSE,
            policy=LIFECYCLE_POLICY,
            basis="calendar",
            started_at=now,
            due_at=now + after,
            target_seconds=int(after.total_seconds()),
            warnings_sent=[],
        )
    clock.started_at, clock.due_at = now, now + after
    clock.state, clock.stopped_at, clock.breached_at = ClockState.running, None, None
    clock.next_check_at = clock.due_at
    session.add(clock)


async def extend(
    session: AsyncSession,
    ticket: Ticket,
    book: PolicyBook,
    *,
    reason: str,
    actor: str,
    approved_by: str | None,
    now: datetime,
) -> dict[str, object]:
    """Extend the resolution clock by the policy's next step.

    Raises ``ExtensionRefused`` naming the rule (no policy extension, beyond the cap, no
    reason, the ticket already decided) or ``ApprovalRequired`` when this step needs a
    supervisor and ``approved_by`` is missing.
    """
    policy = _policy(book, ticket)
    if policy is None or policy.extensions is None:
        raise ExtensionRefused(
            f"policy {ticket.sla_policy or '(none)'} allows no extensions of the resolution clock"
        )
    if not reason.strip():
        raise ExtensionRefused("an extension needs a reason, which is recorded and told")
    clock = await _clock(session, ticket, RESOLUTION)
    if clock is None or clock.stopped_at is not None:
        raise ExtensionRefused("the ticket has no running resolution clock to extend")
    if clock.state == ClockState.breached:
        raise ExtensionRefused(
            "the resolution clock has already breached; an extension must come before the due time"
        )
    rule = policy.extensions
    done = len(ticket.extensions)
    if done >= len(rule.steps):
        raise ExtensionRefused(
            f"no extension beyond the cap: {done} already granted, "
            f"{rule.cap.days} days in all under {policy.name}"
        )
    number = done + 1
    if number >= rule.approval_from and not approved_by:
        raise ApprovalRequired(
            f"extension {number} under {policy.name} needs a supervisor's approval"
        )
    step = rule.steps[done]
    basis = _basis(book, clock)
    before_due = clock.due_at
    if clock.state == ClockState.paused:
        clock.remaining_seconds = (clock.remaining_seconds or 0) + int(step.total_seconds())
    clock.due_at = basis.add(clock.due_at, step)
    clock.target_seconds += int(step.total_seconds())
    clock.warnings_sent = []
    _schedule(clock, policy, basis, now)
    _sync_summary(ticket, clock)
    session.add(clock)
    record = {
        "number": number,
        "reason": reason.strip(),
        "requested_by": actor,
        "approved_by": approved_by,
        "days": step.days,
        "at": now.isoformat(),
        "due_at": clock.due_at.isoformat(),
    }
    ticket.extensions = [*ticket.extensions, record]
    ticket.updated_at = now
    audit.record(
        session,
        ticket,
        actor=actor,
        action="sla.extended",
        at=now,
        before={"due_at": before_due.isoformat()},
        after=record,
    )
    return record


async def check(
    session: AsyncSession,
    ticket: Ticket,
    clock: SlaClock,
    book: PolicyBook,
    now: datetime,
    escalation_queue: str | None,
) -> list[ClockEvent]:
    """Fire what is due on one clock: its warnings, then its breach and the escalation."""
    events: list[ClockEvent] = []
    if clock.state != ClockState.running or clock.name == AUTO_CLOSE:
        return events
    policy = _policy(book, ticket)
    basis = _basis(book, clock)
    if now >= clock.due_at:
        clock.state, clock.breached_at, clock.next_check_at = ClockState.breached, now, None
        session.add(clock)
        audit.record(
            session,
            ticket,
            actor="system",
            action="sla.breached",
            at=now,
            after={"clock": clock.name, "due_at": clock.due_at.isoformat()},
        )
        events.append(ClockEvent(ticket.id or 0, clock.name, "breached"))
        if escalation_queue and ticket.escalated_at is None:
            before = {"queue": ticket.queue, "assignee": ticket.assignee}
            ticket.escalated_at, ticket.queue = now, escalation_queue
            audit.record(
                session,
                ticket,
                actor="system",
                action="ticket.escalated",
                at=now,
                before=before,
                after={"queue": escalation_queue, "clock": clock.name},
            )
        return events
    if policy is not None:
        remaining = basis.elapsed(now, clock.due_at)
        target = timedelta(seconds=clock.target_seconds)
        for warning in policy.warnings:
            if warning.label in clock.warnings_sent:
                continue
            due_now = (
                warning.fraction is not None and remaining <= target * (1 - warning.fraction)
            ) or (warning.before is not None and clock.due_at - warning.before <= now)
            if warning.before is not None and warning.before >= target:
                due_now = False
            if due_now:
                clock.warnings_sent = [*clock.warnings_sent, warning.label]
                audit.record(
                    session,
                    ticket,
                    actor="system",
                    action="sla.warning",
                    at=now,
                    after={
                        "clock": clock.name,
                        "warning": warning.label,
                        "due_at": clock.due_at.isoformat(),
                    },
                )
                events.append(ClockEvent(ticket.id or 0, clock.name, "warning"))
    _schedule(clock, policy, basis, now)
    session.add(clock)
    return events


__all__ = [
    "AUTO_CLOSE",
    "ApprovalRequired",
    "ClockEvent",
    "ExtensionRefused",
    "check",
    "clocks_of",
    "customer_wrote",
    "extend",
    "plan_clocks",
    "responded",
    "start_clocks",
    "status_changed",
]
