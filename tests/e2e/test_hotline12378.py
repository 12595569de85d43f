"""The 12378 channel through real HTTP, as the spec fixes it, on SQLite and PostgreSQL: transfers
pushed in, tickets with the regulator's clocks, result feedback to the branch's endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import col, func, select

from hub import ingest
from hub.auth import Role
from hub.runtime import Hub
from hub.settings import Settings
from hub.store import Envelope, OutboxRow
from hub.testing.standins.regulator import RegulatorStandIn
from tests.conftest import drain
from tests.hotline_transfers import (
    FEEDBACK_SECRET,
    RESIDENT_ID,
    SHANGHAI_SECRET,
    STRANGER_SECRET,
    encode,
    hotline_config,
    push,
    signed,
    transfer,
)
from ticket_core import AuditEvent, Customer, ManualClock, Message, Ticket


@pytest.fixture
async def regulator(clock: ManualClock) -> AsyncIterator[RegulatorStandIn]:
    """The Beijing branch's feedback endpoint."""
    stand_in = RegulatorStandIn(secrets=[FEEDBACK_SECRET], now=clock.now)
    await stand_in.start()
    yield stand_in
    await stand_in.stop()


@pytest.fixture
def settings(database_url: str, regulator: RegulatorStandIn) -> Settings:
    return Settings(
        database={"url": database_url},
        worker={"in_process": False},
        outbox={"backoff_initial": 2, "max_attempts": 4, "http_timeout": 2},
        connectors={"hotline12378": hotline_config(regulator.url)},
    )


async def _count(hub: Hub, model: type) -> int:
    async with hub.sessions() as session:
        return (await session.exec(select(func.count()).select_from(model))).one()


async def _ticket(hub: Hub, transfer_id: str) -> Ticket:
    async with hub.sessions() as session:
        row = (
            await session.exec(select(Envelope).where(Envelope.external_id == transfer_id))
        ).one()
        assert row.ticket_number, f"envelope not processed: {row.status} {row.last_error}"
        return (await session.exec(select(Ticket).where(Ticket.number == row.ticket_number))).one()


async def _audit(hub: Hub, ticket: Ticket, action: str) -> list[AuditEvent]:
    async with hub.sessions() as session:
        query = (
            select(AuditEvent)
            .where(AuditEvent.ticket_id == ticket.id)
            .where(AuditEvent.action == action)
            .order_by(col(AuditEvent.id))
        )
        return list((await session.exec(query)).all())


async def _feedback_row(hub: Hub, ticket: Ticket) -> OutboxRow:
    async with hub.sessions() as session:
        query = (
            select(OutboxRow)
            .where(OutboxRow.ticket_id == ticket.id)
            .where(OutboxRow.purpose == "regulator_feedback")
        )
        return (await session.exec(query)).one()


# --- push ----------------------------------------------------------------------------------


async def test_push_is_acknowledged_with_a_receipt_once_stored(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock
) -> None:
    body = transfer(clock.now())
    response = await push(api, body, clock.now())
    assert response.status_code == 202
    assert response.json()["transfer_id"] == body["transfer_id"]
    assert response.json()["receipt"].startswith("rcpt_")
    async with hub.sessions() as session:
        stored = (await session.exec(select(Envelope))).one()
    assert (stored.channel, stored.external_id) == ("hotline12378", body["transfer_id"])
    assert stored.meta["branch"] == "beijing"


async def test_same_transfer_id_again_answers_200_with_the_first_receipt_and_changes_nothing(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock
) -> None:
    body = transfer(clock.now())
    first = await push(api, body, clock.now())
    await drain(hub)
    # A new webhook-id and an edited summary: the transfer_id alone decides.
    again = await push(api, {**body, "summary": "改过的内容"}, clock.now())
    batch = await push(api, {"transfers": [body]}, clock.now())
    await drain(hub)
    assert first.status_code == 202
    assert again.status_code == 200 and again.json() == first.json()
    assert batch.status_code == 200
    assert batch.json()["transfers"] == [
        {"transfer_id": body["transfer_id"], "receipt": first.json()["receipt"], "created": False}
    ]
    assert await _count(hub, Envelope) == 1
    assert await _count(hub, Ticket) == 1
    async with hub.sessions() as session:
        inbound = (await session.exec(select(Message).where(Message.direction == "in"))).one()
    assert body["summary"] in inbound.text and "改过的内容" not in inbound.text


