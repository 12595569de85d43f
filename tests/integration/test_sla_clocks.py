"""SLA clocks through the store on SQLite and PostgreSQL, moved by the injected clock: each
template's due times, warnings, breach and escalation, pauses, extensions, auto-close."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import col, func, select

from hub.runtime import Hub
from ticket_core import (
    ApprovalRequired,
    AuditEvent,
    ClockState,
    ExtensionRefused,
    IdentityClaim,
    IllegalTransition,
    IncomingMessage,
    Kind,
    ManualClock,
    Outcome,
    SlaClock,
    Status,
    Ticket,
    TransitionRequest,
    add_outbound,
    extend,
    get_ticket,
    receive,
    transition,
    verify_chain,
)
from ticket_core.audit import verify_store

KEY = b"k" * 32
H = timedelta(hours=1)
D = timedelta(days=1)


async def _open(
    hub: Hub,
    kind: Kind = Kind.complaint,
    *,
    flags: frozenset[str] = frozenset(),
    started: datetime | None = None,
    deadline: datetime | None = None,
    who: str = "u1",
    reference: str | None = None,
    text: str = "信用卡被重复扣费",
) -> str:
    now = hub.clock.now()
    incoming = IncomingMessage(
        channel="app",
        external_id=f"m-{who}-{now.timestamp()}-{text}",
        received_at=now,
        text=text,
        kind=kind,
        identities=(IdentityClaim("app_user", who, "a***", True),),
        clock_started_at=started,
        deadline=deadline,
        flags=flags,
        ticket_reference=reference,
    )
    async with hub.sessions() as session, session.begin():
        intake = await receive(
            session,
            incoming,
            identity_key=KEY,
            now=now,
            reopen_window=timedelta(days=7),
            book=hub.book,
        )
        await hub.reactions.run(session, now)
        assert intake.ticket.number is not None
        return intake.ticket.number


async def _clocks(hub: Hub, number: str) -> dict[str, SlaClock]:
    async with hub.sessions() as session:
        ticket = await get_ticket(session, number)
        rows = (await session.exec(select(SlaClock).where(SlaClock.ticket_id == ticket.id))).all()
        return {row.name: row for row in rows}


async def _actions(hub: Hub, number: str) -> list[tuple[str, dict[str, object]]]:
    async with hub.sessions() as session:
        ticket = await get_ticket(session, number)
        events = list(
            (
                await session.exec(
                    select(AuditEvent)
                    .where(AuditEvent.ticket_id == ticket.id)
                    .order_by(col(AuditEvent.id))
                )
            ).all()
        )
        assert verify_chain(events) == []
        return [(e.action, e.after) for e in events]


async def _ticket(hub: Hub, number: str) -> Ticket:
    async with hub.sessions() as session:
        return await get_ticket(session, number)


async def _move(hub: Hub, number: str, request: TransitionRequest, actor: str = "agent:a") -> None:
    async with hub.sessions() as session, session.begin():
        ticket = await get_ticket(session, number, for_update=True)
        await transition(
            session,
            ticket,
            request,
            actor=actor,
            now=hub.clock.now(),
            book=hub.book,
            auto_close_after=hub.auto_close_after,
        )
        await hub.reactions.run(session, hub.clock.now())


async def _reply(hub: Hub, number: str) -> None:
    async with hub.sessions() as session, session.begin():
        ticket = await get_ticket(session, number, for_update=True)
        await add_outbound(
            session,
            ticket,
            text="我们正在处理",
            author="agent:a",
            purpose="reply",
            reply_to={},
            now=hub.clock.now(),
            book=hub.book,
        )


async def _extend(hub: Hub, number: str, approved_by: str | None = None) -> dict[str, object]:
    async with hub.sessions() as session, session.begin():
        ticket = await get_ticket(session, number, for_update=True)
        return await extend(
            session,
            ticket,
            hub.book,
            reason="需要调取交易记录",
            actor="agent:a",
            approved_by=approved_by,
            now=hub.clock.now(),
        )


async def _tick_until_quiet(hub: Hub) -> int:
    total = 0
    while n := await hub.scheduler.tick():
        total += n
    return total


async def test_a_complaint_warns_before_each_due_time_and_escalates_when_breached_at_72h(
    hub: Hub, clock: ManualClock
) -> None:
    start = clock.now()
    number = await _open(hub)
    clocks = await _clocks(hub, number)
    assert (await _ticket(hub, number)).sla_policy == "cn-service-24-48-72"
    assert clocks["first_response"].due_at == start + 48 * H
    assert clocks["resolution"].due_at == start + 72 * H
    await _reply(hub, number)  # first response met; the resolution clock runs on

    clock.set(start + 57 * H)
    assert await _tick_until_quiet(hub) == 0  # 80% of 72 h is 57.6 h: nothing yet
    clock.set(start + 58 * H)
    assert await _tick_until_quiet(hub) == 1
    clock.set(start + 71 * H)
    assert await _tick_until_quiet(hub) == 1  # one hour before
    clock.set(start + 72 * H)
    assert await _tick_until_quiet(hub) == 1  # breached
    assert await _tick_until_quiet(hub) == 0  # and only once

    actions = [a for a in await _actions(hub, number) if a[0].startswith(("sla.", "ticket.esc"))]
    assert actions == [
        (
            "sla.warning",
            {"clock": "resolution", "warning": "80%", "due_at": actions[0][1]["due_at"]},
        ),
        (
            "sla.warning",
            {"clock": "resolution", "warning": "1h", "due_at": actions[0][1]["due_at"]},
        ),
        ("sla.breached", {"clock": "resolution", "due_at": actions[0][1]["due_at"]}),
        ("ticket.escalated", {"queue": "supervisors", "clock": "resolution"}),
    ]
    ticket = await _ticket(hub, number)
    assert ticket.queue == "supervisors" and ticket.escalated_at == start + 72 * H
    clocks = await _clocks(hub, number)
    assert clocks["first_response"].state == ClockState.met
    assert clocks["resolution"].state == ClockState.breached


async def test_an_unanswered_first_response_breaches_at_48h(hub: Hub, clock: ManualClock) -> None:
    start = clock.now()
    number = await _open(hub)
    clock.set(start + 48 * H)
    await _tick_until_quiet(hub)
    clocks = await _clocks(hub, number)
    assert clocks["first_response"].state == ClockState.breached
    await _reply(hub, number)
    clocks = await _clocks(hub, number)
    assert clocks["first_response"].state == ClockState.breached
    assert clocks["first_response"].stopped_at == start + 48 * H


async def test_a_regulator_transfer_counts_from_first_receipt_and_honours_an_earlier_deadline(
    hub: Hub, clock: ManualClock
) -> None:
    received = clock.now() - 2 * D  # 12378 took the call two days before it reached us
    number = await _open(hub, flags=frozenset({"regulator_transfer"}), started=received)
    ticket = await _ticket(hub, number)
    assert ticket.sla_policy == "cn-nfra-order-3"
    assert ticket.clock_started_at == received
    assert ticket.resolution_due_at == received + 15 * D

    deadline = received + 10 * D
    other = await _open(
        hub, flags=frozenset({"regulator_transfer"}), started=received, deadline=deadline, who="u2"
    )
    assert (await _ticket(hub, other)).resolution_due_at == deadline


async def test_an_nfra_complaint_extends_once_then_needs_approval_and_never_beyond_60_days(
    hub: Hub, clock: ManualClock
) -> None:
    start = clock.now()
    number = await _open(hub, flags=frozenset({"regulator_transfer"}))
    first = await _extend(hub, number)
    assert first["number"] == 1 and first["approved_by"] is None
    assert (await _ticket(hub, number)).resolution_due_at == start + 30 * D

    with pytest.raises(ApprovalRequired, match="supervisor"):
        await _extend(hub, number)
    assert (await _ticket(hub, number)).resolution_due_at == start + 30 * D

    second = await _extend(hub, number, approved_by="supervisor:s")
    assert second["approved_by"] == "supervisor:s"
    ticket = await _ticket(hub, number)
    assert ticket.resolution_due_at == start + 60 * D
    assert [e["number"] for e in ticket.extensions] == [1, 2]

    with pytest.raises(ExtensionRefused, match="beyond the cap"):
        await _extend(hub, number, approved_by="supervisor:s")
    assert (await _ticket(hub, number)).resolution_due_at == start + 60 * D


async def test_the_service_template_allows_no_extension(hub: Hub) -> None:
    number = await _open(hub)
    with pytest.raises(ExtensionRefused, match="allows no extensions"):
        await _extend(hub, number, approved_by="supervisor:s")


async def test_external_appraisal_pauses_the_nfra_clock_and_other_waiting_does_not(
    hub: Hub, clock: ManualClock
) -> None:
    start = clock.now()
    number = await _open(hub, flags=frozenset({"regulator_transfer"}))
    await _move(hub, number, TransitionRequest(Status.in_progress))
    clock.set(start + 2 * D)
    await _move(hub, number, TransitionRequest(Status.pending_internal, reason="legal_opinion"))
    assert (await _clocks(hub, number))["resolution"].state == ClockState.running
    await _move(hub, number, TransitionRequest(Status.in_progress))
    clock.set(start + 3 * D)
    await _move(
        hub, number, TransitionRequest(Status.pending_internal, reason="external_appraisal")
    )
    assert (await _clocks(hub, number))["resolution"].state == ClockState.paused
    clock.set(start + 13 * D)  # ten days with the appraiser
    assert await _tick_until_quiet(hub) == 0
    await _move(hub, number, TransitionRequest(Status.in_progress))
    resolution = (await _clocks(hub, number))["resolution"]
    assert resolution.state == ClockState.running
    assert resolution.due_at == start + 25 * D
    assert (await _ticket(hub, number)).resolution_due_at == start + 25 * D


async def test_waiting_for_the_customer_pauses_the_service_clock(
    hub: Hub, clock: ManualClock
) -> None:
    start = clock.now()
    number = await _open(hub, Kind.consultation)
    await _move(hub, number, TransitionRequest(Status.in_progress))
    clock.set(start + 4 * H)
    await _move(hub, number, TransitionRequest(Status.pending_customer))
    clock.set(start + 100 * H)
    assert await _tick_until_quiet(hub) == 0
    await _move(hub, number, TransitionRequest(Status.in_progress))
    assert (await _clocks(hub, number))["resolution"].due_at == start + 120 * H


async def test_a_resolved_ticket_closes_itself_after_seven_quiet_days(
    hub: Hub, clock: ManualClock
) -> None:
    number = await _open(hub, Kind.consultation)
    await _move(hub, number, TransitionRequest(Status.in_progress))
    await _move(hub, number, TransitionRequest(Status.resolved, Outcome.resolved))
    resolved_at = clock.now()
    clock.set(resolved_at + 7 * D - timedelta(seconds=1))
    await _tick_until_quiet(hub)
    assert (await _ticket(hub, number)).status == Status.resolved
    clock.set(resolved_at + 7 * D)
    await _tick_until_quiet(hub)
    ticket = await _ticket(hub, number)
    assert ticket.status == Status.closed and ticket.closed_at == resolved_at + 7 * D
    assert (
        "ticket.status_changed",
        {"status": "closed", "outcome": "resolved", "reason": "auto_close"},
    ) in await _actions(hub, number)


async def test_a_regulator_transfer_is_not_closed_automatically_before_its_feedback_is_acknowledged(
    hub: Hub, clock: ManualClock
) -> None:
    number = await _open(hub, flags=frozenset({"regulator_transfer"}))
    await _move(hub, number, TransitionRequest(Status.in_progress))
    await _move(hub, number, TransitionRequest(Status.resolved, Outcome.resolved))
    clock.advance(days=8)
    await _tick_until_quiet(hub)
    assert (await _ticket(hub, number)).status == Status.resolved
    async with hub.sessions() as session, session.begin():
        ticket = await get_ticket(session, number, for_update=True)
        ticket.regulator_feedback_acknowledged_at = clock.now()
        session.add(ticket)
    clock.advance(hours=1)
    await _tick_until_quiet(hub)
    assert (await _ticket(hub, number)).status == Status.closed


async def test_a_reply_within_the_window_reopens_and_a_later_one_opens_a_linked_ticket(
    hub: Hub, clock: ManualClock
) -> None:
    number = await _open(hub, Kind.consultation, text="first question")
    await _move(hub, number, TransitionRequest(Status.in_progress))
    await _move(hub, number, TransitionRequest(Status.resolved, Outcome.resolved))
    clock.advance(days=6)
    again = await _open(hub, Kind.consultation, reference=number, text="still wrong")
    assert again == number
    assert (await _ticket(hub, number)).status == Status.reopened
    auto_close = (await _clocks(hub, number))["auto_close"]
    assert auto_close.state == ClockState.stopped

    await _move(hub, number, TransitionRequest(Status.in_progress))
    await _move(hub, number, TransitionRequest(Status.resolved, Outcome.resolved))
    clock.advance(days=7, seconds=1)
    await _tick_until_quiet(hub)
    later = await _open(hub, Kind.consultation, reference=number, text="another problem")
    assert later != number
    linked = await _ticket(hub, later)
    assert linked.related_ticket_id == (await _ticket(hub, number)).id


async def test_a_survey_answer_records_satisfaction_and_does_not_reopen(
    hub: Hub, clock: ManualClock
) -> None:
    number = await _open(hub, Kind.consultation, text="how do I pay")
    await _move(hub, number, TransitionRequest(Status.in_progress))
    await _move(hub, number, TransitionRequest(Status.resolved, Outcome.resolved))
    clock.advance(hours=1)
    assert await _open(hub, Kind.consultation, reference=number, text="满意") == number
    ticket = await _ticket(hub, number)
    assert ticket.status == Status.resolved and ticket.satisfaction == "satisfied"


async def test_the_proposer_of_a_rejection_cannot_approve_it(hub: Hub) -> None:
    number = await _open(hub)
    await _move(hub, number, TransitionRequest(Status.in_progress))
    await _move(
        hub, number, TransitionRequest(Status.under_review, Outcome.rejected), actor="agent:a"
    )
    with pytest.raises(IllegalTransition, match="cannot review it"):
        await _move(
            hub,
            number,
            TransitionRequest(Status.resolved, review_approved=True),
            actor="agent:a",
        )
    await _move(
        hub,
        number,
        TransitionRequest(Status.resolved, review_approved=True),
        actor="supervisor:s",
    )
    ticket = await _ticket(hub, number)
    assert ticket.status == Status.resolved and ticket.review_state == "approved"


async def test_a_customer_writing_after_our_answer_starts_the_next_response_clock(
    hub: Hub, clock: ManualClock
) -> None:
    number = await _open(hub)
    await _reply(hub, number)
    clock.advance(hours=2)
    await _open(hub, reference=number, text="any news?")
    next_response = (await _clocks(hub, number))["next_response"]
    assert next_response.state == ClockState.running
    assert next_response.due_at == clock.now() + 24 * H
    await _reply(hub, number)
    assert (await _clocks(hub, number))["next_response"].state == ClockState.met


async def test_one_tick_breaches_many_tickets_in_ticket_order_with_chained_events(
    hub: Hub, clock: ManualClock
) -> None:
    """The tick writes a batch's events together; each keeps its place in its ticket's
    chain, the ids follow the order the tickets were acted on, and every head verifies."""
    start = clock.now()
    numbers = [await _open(hub, who=f"user{i}") for i in range(3)]
    async with hub.sessions() as session:
        before = (await session.exec(select(func.max(AuditEvent.id)))).one() or 0
    clock.set(start + 73 * H)
    assert await hub.scheduler.tick() == 6  # each ticket's two clocks breach in one tick
    assert await hub.scheduler.tick() == 0

    async with hub.sessions() as session:
        ids = {(await get_ticket(session, number)).id: number for number in numbers}
        written = (
            await session.exec(
                select(AuditEvent)
                .where(col(AuditEvent.id) > before)
                .where(col(AuditEvent.action).in_(["sla.breached", "ticket.escalated"]))
                .order_by(col(AuditEvent.id))
            )
        ).all()
    assert [e.id for e in written] == list(range(written[0].id or 0, (written[0].id or 0) + 9))
    assert [(e.ticket_id, e.action, e.after.get("clock")) for e in written] == [
        (ticket_id, action, name)
        for ticket_id in sorted(ids)
        for action, name in (
            ("sla.breached", "first_response"),
            ("ticket.escalated", "first_response"),
            ("sla.breached", "resolution"),
        )
    ]
    for number in numbers:
        await _actions(hub, number)  # verifies the ticket's chain
        assert (await _ticket(hub, number)).queue == "supervisors"
    result = await verify_store(hub.reads)
    assert result.ok, [str(p) for p in result.problems]


async def test_the_scheduler_only_reads_what_is_due(hub: Hub, clock: ManualClock) -> None:
    for i in range(5):
        await _open(hub, who=f"user{i}")
    async with hub.sessions() as session:
        due = (
            await session.exec(
                select(SlaClock).where(col(SlaClock.next_check_at) <= clock.now() + 30 * H)
            )
        ).all()
    assert due == []
    assert await hub.scheduler.tick() == 0
    _ = UTC
