"""The outbox on real SQLite and PostgreSQL: at least once, backoff, dead letters, replay."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

import httpx
import pytest
from sqlmodel import col, select

from hub.runtime import Hub
from hub.sdk import InboundEnvelope
from hub.settings import Settings
from hub.store import OutboxRow, OutboxStatus
from hub.testing import SignedWebhookReceiver
from tests.app_pushes import app_message
from tests.conftest import drain
from ticket_core import ManualClock, Message


async def _open_tickets(hub: Hub, clock: ManualClock, count: int, prefix: str = "m") -> None:
    for i in range(count):
        envelope = InboundEnvelope(
            "app",
            f"{prefix}-{i}",
            app_message(user_id=f"{prefix}-user-{i}"),
            "application/json",
            clock.now(),
        )
        await hub.envelopes.accept(envelope)
    while await hub.pipeline.process_once(200):
        pass


async def _rows(hub: Hub) -> list[OutboxRow]:
    async with hub.sessions() as session:
        return list((await session.exec(select(OutboxRow).order_by(col(OutboxRow.id)))).all())


async def _ack_message(hub: Hub) -> Message:
    async with hub.sessions() as session:
        return (await session.exec(select(Message).where(Message.direction == "out"))).one()


async def test_delivery_carries_the_rows_idempotency_key(
    hub: Hub, clock: ManualClock, receiver: SignedWebhookReceiver
) -> None:
    await _open_tickets(hub, clock, 1)
    assert await hub.dispatcher.dispatch_once() == 1
    (row,) = await _rows(hub)
    assert row.status == OutboxStatus.delivered
    assert receiver.ids == [row.idempotency_key]
    assert (await _ack_message(hub)).delivery_state == "delivered"


async def test_peer_down_delivery_waits_with_backoff_and_arrives_when_back(
    hub: Hub, clock: ManualClock, receiver: SignedWebhookReceiver
) -> None:
    await _open_tickets(hub, clock, 1)
    receiver.fail_with = 503
    await hub.dispatcher.dispatch_once()
    (row,) = await _rows(hub)
    assert (row.status, row.attempts) == (OutboxStatus.pending, 1)
    assert row.last_error and row.last_error.startswith("HTTP 503")
    assert row.next_attempt_at == clock.now() + timedelta(seconds=2)
    assert await hub.dispatcher.dispatch_once() == 0  # not due before its backoff
    clock.advance(seconds=2)
    await hub.dispatcher.dispatch_once()
    (row,) = await _rows(hub)
    assert row.next_attempt_at == clock.now() + timedelta(seconds=4)
    receiver.fail_with = None
    clock.advance(seconds=4)
    assert await hub.dispatcher.dispatch_once() == 1
    (row,) = await _rows(hub)
    assert (row.status, row.attempts) == (OutboxStatus.delivered, 3)
    assert len(receiver.received) == 1


async def test_connection_refused_is_retried(
    hub: Hub, clock: ManualClock, receiver: SignedWebhookReceiver
) -> None:
    await _open_tickets(hub, clock, 1)
    await receiver.stop()
    await hub.dispatcher.dispatch_once()
    (row,) = await _rows(hub)
    assert row.status == OutboxStatus.pending
    assert "connection error" in (row.last_error or "")


async def test_retry_after_from_the_peer_is_honoured(
    hub: Hub, clock: ManualClock, receiver: SignedWebhookReceiver
) -> None:
    from aiohttp import web

    await _open_tickets(hub, clock, 1)
    original = receiver._handle

    async def throttled(request: web.Request) -> web.Response:
        return web.Response(status=429, headers={"retry-after": "120"})

    receiver._handle = throttled  # type: ignore[method-assign]
    try:
        await receiver.stop()
        await receiver.start(port=int(receiver.url.split(":")[2].split("/")[0]))
        await hub.dispatcher.dispatch_once()
    finally:
        receiver._handle = original  # type: ignore[method-assign]
    (row,) = await _rows(hub)
    assert row.next_attempt_at == clock.now() + timedelta(seconds=120)


async def test_retry_budget_spent_dead_letters_with_last_error(
    hub: Hub, clock: ManualClock, receiver: SignedWebhookReceiver
) -> None:
    await _open_tickets(hub, clock, 1)
    receiver.fail_with = 502
    for _ in range(hub.settings.outbox.max_attempts):
        clock.advance(hours=2)
        await hub.dispatcher.dispatch_once()
    (row,) = await _rows(hub)
    assert row.status == OutboxStatus.dead
    assert row.attempts == hub.settings.outbox.max_attempts
    assert "retry budget spent after 4 attempts" in (row.last_error or "")
    assert "HTTP 502" in (row.last_error or "")
    message = await _ack_message(hub)
    assert message.delivery_state == "failed"
    assert "HTTP 502" in (message.delivery_error or "")


async def test_permanent_refusal_gives_up_at_once(
    hub: Hub, clock: ManualClock, receiver: SignedWebhookReceiver
) -> None:
    await _open_tickets(hub, clock, 1)
    receiver.fail_with = 400
    await hub.dispatcher.dispatch_once()
    (row,) = await _rows(hub)
    assert (row.status, row.attempts) == (OutboxStatus.dead, 1)
    assert (row.last_error or "").startswith("gave up: HTTP 400")


async def test_dead_letter_replays_with_same_idempotency_key(
    hub: Hub, clock: ManualClock, receiver: SignedWebhookReceiver
) -> None:
    from hub.outbox import replay

    await _open_tickets(hub, clock, 1)
    receiver.fail_with = 400
    await hub.dispatcher.dispatch_once()
    receiver.fail_with = None
    (row,) = await _rows(hub)
    async with hub.sessions() as session, session.begin():
        await replay(session, row.id, clock.now())  # type: ignore[arg-type]
    assert (await _ack_message(hub)).delivery_state == "pending"
    await hub.dispatcher.dispatch_once()
    (after,) = await _rows(hub)
    assert after.status == OutboxStatus.delivered
    assert receiver.ids == [row.idempotency_key]
    assert (await _ack_message(hub)).delivery_state == "delivered"


async def test_expired_lease_lets_another_dispatcher_take_over(
    hub: Hub, clock: ManualClock, receiver: SignedWebhookReceiver
) -> None:
    """A dispatcher that died mid-send leaves its claim; after the lease another one delivers."""
    await _open_tickets(hub, clock, 1)
    claims = await hub.dispatcher._claim(10)  # claimed, then the process "dies"
    assert len(claims) == 1
    assert await hub.dispatcher.dispatch_once() == 0
    clock.advance(seconds=hub.settings.outbox.lease_seconds + 1)
    assert await hub.dispatcher.dispatch_once() == 1
    (row,) = await _rows(hub)
    assert row.status == OutboxStatus.delivered
    # The late result of the dead claim must not overwrite the new owner's record.
    from hub.sdk import DeliveryResult

    await hub.dispatcher._record(claims[0], DeliveryResult.retry("late"), 0.0)
    (row,) = await _rows(hub)
    assert row.status == OutboxStatus.delivered


async def test_a_slow_send_keeps_its_lease_so_no_other_dispatcher_sends_the_row_again(
    settings: Settings, hub: Hub, clock: ManualClock, receiver: SignedWebhookReceiver
) -> None:
    """The lease is renewed while a POST is in flight: past the first lease a second
    dispatcher finds nothing to claim, and the row reaches the peer once."""
    await _open_tickets(hub, clock, 1)
    lease = hub.settings.outbox.lease_seconds
    receiver.hold = asyncio.Event()
    sending = asyncio.create_task(hub.dispatcher.dispatch_once())
    other = await Hub(settings, clock=clock).open(migrate=False)
    try:
        await _until(lambda: bool(receiver.ids))
        (row,) = await _rows(hub)
        first_lease = row.locked_until
        assert first_lease is not None
        clock.advance(seconds=lease / 2)

        async def renewed() -> bool:
            (row,) = await _rows(hub)
            return row.locked_until is not None and row.locked_until > first_lease

        await _until(renewed)
        clock.advance(seconds=lease * 0.6)  # past the first lease, within the renewed one
        assert await other.dispatcher.dispatch_once() == 0
        receiver.hold.set()
        assert await sending == 1
    finally:
        receiver.hold.set()
        await other.close()
    (row,) = await _rows(hub)
    assert (row.status, row.attempts, row.locked_until) == (OutboxStatus.delivered, 1, None)
    assert receiver.ids == [row.idempotency_key]


async def _until(condition: Callable[[], bool | Awaitable[bool]], within: float = 10) -> None:
    """Waits (real time) for work the code under test does in the background."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        outcome = condition()
        if outcome if isinstance(outcome, bool) else await outcome:
            return
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.02)