async def test_bad_signature_is_refused_401_and_nothing_stored(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock
) -> None:
    body = encode(transfer(clock.now()))
    stranger = await push(api, body, clock.now(), secret=STRANGER_SECRET)
    headers = signed(body, clock.now())
    tampered = await api.post(
        "/channels/hotline12378/transfers", content=body.replace(b"300", b"900"), headers=headers
    )
    unsigned = await api.post(
        "/channels/hotline12378/transfers",
        content=body,
        headers={"content-type": "application/json"},
    )
    stale = await push(api, body, clock.now() - timedelta(minutes=6))
    assert [r.status_code for r in (stranger, tampered, unsigned, stale)] == [401] * 4
    assert "matches no configured branch" in stranger.json()["detail"]
    assert "missing header" in unsigned.json()["detail"]
    assert "too old" in stale.json()["detail"]
    assert await _count(hub, Envelope) == 0


async def test_invalid_transfer_is_refused_422_naming_every_bad_field(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock
) -> None:
    body = transfer(
        clock.now(),
        transfer_type="hot_transfer",
        received_at="2026-11-20 09:30",
        complainant={"name": "", "phone": "call me"},
        summary="",
    )
    del body["institution"]
    response = await push(api, body, clock.now())
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {
        "received_at",
        "complainant.name",
        "complainant.phone",
        "institution",
        "summary",
        "call_id",
    }
    assert await _count(hub, Envelope) == 0


async def test_batch_with_a_bad_transfer_is_refused_whole_naming_its_index(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock
) -> None:
    good = [transfer(clock.now()) for _ in range(3)]
    bad = transfer(clock.now(), deadline="not a date")
    response = await push(api, {"transfers": [*good, bad, good[0]]}, clock.now())
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {
        "transfers.3.deadline",
        "transfers.4.transfer_id",
    }
    assert "repeats transfers.0.transfer_id" in response.text
    assert await _count(hub, Envelope) == 0


