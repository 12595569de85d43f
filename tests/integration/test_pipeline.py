"""Envelopes to tickets on real SQLite and PostgreSQL.

Exactly once per envelope; a failure is isolated, kept and retried.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlmodel import col, select

from hub.runtime import Hub
from hub.sdk import InboundEnvelope
from hub.store import Envelope, EnvelopeStatus, OutboxRow
from tests.app_pushes import app_message
from tests.conftest import drain
from ticket_core import AuditEvent, ManualClock, Message, Status, Ticket, verify_chain


def _envelope(
    clock: ManualClock, external_id: str, body: bytes, channel: str = "app"
) -> InboundEnvelope:
    return InboundEnvelope(
        channel=channel,
        external_id=external_id,
        body=body,
        content_type="application/json",
        received_at=clock.now(),
    )


async def _envelopes(hub: Hub) -> list[Envelope]:
    async with hub.sessions() as session:
        return list((await session.exec(select(Envelope).order_by(col(Envelope.id)))).all())


async def test_envelope_becomes_open_ticket_with_message_ack_and_audit(
    hub: Hub, clock: ManualClock
) -> None:
    result = await hub.envelopes.accept(_envelope(clock, "m-1", app_message()))
    assert result.created
    assert await hub.pipeline.process_once() == 1
    async with hub.sessions() as session:
        ticket = (await session.exec(select(Ticket))).one()
        messages = (await session.exec(select(Message).order_by(col(Message.id)))).all()
        outbox = (await session.exec(select(OutboxRow))).all()
        events = (await session.exec(select(AuditEvent).order_by(col(AuditEvent.id)))).all()
    assert ticket.status == Status.open
    assert ticket.number == f"TD-{clock.now():%Y%m%d}-{ticket.id:06d}"
    assert ticket.resolution_due_at == clock.now() + timedelta(hours=72)
    assert [(m.direction, m.purpose) for m in messages] == [
        ("in", "customer"),
        ("out", "acknowledgement"),
    ]
    assert len(outbox) == 1 and outbox[0].message_id == messages[1].id
    assert [e.action for e in events] == [
        "ticket.created",
        "message.received",
        "message.acknowledgement",
        "ticket.status_changed",
    ]
    assert verify_chain(list(events)) == []
    (envelope,) = await _envelopes(hub)
    assert envelope.status == EnvelopeStatus.processed
    assert envelope.ticket_number == ticket.number


async def test_same_external_id_is_stored_once(hub: Hub, clock: ManualClock) -> None:
    first = await hub.envelopes.accept(_envelope(clock, "dup", app_message()))
    second = await hub.envelopes.accept(_envelope(clock, "dup", app_message("different body")))
    assert first.created and not second.created
    assert first.receipt == second.receipt
    await drain(hub)
    async with hub.sessions() as session:
        assert (
            len((await session.exec(select(Message).where(Message.direction == "in"))).all()) == 1
        )


async def test_envelopes_arriving_together_share_one_commit_and_each_key_is_stored_once(
    hub: Hub, clock: ManualClock
) -> None:
    """One group commit holds a new key twice, a key stored earlier and the same id on two
    channels: each key is stored once and every duplicate answers with the first receipt."""
    earlier = await hub.envelopes.accept(_envelope(clock, "old", app_message()))
    arriving = [
        _envelope(clock, "new", app_message()),
        _envelope(clock, "old", app_message("a retry")),
        _envelope(clock, "new", app_message("a concurrent retry")),
        _envelope(clock, "new", b"{}", channel="web"),
    ]
    results = await asyncio.gather(*(hub.envelopes.accept(e) for e in arriving))
    assert [r.created for r in results] == [True, False, False, True]
    assert results[1].receipt == earlier.receipt
    assert results[2].receipt == results[0].receipt != results[3].receipt
    assert len({e.receipt for e in await _envelopes(hub)}) == 3


async def test_same_external_id_on_another_channel_is_a_different_message(
    hub: Hub, clock: ManualClock
) -> None:
    first = await hub.envelopes.accept(_envelope(clock, "42", app_message()))
    other = await hub.envelopes.accept(_envelope(clock, "42", b"{}", channel="web"))
    assert first.created and other.created and first.receipt != other.receipt


async def test_failing_envelope_is_marked_failed_and_does_not_block_the_others(
    hub: Hub, clock: ManualClock
) -> None:
    await hub.envelopes.accept(_envelope(clock, "a", app_message(user_id="u-a")))
    await hub.envelopes.accept(_envelope(clock, "broken", b'{"user_id": "u"}'))
    await hub.envelopes.accept(_envelope(clock, "b", app_message(user_id="u-b")))
    assert await hub.pipeline.process_once() == 3
    statuses = {e.external_id: (e.status, e.attempts, e.last_error) for e in await _envelopes(hub)}
    assert statuses["a"][0] == statuses["b"][0] == EnvelopeStatus.processed
    status, attempts, error = statuses["broken"]
    assert (status, attempts) == (EnvelopeStatus.failed, 1)
    assert error == "ValidationError: text: Field required"
    async with hub.sessions() as session:
        assert len((await session.exec(select(Ticket))).all()) == 2


async def test_failed_envelope_is_retried_with_backoff_and_never_vanishes(
    hub: Hub, clock: ManualClock
) -> None:
    await hub.envelopes.accept(_envelope(clock, "broken", b'{"user_id": "u"}'))
    assert await hub.pipeline.process_once() == 1
    assert await hub.pipeline.process_once() == 0  # not due yet
    clock.advance(seconds=1)
    assert await hub.pipeline.process_once() == 1
    clock.advance(seconds=2)
    assert await hub.pipeline.process_once() == 1
    (envelope,) = await _envelopes(hub)
    assert envelope.status == EnvelopeStatus.failed
    assert envelope.attempts == 3
    assert envelope.next_attempt_at == clock.now() + timedelta(seconds=4)
    # After the budget the envelope stays, failed and visible, until an operator retries it.
    for _ in range(20):
        clock.advance(hours=2)
        await hub.pipeline.process_once()
    (envelope,) = await _envelopes(hub)
    assert envelope.status == EnvelopeStatus.failed
    assert envelope.attempts == hub.settings.worker.envelope_max_attempts


async def test_envelope_of_a_channel_not_enabled_here_waits_untouched(
    hub: Hub, clock: ManualClock
) -> None:
    await hub.envelopes.accept(_envelope(clock, "k-1", b"{}", channel="kiosk"))
    assert await hub.pipeline.process_once() == 0
    (envelope,) = await _envelopes(hub)
    assert (envelope.status, envelope.attempts) == (EnvelopeStatus.pending, 0)


async def test_failure_reason_never_carries_the_message_text(hub: Hub, clock: ManualClock) -> None:
    body = b'{"user_id": "u", "text": 12345678901234567}'
    await hub.envelopes.accept(_envelope(clock, "pii", body))
    await hub.pipeline.process_once()
    (envelope,) = await _envelopes(hub)
    assert "12345678901234567" not in (envelope.last_error or "")
    assert envelope.last_error == "ValidationError: text: Input should be a valid string"


async def test_envelope_with_unparseable_body_fails_with_its_error(
    hub: Hub, clock: ManualClock
) -> None:
    await hub.envelopes.accept(_envelope(clock, "junk", b"not json"))
    await hub.pipeline.process_once()
    (envelope,) = await _envelopes(hub)
    assert envelope.status == EnvelopeStatus.failed
    assert "ValidationError" in (envelope.last_error or "")


async def test_messages_from_one_app_user_reach_one_customer(hub: Hub, clock: ManualClock) -> None:
    await hub.envelopes.accept(_envelope(clock, "1", app_message("first", user_id="same")))
    await hub.envelopes.accept(_envelope(clock, "2", app_message("second", user_id="same")))
    await hub.envelopes.accept(_envelope(clock, "3", app_message("third", user_id="other")))
    await drain(hub)
    async with hub.sessions() as session:
        tickets = (await session.exec(select(Ticket).order_by(col(Ticket.id)))).all()
    assert tickets[0].customer_id == tickets[1].customer_id
    assert tickets[2].customer_id != tickets[0].customer_id


async def test_unverified_phone_never_joins_two_customers(hub: Hub, clock: ManualClock) -> None:
    await hub.envelopes.accept(_envelope(clock, "1", app_message(user_id="x", phone="13800000000")))
    await hub.envelopes.accept(_envelope(clock, "2", app_message(user_id="y", phone="13800000000")))
    await drain(hub)
    async with hub.sessions() as session:
        tickets = (await session.exec(select(Ticket))).all()
    assert len({t.customer_id for t in tickets}) == 2


async def _ticket(hub: Hub) -> Ticket:
    async with hub.sessions() as session:
        return (await session.exec(select(Ticket).order_by(col(Ticket.id)))).first()  # type: ignore[return-value]


async def _resolve(hub: Hub, clock: ManualClock, number: str) -> None:
    from ticket_core import Outcome, TransitionRequest, get_ticket, transition

    async with hub.sessions() as session, session.begin():
        ticket = await get_ticket(session, number, for_update=True)
        for step in (
            TransitionRequest(Status.in_progress),
            TransitionRequest(Status.resolved, Outcome.resolved),
        ):
            await transition(session, ticket, step, actor="agent:test", now=clock.now())


async def test_message_within_reopen_window_reopens_a_resolved_ticket(
    hub: Hub, clock: ManualClock
) -> None:
    await hub.envelopes.accept(_envelope(clock, "1", app_message(user_id="r")))
    await drain(hub)
    number = (await _ticket(hub)).number
    await _resolve(hub, clock, number)
    clock.advance(days=6)
    await hub.envelopes.accept(
        _envelope(clock, "2", app_message("还是没到账", user_id="r", ticket_number=number))
    )
    await drain(hub)
    ticket = await _ticket(hub)
    assert ticket.status == Status.reopened


async def test_message_after_reopen_window_opens_a_new_ticket(hub: Hub, clock: ManualClock) -> None:
    await hub.envelopes.accept(_envelope(clock, "1", app_message(user_id="r")))
    await drain(hub)
    number = (await _ticket(hub)).number
    await _resolve(hub, clock, number)
    clock.advance(days=8)
    await hub.envelopes.accept(
        _envelope(clock, "2", app_message("又出问题了", user_id="r", ticket_number=number))
    )
    await drain(hub)
    async with hub.sessions() as session:
        tickets = (await session.exec(select(Ticket).order_by(col(Ticket.id)))).all()
    assert [t.status for t in tickets] == [Status.resolved, Status.open]


async def test_received_at_survives_the_round_trip_as_utc(hub: Hub) -> None:
    moment = datetime(2026, 11, 23, 1, 2, 3, tzinfo=UTC)
    await hub.envelopes.accept(
        InboundEnvelope("app", "tz", app_message(), "application/json", moment)
    )
    (envelope,) = await _envelopes(hub)
    assert envelope.received_at == moment
    assert envelope.received_at.tzinfo is not None


async def test_envelopes_arriving_together_commit_together_and_dedupe(
    hub: Hub, clock: ManualClock
) -> None:
    import asyncio

    envelopes = [_envelope(clock, f"g-{i}", app_message(user_id=f"g{i}")) for i in range(40)]
    envelopes.append(_envelope(clock, "g-0", app_message("repeat", user_id="g0")))
    results = await asyncio.gather(*(hub.envelopes.accept(e) for e in envelopes))
    assert sum(r.created for r in results) == 40
    assert results[-1].receipt == results[0].receipt and not results[-1].created
    assert len(await _envelopes(hub)) == 40


async def test_one_envelope_the_store_refuses_does_not_fail_its_neighbours(
    hub: Hub, clock: ManualClock, database_url: str
) -> None:
    import asyncio

    good = [_envelope(clock, f"n-{i}", app_message(user_id=f"n{i}")) for i in range(5)]
    bad = _envelope(clock, "bad", app_message(), channel="c" * 60)  # longer than the column
    outcomes = await asyncio.gather(
        *(hub.envelopes.accept(e) for e in [*good, bad]), return_exceptions=True
    )
    assert all(not isinstance(o, Exception) and o.created for o in outcomes[:5])
    if database_url.startswith("postgresql"):  # SQLite does not enforce column lengths
        assert isinstance(outcomes[5], Exception)
    stored = {e.external_id for e in await _envelopes(hub)}
    assert {f"n-{i}" for i in range(5)} <= stored