async def test_two_dispatchers_on_separate_connections_deliver_each_row_exactly_once(
    settings: Settings,
    hub: Hub,
    clock: ManualClock,
    receiver: SignedWebhookReceiver,
    database_url: str,
) -> None:
    """On PostgreSQL the claims race through FOR UPDATE SKIP LOCKED; on SQLite through the
    single BEGIN IMMEDIATE writer. The sends get a generous timeout: a send that timed out on
    a loaded machine would rightly be sent again (at least once), which is not what this
    test is about."""
    await _open_tickets(hub, clock, 300)
    patient = settings.model_copy(
        update={"outbox": settings.outbox.model_copy(update={"http_timeout": 30})}
    )
    hub.http.timeout = httpx.Timeout(30)  # the client every connector of this hub shares
    other = await Hub(patient, clock=clock).open(migrate=False)
    try:

        async def run(instance: Hub) -> int:
            total = 0
            while attempted := await instance.dispatcher.dispatch_once(25):
                total += attempted
            return total

        counts = await asyncio.gather(run(hub), run(other))
    finally:
        await other.close()
    rows = await _rows(hub)
    assert all(r.status == OutboxStatus.delivered for r in rows)
    assert len(rows) == 300
    assert sorted(receiver.ids) == sorted(r.idempotency_key for r in rows)
    assert len(set(receiver.ids)) == len(receiver.ids) == 300
    assert sum(counts) == 300
    if database_url.startswith("postgresql"):
        assert min(counts) > 0, f"both dispatchers should have claimed work: {counts}"