async def test_a_batch_of_500_transfers_is_stored_in_a_few_commits(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    commits: list[int] = []
    original = ingest.store_envelopes

    async def counted(session: Any, envelopes: list[Any]) -> Any:
        commits.append(len(envelopes))  # one call per group commit's transaction
        return await original(session, envelopes)

    monkeypatch.setattr(ingest, "store_envelopes", counted)
    transfers = [transfer(clock.now()) for _ in range(500)]
    response = await push(api, {"transfers": transfers}, clock.now())
    assert response.status_code == 202
    answer = response.json()
    assert (answer["stored"], answer["duplicates"]) == (500, 0)
    assert [t["transfer_id"] for t in answer["transfers"]] == [t["transfer_id"] for t in transfers]
    assert await _count(hub, Envelope) == 500
    assert sum(commits) == 500 and len(commits) <= 3, commits
    again = await push(api, {"transfers": transfers}, clock.now())
    assert again.status_code == 200 and again.json()["duplicates"] == 500
    assert await _count(hub, Envelope) == 500


# --- the ticket ----------------------------------------------------------------------------


async def test_transfer_becomes_a_regulator_complaint_in_the_consumer_protection_queue(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, make_key: Any
) -> None:
    body = transfer(clock.now(), call_id="CALL-1")
    await push(api, body, clock.now())
    await drain(hub)
    ticket = await _ticket(hub, body["transfer_id"])
    assert ticket.kind == "complaint"
    assert ticket.is_regulator_transfer
    assert ticket.queue == "consumer-protection"
    assert ticket.priority == "high"
    assert ticket.category_codes == {"channel": "A01", "business": "B0203", "cause": "C0101"}
    assert {(r["kind"], r["id"]) for r in ticket.external_refs} == {
        ("hotline12378.transfer", body["transfer_id"]),
        ("hotline12378.call", "CALL-1"),
    }
    view = (
        await api.get(f"/api/v1/tickets/{ticket.number}", headers=await make_key(Role.agent))
    ).json()
    assert view["flags"]["regulator_transfer"] is True
    assert view["customer"]["display_name"] == "王**"


async def test_priority_is_raised_for_elderly_and_foreign_complainants_and_hot_transfers(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock
) -> None:
    now = clock.now()
    cases = {
        "plain": transfer(now, complainant={"name": "甲", "phone": "13800000001"}),
        "elderly": transfer(
            now, complainant={"name": "乙", "phone": "13800000002", "tags": ["elderly"]}
        ),
        "foreign": transfer(
            now, complainant={"name": "Anna", "phone": "+49 30 1234567", "tags": ["foreign"]}
        ),
        "hot": transfer(now, transfer_type="hot_transfer", call_id="CALL-9"),
    }
    response = await push(api, {"transfers": list(cases.values())}, now)
    assert response.status_code == 202
    await drain(hub)
    got = {}
    for name, body in cases.items():
        ticket = await _ticket(hub, body["transfer_id"])
        got[name] = (ticket.priority, ticket.queue)
    assert got == {
        "plain": ("high", "consumer-protection"),
        "elderly": ("urgent", "consumer-protection"),
        "foreign": ("urgent", "consumer-protection"),
        "hot": ("urgent", "consumer-protection"),
    }
    elderly = await _ticket(hub, cases["elderly"]["transfer_id"])
    assert elderly.is_vulnerable


async def test_clock_starts_at_received_at_not_at_arrival(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock
) -> None:
    now = clock.now()
    received = (now - timedelta(days=7)).replace(microsecond=0)
    fresh = transfer(now, received_at=now.isoformat(), transferred_at=now.isoformat())
    old = transfer(now, received_at=received.isoformat())
    await push(api, {"transfers": [fresh, old]}, now)
    await drain(hub)
    fresh_ticket = await _ticket(hub, fresh["transfer_id"])
    old_ticket = await _ticket(hub, old["transfer_id"])
    assert old_ticket.clock_started_at == received
    assert old_ticket.created_at == now
    assert fresh_ticket.resolution_due_at is not None and old_ticket.resolution_due_at is not None
    # Same policy, counted from receipt: the week-old transfer is due a week earlier.
    assert fresh_ticket.resolution_due_at - old_ticket.resolution_due_at == timedelta(days=7)
    assert old_ticket.resolution_due_at - received == fresh_ticket.resolution_due_at - now


async def test_an_earlier_transfer_deadline_wins_and_a_later_one_does_not_extend(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock
) -> None:
    now = clock.now()
    china_today = now.astimezone(UTC) + timedelta(hours=8)
    received = now.isoformat()
    plain = transfer(now, received_at=received, transferred_at=received)
    tight = transfer(
        now, received_at=received, transferred_at=received, deadline=china_today.date().isoformat()
    )
    loose = transfer(
        now,
        received_at=received,
        transferred_at=received,
        deadline=(china_today + timedelta(days=365)).date().isoformat(),
    )
    await push(api, {"transfers": [plain, tight, loose]}, now)
    await drain(hub)
    policy_due = (await _ticket(hub, plain["transfer_id"])).resolution_due_at
    tight_ticket = await _ticket(hub, tight["transfer_id"])
    loose_ticket = await _ticket(hub, loose["transfer_id"])
    end_of_today = datetime.combine(china_today.date(), datetime.max.time()).replace(
        microsecond=0, tzinfo=UTC
    ) - timedelta(hours=8)
    assert tight_ticket.deadline_at == end_of_today
    assert tight_ticket.resolution_due_at == end_of_today
    assert policy_due is not None and end_of_today < policy_due
    assert loose_ticket.deadline_at is not None and loose_ticket.resolution_due_at == policy_due


async def test_tickets_of_one_complainant_are_linked_by_phone_and_by_id_number(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock
) -> None:
    now = clock.now()
    first = transfer(now, complainant={"name": "王秀英", "phone": "13812345678"})
    second = transfer(now, complainant={"name": "王秀英", "phone": "+86 138 1234 5678"})
    await push(api, first, now)
    await drain(hub)
    await push(api, second, now, secret=SHANGHAI_SECRET)
    await drain(hub)
    # Later, from another number, with her id number: linked through the number she had.
    third = transfer(
        now, complainant={"name": "王秀英", "phone": "13812345678", "id_number": RESIDENT_ID}
    )
    fourth = transfer(
        now, complainant={"name": "王秀英", "phone": "13900000000", "id_number": RESIDENT_ID}
    )
    stranger = transfer(now, complainant={"name": "李四", "phone": "13700000000"})
    for body in (third, fourth, stranger):
        await push(api, body, now)
        await drain(hub)
    customers = [
        (await _ticket(hub, b["transfer_id"])).customer_id
        for b in (first, second, third, fourth, stranger)
    ]
    assert len(set(customers[:4])) == 1
    assert customers[4] != customers[0]
    async with hub.sessions() as session:
        tagged = await session.get(Customer, customers[0])
    assert tagged is not None and tagged.phone_masked == "138****5678"


# --- feedback ------------------------------------------------------------------------------


async def _decide(
    api: httpx.AsyncClient, number: str, headers: dict[str, str], outcome: str = "resolved"
) -> None:
    moved = await api.post(
        f"/api/v1/tickets/{number}/transitions", json={"to": "in_progress"}, headers=headers
    )
    assert moved.status_code == 200, moved.text
    resolved = await api.post(
        f"/api/v1/tickets/{number}/transitions",
        json={"to": "resolved", "outcome": outcome, "summary": "已退还年费 300 元并致歉"},
        headers=headers,
    )
    assert resolved.status_code == 200, resolved.text


async def _close(api: httpx.AsyncClient, number: str, headers: dict[str, str]) -> httpx.Response:
    return await api.post(
        f"/api/v1/tickets/{number}/transitions", json={"to": "closed"}, headers=headers
    )


async def _open_transfer(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock
) -> tuple[dict[str, Any], Ticket]:
    body = transfer(clock.now())
    assert (await push(api, body, clock.now())).status_code == 202
    await drain(hub)
    return body, await _ticket(hub, body["transfer_id"])


async def test_feedback_goes_signed_to_the_branch_and_close_waits_for_its_acknowledgement(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, regulator: RegulatorStandIn, make_key: Any
) -> None:
    headers = await make_key(Role.agent)
    body, ticket = await _open_transfer(api, hub, clock)
    assert ticket.number is not None
    await _decide(api, ticket.number, headers)
    refused = await _close(api, ticket.number, headers)
    assert refused.status_code == 409
    assert "feedback is acknowledged" in refused.json()["detail"]

    clock.advance(seconds=1)
    await drain(hub)
    [record] = regulator.received
    assert record["transfer_id"] == body["transfer_id"]
    assert record["ticket_number"] == ticket.number
    assert record["outcome"] == "resolved"
    assert record["summary"] == "已退还年费 300 元并致歉"
    assert record["satisfaction"] == "unknown"
    assert record["extensions"] == []
    assert record["handler"] == "consumer-protection / t*********"
    assert record["decided_at"].endswith("+08:00")
    row = await _feedback_row(hub, ticket)
    assert record["_webhook_id"] == row.idempotency_key

    acknowledged = await _ticket(hub, body["transfer_id"])
    assert acknowledged.regulator_feedback_acknowledged_at == clock.now()
    [event] = await _audit(hub, acknowledged, "regulator.feedback_acknowledged")
    assert event.after["status"] == 200
    closed = await _close(api, ticket.number, headers)
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    feedback = [m for m in closed.json()["messages"] if m["purpose"] == "regulator_feedback"]
    assert [(m["delivery_state"], m["delivery_error"]) for m in feedback] == [("delivered", None)]


async def test_feedback_is_retried_while_the_endpoint_is_down_then_delivered(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, regulator: RegulatorStandIn, make_key: Any
) -> None:
    headers = await make_key(Role.agent)
    _, ticket = await _open_transfer(api, hub, clock)
    assert ticket.number is not None
    regulator.mode = "down"
    await _decide(api, ticket.number, headers, outcome="withdrawn")
    await drain(hub)
    clock.advance(seconds=3)
    await drain(hub)
    row = await _feedback_row(hub, ticket)
    assert (row.status, row.attempts) == ("pending", 2)
    assert row.last_error is not None and "HTTP 503" in row.last_error
    assert (await _close(api, ticket.number, headers)).status_code == 409

    regulator.mode = "ok"
    clock.advance(seconds=10)
    await drain(hub)
    assert [a.status for a in regulator.attempts] == [503, 503, 200]
    assert len({a.webhook_id for a in regulator.attempts}) == 1, "one idempotency key throughout"
    assert [r["outcome"] for r in regulator.received] == ["withdrawn"]
    assert (await _close(api, ticket.number, headers)).status_code == 200


async def test_a_refusal_is_kept_and_shown_and_a_replay_can_still_deliver(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, regulator: RegulatorStandIn, make_key: Any
) -> None:
    headers = await make_key(Role.agent)
    _, ticket = await _open_transfer(api, hub, clock)
    assert ticket.number is not None
    regulator.mode = "refuse"
    await _decide(api, ticket.number, headers)
    await drain(hub)
    row = await _feedback_row(hub, ticket)
    assert (row.status, row.attempts) == ("dead", 1)
    [event] = await _audit(hub, ticket, "regulator.feedback_refused")
    assert event.after["status"] == 422
    assert "请补充处理过程说明" in event.after["excerpt"]
    view = (await api.get(f"/api/v1/tickets/{ticket.number}", headers=headers)).json()
    [feedback] = [m for m in view["messages"] if m["purpose"] == "regulator_feedback"]
    assert feedback["delivery_state"] == "failed"
    assert "HTTP 422" in feedback["delivery_error"]
    assert "请补充处理过程说明" in feedback["delivery_error"]
    assert (await _close(api, ticket.number, headers)).status_code == 409

    # The bank settles it with the branch, then sends the same record again.
    regulator.mode = "ok"
    admin = await make_key(Role.admin)
    replayed = await api.post(f"/api/v1/outbox/{row.id}/replay", headers=admin)
    assert replayed.status_code == 200, replayed.text
    await drain(hub)
    assert len(regulator.received) == 1
    assert (await _close(api, ticket.number, headers)).status_code == 200


async def test_deciding_again_sends_a_new_record_and_needs_its_acknowledgement(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, regulator: RegulatorStandIn, make_key: Any
) -> None:
    headers = await make_key(Role.agent)
    _, ticket = await _open_transfer(api, hub, clock)
    assert ticket.number is not None
    await _decide(api, ticket.number, headers)
    await drain(hub)
    reopened = await api.post(
        f"/api/v1/tickets/{ticket.number}/transitions", json={"to": "reopened"}, headers=headers
    )
    assert reopened.status_code == 200
    regulator.mode = "down"
    await _decide(api, ticket.number, headers, outcome="withdrawn")
    await drain(hub)
    assert (await _close(api, ticket.number, headers)).status_code == 409
    regulator.mode = "ok"
    clock.advance(seconds=5)
    await drain(hub)
    assert [r["outcome"] for r in regulator.received] == ["resolved", "withdrawn"]
    assert (await _close(api, ticket.number, headers)).status_code == 200


async def test_a_reply_cannot_travel_the_12378_channel_and_says_why(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, make_key: Any
) -> None:
    headers = await make_key(Role.agent)
    _, ticket = await _open_transfer(api, hub, clock)
    reply = await api.post(
        f"/api/v1/tickets/{ticket.number}/replies", json={"text": "您好"}, headers=headers
    )
    assert reply.status_code == 202
    await drain(hub)
    view = (await api.get(f"/api/v1/tickets/{ticket.number}", headers=headers)).json()
    [sent] = [m for m in view["messages"] if m["purpose"] == "reply"]
    assert sent["delivery_state"] == "failed"
    assert "contact the complainant by phone" in sent["delivery_error"]


async def test_feedback_carries_contact_extensions_satisfaction_and_a_masked_handler(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, regulator: RegulatorStandIn, make_key: Any
) -> None:
    headers = await make_key(Role.agent)
    _, ticket = await _open_transfer(api, hub, clock)
    assert ticket.number is not None
    clock.advance(hours=3)
    contacted = clock.now()
    # The agent calls the complainant; the note of it is a reply on the ticket.
    reply = await api.post(
        f"/api/v1/tickets/{ticket.number}/replies", json={"text": "已电话联系"}, headers=headers
    )
    assert reply.status_code == 202
    assigned = await api.post(
        f"/api/v1/tickets/{ticket.number}/assignment", json={"assignee": "张伟"}, headers=headers
    )
    assert assigned.status_code == 200
    extension = {
        "reason": "需调取监控录像",
        "approved_by": "supervisor:李主任",
        "days": 15,
        "at": contacted.isoformat(),
        "due_at": (contacted + timedelta(days=30)).isoformat(),
    }
    async with hub.sessions() as session, session.begin():
        row = await session.get(Ticket, ticket.id)
        assert row is not None
        row.extensions = [extension]
        row.satisfaction = "satisfied"
        session.add(row)
    clock.advance(days=2)
    moved = await api.post(
        f"/api/v1/tickets/{ticket.number}/transitions",
        json={"to": "resolved", "outcome": "resolved", "summary": "已退费"},
        headers=headers,
    )
    assert moved.status_code == 200, moved.text
    await drain(hub)
    [record] = regulator.received
    assert datetime.fromisoformat(record["contacted_at"]) == contacted
    assert datetime.fromisoformat(record["decided_at"]) == clock.now()
    assert record["extensions"] == [extension]
    assert record["satisfaction"] == "satisfied"
    assert record["handler"] == "consumer-protection / 张*"