async def test_drain_delivers_everything(
    hub: Hub, clock: ManualClock, receiver: SignedWebhookReceiver
) -> None:
    await _open_tickets(hub, clock, 5)
    await drain(hub)
    assert len(receiver.received) == 5


async def test_a_tickets_messages_leave_in_order_even_when_the_first_is_retrying(
    hub: Hub, clock: ManualClock, receiver: SignedWebhookReceiver
) -> None:
    from hub.outbox import enqueue_message
    from ticket_core import add_outbound, get_ticket, latest_reply_address

    await _open_tickets(hub, clock, 2)
    receiver.fail_with = 503
    await hub.dispatcher.dispatch_once()  # both acknowledgements fail and back off
    rows = await _rows(hub)
    async with hub.sessions() as session, session.begin():
        ticket = await get_ticket(session, rows[0].payload["ticket_number"], for_update=True)
        reply = await add_outbound(
            session,
            ticket,
            text="已处理",
            author="agent:a",
            purpose="reply",
            reply_to=await latest_reply_address(session, ticket),
            now=clock.now(),
        )
        enqueue_message(session, ticket, reply, clock.now())
    receiver.fail_with = None
    assert await hub.dispatcher.dispatch_once() == 0  # the reply waits behind its ack
    clock.advance(seconds=2)
    await drain(hub)
    purposes = [(r["ticket_number"], r["purpose"]) for r in receiver.received]
    first_ticket = rows[0].payload["ticket_number"]
    assert [p for t, p in purposes if t == first_ticket] == ["acknowledgement", "reply"]
    assert len(purposes) == 3


async def test_a_long_run_of_one_tickets_waiting_messages_does_not_hold_up_another_ticket(
    hub: Hub, clock: ManualClock, receiver: SignedWebhookReceiver
) -> None:
    from hub.outbox import enqueue_message
    from ticket_core import add_outbound, get_ticket, latest_reply_address

    await _open_tickets(hub, clock, 1, prefix="busy")
    receiver.fail_with = 503
    await hub.dispatcher.dispatch_once()  # the acknowledgement backs off
    (first,) = await _rows(hub)
    async with hub.sessions() as session, session.begin():
        ticket = await get_ticket(session, first.payload["ticket_number"], for_update=True)
        reply_to = await latest_reply_address(session, ticket)
        for n in range(300):  # due now, each blocked behind the acknowledgement
            reply = await add_outbound(
                session,
                ticket,
                text=f"第{n}条",
                author="agent:a",
                purpose="reply",
                reply_to=reply_to,
                now=clock.now(),
            )
            enqueue_message(session, ticket, reply, clock.now())
    await _open_tickets(hub, clock, 1, prefix="quiet")
    receiver.fail_with = None
    assert await hub.dispatcher.dispatch_once() == 1
    (delivered,) = [r for r in await _rows(hub) if r.status == OutboxStatus.delivered]
    assert delivered.ticket_id != first.ticket_id
    clock.advance(seconds=2)
    while await hub.dispatcher.dispatch_once():  # one a round: each waits for the one before
        pass
    texts = [r["text"] for r in receiver.received if r["purpose"] == "reply"]
    assert texts == [f"第{n}条" for n in range(300)]


async def test_replaying_a_row_that_is_being_sent_is_refused(hub: Hub, clock: ManualClock) -> None:
    from hub.outbox import InFlight, replay

    await _open_tickets(hub, clock, 1)
    (claim,) = await hub.dispatcher._claim(10)
    async with hub.sessions() as session, session.begin():
        with pytest.raises(InFlight, match="being sent now"):
            await replay(session, claim.row_id, clock.now())
