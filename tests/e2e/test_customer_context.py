"""Customer context from the CRM and anti-fraud stand-ins, on SQLite and PostgreSQL.

Messages arrive through the real app channel (over HTTP) and through a relay channel that
carries WeChat-like and email-like identities (``tests.relay_channel``); the providers are
the real connectors talking to stand-ins that speak docs/context-providers.md. Time moves
only on the ManualClock: nothing here sleeps to wait for a retry.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from hub.auth import Role
from hub.runtime import Hub
from hub.sdk import generate_secret
from hub.settings import Settings
from hub.store import Envelope, OutboxRow, OutboxStatus
from hub.testing import SignedWebhookReceiver
from hub.testing.standins.antifraud import AntifraudStandIn, Rule
from hub.testing.standins.crm import CrmRecord, CrmStandIn
from tests.app_pushes import APP_SECRET, app_message, push
from tests.conftest import drain
from tests.relay_channel import available, relay_envelope
from ticket_core import AuditEvent, Customer, ManualClock, Message, Ticket, verify_chain
from ticket_core.models import ContextState, CustomerContextRecord, CustomerMerge, TicketContext

CRM_SECRET = generate_secret()
AF_SECRET = generate_secret()
CODE = re.compile(r"查询码：([A-Z0-9]{8})")
PHONE = "13800138000"

MakeKey = Callable[[Role], Awaitable[dict[str, str]]]


@pytest.fixture
async def crm(clock: ManualClock) -> AsyncIterator[CrmStandIn]:
    stand_in = CrmStandIn(secret=CRM_SECRET, now=clock.now)
    await stand_in.start()
    yield stand_in
    await stand_in.stop()


@pytest.fixture
async def antifraud(clock: ManualClock) -> AsyncIterator[AntifraudStandIn]:
    stand_in = AntifraudStandIn(secret=AF_SECRET, now=clock.now)
    await stand_in.start()
    yield stand_in
    await stand_in.stop()


@pytest.fixture
def settings(
    database_url: str,
    receiver: SignedWebhookReceiver,
    crm: CrmStandIn,
    antifraud: AntifraudStandIn,
) -> Settings:
    return Settings(
        database={"url": database_url},
        worker={"in_process": False},
        outbox={"backoff_initial": 2, "max_attempts": 4, "http_timeout": 2},
        context={
            "backoff_initial": 5,
            "backoff_max": 40,
            "max_attempts": 4,
            "breaker_failures": 3,
            "breaker_pause_seconds": 60,
            "call_timeout": 10,
            "cache_ttl_seconds": 900,
        },
        connectors={
            "app": {"secret": APP_SECRET, "callback_url": receiver.url},
            "relay": {},
            "crm": {"base_url": crm.url, "secret": CRM_SECRET, "timeout_seconds": 0.5},
            "antifraud": {"base_url": antifraud.url, "secret": AF_SECRET, "timeout_seconds": 0.5},
        },
    )


@pytest.fixture
async def hub(settings: Settings, clock: ManualClock) -> AsyncIterator[Hub]:
    instance = await Hub(settings, clock=clock, available=available()).open(migrate=True)
    yield instance
    await instance.close()


# --- helpers ------------------------------------------------------------------------------


async def _relay(hub: Hub, clock: ManualClock, external_id: str, *identities: Any) -> str:
    """A relay message processed into a ticket; its number."""
    await hub.envelopes.accept(
        relay_envelope(clock.now(), external_id, "信用卡被重复扣费", *identities)
    )
    await drain(hub)
    async with hub.reads() as session:
        message = (
            await session.exec(select(Message).where(Message.external_id == external_id))
        ).one()
        ticket = await session.get(Ticket, message.ticket_id)
    assert ticket is not None and ticket.number
    return ticket.number


async def _ticket(hub: Hub, number: str) -> Ticket:
    async with hub.reads() as session:
        return (await session.exec(select(Ticket).where(Ticket.number == number))).one()


async def _actions(hub: Hub, number: str) -> list[str]:
    ticket = await _ticket(hub, number)
    async with hub.reads() as session:
        events = await session.exec(
            select(AuditEvent).where(AuditEvent.ticket_id == ticket.id).order_by(col(AuditEvent.id))
        )
        return [e.action for e in events.all()]


async def _chain_holds(hub: Hub, number: str) -> bool:
    """The ticket's audit chain verifies up to its head (every change here is chained)."""
    ticket = await _ticket(hub, number)
    async with hub.reads() as session:
        events = await session.exec(
            select(AuditEvent).where(AuditEvent.ticket_id == ticket.id).order_by(col(AuditEvent.id))
        )
        return verify_chain(list(events.all()), head=ticket.audit_head) == []


async def _lookups(hub: Hub) -> dict[tuple[int, str], TicketContext]:
    async with hub.reads() as session:
        rows = (await session.exec(select(TicketContext))).all()
    return {(r.ticket_id, r.provider): r for r in rows}


async def _context(api: httpx.AsyncClient, number: str, headers: dict[str, str]) -> dict[str, Any]:
    response = await api.get(f"/api/v1/tickets/{number}/context", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def _customer(api: httpx.AsyncClient, customer_id: int, headers: dict[str, str]) -> Any:
    response = await api.get(f"/api/v1/customers/{customer_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def _elapse(clock: ManualClock, seconds: float) -> None:
    clock.set(clock.now() + timedelta(seconds=seconds))


# --- the ack path never waits for a provider ------------------------------------------------


async def test_crm_down_for_the_whole_run_tickets_still_created_then_filled_after_recovery(
    api: httpx.AsyncClient,
    hub: Hub,
    clock: ManualClock,
    crm: CrmStandIn,
    receiver: SignedWebhookReceiver,
    make_key: MakeKey,
) -> None:
    for n in range(8):
        crm.add_customer(CrmRecord(f"C{n:05d}", tier="gold"), ("app_user", f"u-{n}"))
    crm.set_mode("down")
    acks = [await push(api, app_message(user_id=f"u-{n}"), clock.now()) for n in range(8)]
    assert [a.status_code for a in acks] == [202] * 8
    # The pipeline opens every ticket without a word to the CRM.
    assert await hub.pipeline.process_once() == 8
    assert crm.calls == 0
    await drain(hub)
    headers = await make_key(Role.agent)
    tickets = [a["ticket_number"] for a in receiver.received if a["purpose"] == "acknowledgement"]
    assert len(tickets) == 8  # every customer got their ticket number while the CRM was down
    first = await _context(api, tickets[0], headers)
    assert first["context_pending"] is True
    assert first["lookups"]["crm"]["state"] == "pending"
    assert "HTTP 503" in first["lookups"]["crm"]["last_error"]
    assert first["lookups"]["antifraud"]["state"] == "complete"  # the other provider is fine
    assert "crm" in first["paused_providers"]  # the breaker opened after 3 failures in a row
    calls = crm.calls
    _elapse(clock, 10)  # past the retry backoff, not past the breaker's pause
    await drain(hub)
    assert crm.calls == calls, "no calls while the breaker is open"

    crm.set_mode("ok")
    _elapse(clock, 61)
    await drain(hub)
    for number in tickets:
        view = await _context(api, number, headers)
        assert view["context_pending"] is False, view
        assert view["lookups"]["crm"]["state"] == "complete"
        assert view["context"]["crm"]["tier"] == "gold"
        assert view["paused_providers"] == {}


async def test_a_crm_that_blocks_never_delays_an_ack_or_a_ticket(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, crm: CrmStandIn, make_key: MakeKey
) -> None:
    provider = hub.registry.provider("crm")
    assert provider is not None
    object.__setattr__(provider.config, "timeout_seconds", 30)  # slower than any ack
    crm.set_mode("hang")
    await push(api, app_message(user_id="u-first"), clock.now())
    await hub.pipeline.process_once()
    blocked = asyncio.create_task(hub.dispatcher.dispatch_once())
    await crm.wait_for_calls(1)  # the dispatcher is inside the CRM call, and stays there
    try:
        for n in range(5):  # an ack that waited on the CRM would wait until the release
            response = await push(api, app_message(user_id=f"u-{n}"), clock.now())
            assert response.status_code == 202
            assert not blocked.done()
        assert await hub.pipeline.process_once() == 5
        assert not blocked.done()
        async with hub.reads() as session:
            assert len((await session.exec(select(Ticket))).all()) == 6
        states = {(t, p): r.state for (t, p), r in (await _lookups(hub)).items()}
        assert all(state == ContextState.pending for (_, p), state in states.items() if p == "crm")
    finally:
        crm.release()
        await blocked
    await drain(hub)
    assert all(r.state == ContextState.complete for r in (await _lookups(hub)).values())


async def test_a_crm_slower_than_its_timeout_is_retried_later_and_the_ticket_exists(
    hub: Hub, clock: ManualClock, crm: CrmStandIn
) -> None:
    crm.add_customer(CrmRecord("C00000001", tier="gold"), ("wechat_openid", "oSlow"))
    crm.set_mode("slow", delay=2)  # the provider gives up at 0.5 s
    number = await _relay(hub, clock, "slow-1", ("wechat_openid", "oSlow", True))
    ticket = await _ticket(hub, number)
    lookup = (await _lookups(hub))[(ticket.id, "crm")]  # type: ignore[index]
    assert lookup.state == ContextState.pending
    assert "no complete answer within 0.5 s" in (lookup.last_error or "")
    crm.set_mode("ok")
    _elapse(clock, 6)
    await drain(hub)
    assert (await _lookups(hub))[(ticket.id, "crm")].state == ContextState.complete  # type: ignore[index]


# --- identity across channels ----------------------------------------------------------------


async def test_wechat_and_email_customers_join_only_after_a_verified_crm_match(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, crm: CrmStandIn, make_key: MakeKey
) -> None:
    record = crm.add_customer(
        CrmRecord("C00100100", name="李娜", tier="gold"), ("wechat_openid", "oWx_li")
    )
    wechat = await _relay(
        hub, clock, "wx-1", ("wechat_openid", "oWx_li", True), ("phone", PHONE, False)
    )
    email = await _relay(
        hub, clock, "mail-1", ("email", "li.na@example.com", True), ("phone", PHONE, False)
    )
    a, b = (await _ticket(hub, wechat)).customer_id, (await _ticket(hub, email)).customer_id
    assert a != b  # the CRM does not know the address yet; the same typed phone joins nothing
    async with hub.reads() as session:
        assert (await session.exec(select(CustomerMerge))).all() == []

    # The customer proves the address at a branch; the CRM now knows it. After the cached
    # "not found" expires, the next email's lookup names the same customer number.
    crm.add_customer(record, ("email", "li.na@example.com"))
    _elapse(clock, 901)
    later = await _relay(hub, clock, "mail-2", ("email", "LI.NA@example.com", True))

    headers = await make_key(Role.agent)
    survivor = await _customer(api, a, headers)
    assert survivor["crm_ref"] == "C00100100"
    assert {t["number"] for t in survivor["tickets"]} == {wechat, email, later}
    kinds = sorted(i["kind"] for i in survivor["identities"])
    assert kinds == ["crm_customer", "email", "phone", "phone", "wechat_openid"]
    assert all(
        "li.na" not in i["value"] and PHONE not in i["value"] for i in survivor["identities"]
    )
    (merge,) = survivor["merges"]
    assert merge["kind"] == "crm_match" and merge["actor"] == "system:crm"
    assert (merge["from_customer"], merge["into_customer"]) == (b, a)
    assert merge["evidence"]["asked_by"] == ["email"]
    assert "C00100100" not in str(merge["evidence"])  # masked
    merged_away = await _customer(api, b, headers)
    assert merged_away["merged_into"] == a and merged_away["tickets"] == []
    for number in (wechat, email, later):
        assert "customer.merged" in await _actions(hub, number)
        assert await _chain_holds(hub, number)
    # Only identities a channel verified ever reached the CRM.
    sent = [i for r in crm.requests for i in r["identities"]]
    assert all(i["kind"] != "phone" for i in sent)
    # The WeChat customer's next message reaches the same, joined customer.
    again = await _relay(hub, clock, "wx-2", ("wechat_openid", "oWx_li", True))
    assert (await _ticket(hub, again)).customer_id == a


async def test_two_workers_naming_one_crm_number_at_once_join_the_customers_once(
    hub: Hub, settings: Settings, clock: ManualClock, crm: CrmStandIn
) -> None:
    crm.add_customer(
        CrmRecord("C00770077", tier="gold"), ("wechat_openid", "oRace"), ("email", "r@example.com")
    )
    other = await Hub(settings, clock=clock, available=available()).open(migrate=False)
    for instance in (hub, other):
        # Both calls must still be waiting when the stand-in lets them go, however loaded the
        # machine is: the race is the point here, not the timeout.
        provider = instance.registry.provider("crm")
        assert provider is not None
        object.__setattr__(provider.config, "timeout_seconds", 10)
    try:
        for external_id, identity in (("wx-r", "wechat_openid"), ("mail-r", "email")):
            value = "oRace" if identity == "wechat_openid" else "r@example.com"
            envelope = relay_envelope(clock.now(), external_id, "扣费有误", (identity, value, True))
            await hub.envelopes.accept(envelope)
        crm.set_mode("down")  # everything but the two CRM lookups goes out now
        await drain(hub)
        crm.set_mode("hang")
        _elapse(clock, 6)
        calls = crm.calls
        first = asyncio.create_task(hub.dispatcher.dispatch_once(limit=1))
        await crm.wait_for_calls(calls + 1)
        second = asyncio.create_task(other.dispatcher.dispatch_once(limit=1))
        await crm.wait_for_calls(calls + 2)  # both workers are inside the CRM call
        crm.release()
        assert await first == 1 and await second == 1  # neither worker's round failed
    finally:
        await other.close()
    async with hub.reads() as session:
        tickets = (await session.exec(select(Ticket))).all()
        merges = (await session.exec(select(CustomerMerge))).all()
    assert len({t.customer_id for t in tickets}) == 1
    assert [m.kind for m in merges] == ["crm_match"]
    assert all(r.state == ContextState.complete for r in (await _lookups(hub)).values())


async def test_the_same_unverified_phone_never_joins_two_customers(
    hub: Hub, clock: ManualClock, crm: CrmStandIn
) -> None:
    # The CRM would name a customer by this phone, if it were ever asked by it.
    crm.add_customer(CrmRecord("C00555555", tier="gold"), ("phone", PHONE))
    one = await _relay(
        hub, clock, "wx-9", ("wechat_openid", "oWx_zhang", True), ("phone", PHONE, False)
    )
    two = await _relay(
        hub, clock, "mail-9", ("email", "zhang@example.com", True), ("phone", PHONE, False)
    )
    first, second = await _ticket(hub, one), await _ticket(hub, two)
    assert first.customer_id != second.customer_id
    assert [i["kind"] for r in crm.requests for i in r["identities"]] == ["wechat_openid", "email"]
    async with hub.reads() as session:
        assert (await session.exec(select(CustomerMerge))).all() == []
        customers = (await session.exec(select(Customer))).all()
    assert all(c.crm_ref is None for c in customers)


async def test_a_supervisor_merge_is_audited_and_undone_exactly(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, make_key: MakeKey
) -> None:
    supervisor = await make_key(Role.supervisor)
    agent = await make_key(Role.agent)
    await push(api, app_message(user_id="user-alpha-01", name="王芳"), clock.now())
    await push(api, app_message(user_id="user-bravo-02"), clock.now())
    await drain(hub)
    async with hub.reads() as session:
        tickets = (await session.exec(select(Ticket).order_by(col(Ticket.id)))).all()
    (ta, a), (tb, b) = [(t.number, t.customer_id) for t in tickets]

    body = {"from": b, "into": a, "reason": "同一客户：柜面核实身份证件"}
    refused = await api.post("/api/v1/customers/merge", json=body, headers=agent)
    assert refused.status_code == 403
    made = await api.post("/api/v1/customers/merge", json=body, headers=supervisor)
    assert made.status_code == 201, made.text
    merge = made.json()
    assert (merge["kind"], merge["identities_moved"], merge["tickets_moved"]) == ("agent", 1, 1)
    survivor = await _customer(api, a, agent)
    assert {t["number"] for t in survivor["tickets"]} == {ta, tb}
    assert sorted(i["value"] for i in survivor["identities"]) == ["us***01", "us***02"]
    for number in (ta, tb):
        assert (await _actions(hub, number))[-1] == "customer.merged"
    # While merged, user-bravo-02 writes again: that ticket opens on the survivor and stays
    # there after the undo (an undo moves back what the merge moved, nothing else).
    await push(api, app_message("还有一笔扣费", user_id="user-bravo-02"), clock.now())
    await drain(hub)
    async with hub.reads() as session:
        newest = (await session.exec(select(Ticket).order_by(col(Ticket.id).desc()))).first()
    assert newest is not None and newest.customer_id == a

    undone = await api.post(
        f"/api/v1/customers/merges/{merge['id']}/undo",
        json={"reason": "核实有误：两位不同客户"},
        headers=supervisor,
    )
    assert undone.status_code == 200, undone.text
    assert undone.json()["undone_by"].startswith("supervisor:")
    back = await _customer(api, b, agent)
    assert back["merged_into"] is None
    assert [t["number"] for t in back["tickets"]] == [tb]
    assert [i["value"] for i in back["identities"]] == ["us***02"]
    kept = await _customer(api, a, agent)
    assert {t["number"] for t in kept["tickets"]} == {ta, newest.number}
    assert [i["value"] for i in kept["identities"]] == ["us***01"]
    for number in (ta, tb, newest.number):
        assert (await _actions(hub, number))[-1] == "customer.merge_undone"
        assert await _chain_holds(hub, number or "")
    again = await api.post(
        f"/api/v1/customers/merges/{merge['id']}/undo", json={"reason": "twice"}, headers=supervisor
    )
    assert again.status_code == 409 and "already undone" in again.json()["detail"]
    # user-bravo-02's identity is back with customer b: its next message lands there.
    await push(api, app_message("再问一次", user_id="user-bravo-02"), clock.now())
    await drain(hub)
    assert len((await _customer(api, b, agent))["tickets"]) == 2


async def test_an_undo_waits_for_a_later_merge_of_the_survivor(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, make_key: MakeKey
) -> None:
    supervisor = await make_key(Role.supervisor)
    for user in ("u-x", "u-y", "u-z"):
        await push(api, app_message(user_id=user), clock.now())
    await drain(hub)
    async with hub.reads() as session:
        x, y, z = [
            t.customer_id
            for t in (await session.exec(select(Ticket).order_by(col(Ticket.id)))).all()
        ]
    first = (
        await api.post(
            "/api/v1/customers/merge",
            json={"from": x, "into": y, "reason": "same person"},
            headers=supervisor,
        )
    ).json()
    second = (
        await api.post(
            "/api/v1/customers/merge",
            json={"from": y, "into": z, "reason": "same person"},
            headers=supervisor,
        )
    ).json()
    into_merged = await api.post(
        "/api/v1/customers/merge", json={"from": z, "into": y, "reason": "loop"}, headers=supervisor
    )
    assert into_merged.status_code == 409
    blocked = await api.post(
        f"/api/v1/customers/merges/{first['id']}/undo", json={"reason": "wrong"}, headers=supervisor
    )
    assert blocked.status_code == 409
    assert f"undo merge {second['id']} first" in blocked.json()["detail"]
    for merge in (second, first):
        response = await api.post(
            f"/api/v1/customers/merges/{merge['id']}/undo",
            json={"reason": "wrong"},
            headers=supervisor,
        )
        assert response.status_code == 200, response.text
    agent = await make_key(Role.agent)
    assert [len((await _customer(api, c, agent))["tickets"]) for c in (x, y, z)] == [1, 1, 1]


async def test_a_crm_join_undone_by_a_person_is_not_redone_automatically(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, crm: CrmStandIn, make_key: MakeKey
) -> None:
    crm.add_customer(
        CrmRecord("C00200200", tier="gold"),
        ("wechat_openid", "oWx_wu"),
        ("email", "wu@example.com"),
    )
    wechat = await _relay(hub, clock, "wx-wu", ("wechat_openid", "oWx_wu", True))
    email = await _relay(hub, clock, "mail-wu", ("email", "wu@example.com", True))
    supervisor = await make_key(Role.supervisor)
    a = (await _ticket(hub, wechat)).customer_id
    merge = (await _customer(api, a, supervisor))["merges"][0]
    assert merge["kind"] == "crm_match"
    undone = await api.post(
        f"/api/v1/customers/merges/{merge['id']}/undo",
        json={"reason": "CRM data error: two people share the record"},
        headers=supervisor,
    )
    assert undone.status_code == 200
    b = (await _ticket(hub, email)).customer_id
    assert a != b
    _elapse(clock, 901)
    later = await _relay(hub, clock, "mail-wu-2", ("email", "wu@example.com", True))
    assert (await _ticket(hub, later)).customer_id == b
    assert "customer.merge_declined" in await _actions(hub, later)
    async with hub.reads() as session:
        merges = (await session.exec(select(CustomerMerge))).all()
    assert len(merges) == 1


# --- context drives routing ------------------------------------------------------------------


async def test_an_elderly_customers_ticket_is_raised_and_flagged_vulnerable(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, crm: CrmStandIn, make_key: MakeKey
) -> None:
    crm.add_customer(
        CrmRecord(
            "C00023456",
            name="李秀英",
            tier="standard",
            segments=("Elderly",),
            products=("pension_account",),
            relationship_manager="陈经理",
        ),
        ("app_user", "u-2002"),
    )
    await push(api, app_message(user_id="u-2002"), clock.now())
    await hub.pipeline.process_once()
    number = (await _only_ticket(hub)).number
    assert (await _ticket(hub, number)).priority == "normal"  # until the CRM has answered
    await drain(hub)
    ticket = await _ticket(hub, number)
    assert (ticket.priority, ticket.is_vulnerable) == ("high", True)
    actions = await _actions(hub, number)
    assert {"context.received", "ticket.priority_changed", "ticket.flagged"} <= set(actions)
    headers = await make_key(Role.agent)
    view = await _context(api, number, headers)
    crm_view = view["context"]["crm"]
    assert crm_view["segments"] == ["elderly"]
    assert crm_view["name"] == "李**"  # masked, as every name in the model
    assert crm_view["relationship_manager"] == "陈经理"
    assert view["flags"]["vulnerable_customer"] is True
    async with hub.reads() as session:
        event = (
            await session.exec(
                select(AuditEvent).where(AuditEvent.action == "ticket.priority_changed")
            )
        ).one()
    assert event.actor == "system:crm"
    assert event.before == {"priority": "normal"}
    assert event.after["priority"] == "high" and "vulnerable" in event.after["reason"]


async def test_a_high_fraud_score_flags_and_routes_the_ticket_and_the_customer_never_sees_it(
    api: httpx.AsyncClient,
    hub: Hub,
    clock: ManualClock,
    antifraud: AntifraudStandIn,
    receiver: SignedWebhookReceiver,
    make_key: MakeKey,
) -> None:
    antifraud.flag_phrases(
        ("退款", "媒体"), Rule(0.92, "suspicious_refund_demand", "以媒体曝光相威胁的退款诉求")
    )
    await push(api, app_message("不给我全额退款我就找媒体曝光你们", user_id="u-7"), clock.now())
    await drain(hub)
    ticket = await _only_ticket(hub)
    assert ticket.is_suspected_fraud and ticket.queue == "anti-fraud"
    assert "ticket.flagged" in await _actions(hub, ticket.number or "")
    assert await _chain_holds(hub, ticket.number or "")
    (assessment,) = antifraud.requests
    assert assessment["message"]["text"].startswith("不给我全额退款")
    view = await _context(api, ticket.number or "", await make_key(Role.agent))
    assert view["flags"]["suspected_fraud"] is True
    assert view["lookups"]["antifraud"]["risk_score"] == 0.92
    assert view["lookups"]["antifraud"]["reasons"] == ["suspicious_refund_demand"]

    # The customer: one acknowledgement, and a public view that says nothing of it.
    assert [r["purpose"] for r in receiver.received] == ["acknowledgement"]
    async with hub.reads() as session:
        outbound = (await session.exec(select(Message).where(Message.direction == "out"))).all()
    assert [m.purpose for m in outbound] == ["acknowledgement"]
    code = CODE.search(receiver.received[0]["text"])
    assert code is not None
    public = await api.post(
        "/api/v1/progress", json={"number": ticket.number, "code": code.group(1)}
    )
    assert public.status_code == 200, public.text
    shown = public.text.lower()
    for word in ("fraud", "anti-fraud", "risk", "suspicious", "0.92", "queue", "欺诈"):
        assert word not in shown


async def test_a_low_fraud_score_changes_nothing(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, antifraud: AntifraudStandIn
) -> None:
    await push(api, app_message("请问信用卡年费怎么收", user_id="u-8"), clock.now())
    await drain(hub)
    ticket = await _only_ticket(hub)
    assert not ticket.is_suspected_fraud and ticket.queue is None
    assert "ticket.flagged" not in await _actions(hub, ticket.number or "")


# --- cache, hostile answers, refusals, recovery ----------------------------------------------


async def test_a_recent_crm_answer_is_reused_until_its_ttl(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, crm: CrmStandIn
) -> None:
    crm.add_customer(CrmRecord("C00300300", tier="gold"), ("app_user", "u-c"))
    for text in ("第一次", "第二次"):
        await push(api, app_message(text, user_id="u-c"), clock.now())
        await drain(hub)
    assert crm.calls == 1
    lookups = [r for (_, p), r in (await _lookups(hub)).items() if p == "crm"]
    assert sorted(r.from_cache for r in lookups) == [False, True]
    _elapse(clock, 901)
    await push(api, app_message("第三次", user_id="u-c"), clock.now())
    await drain(hub)
    assert crm.calls == 2


async def test_a_hostile_crm_answer_is_refused_stored_nowhere_and_retried(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, crm: CrmStandIn, make_key: MakeKey
) -> None:
    crm.fixed = (
        200,
        b'{"found": true, "customer": {"customer_number": "C1\' OR 1=1 --", "segments": "vip"}}',
        "application/json",
    )
    await push(api, app_message(user_id="u-h"), clock.now())
    await drain(hub)
    ticket = await _only_ticket(hub)
    view = await _context(api, ticket.number or "", await make_key(Role.agent))
    lookup = view["lookups"]["crm"]
    assert lookup["state"] == "pending" and "invalid answer" in lookup["last_error"]
    assert "customer.customer_number" in lookup["last_error"]
    assert "OR 1=1" not in lookup["last_error"]
    assert "crm" not in view["context"] and ticket.priority == "normal"
    async with hub.reads() as session:
        assert (
            await session.exec(
                select(CustomerContextRecord).where(CustomerContextRecord.provider == "crm")
            )
        ).all() == []


async def test_a_crm_that_refuses_the_hub_fails_the_lookup_without_retrying(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, crm: CrmStandIn
) -> None:
    crm.set_mode("refuse")
    await push(api, app_message(user_id="u-r"), clock.now())
    await drain(hub)
    ticket = await _only_ticket(hub)
    lookup = (await _lookups(hub))[(ticket.id, "crm")]  # type: ignore[index]
    assert lookup.state == ContextState.failed and "HTTP 403" in (lookup.last_error or "")
    _elapse(clock, 3600)
    await drain(hub)
    assert crm.calls == 1


async def test_lookups_that_ran_out_of_retries_are_asked_again_when_the_crm_recovers(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, crm: CrmStandIn
) -> None:
    crm.add_customer(CrmRecord("C00400400", tier="gold"), ("app_user", "u-early"))
    crm.set_mode("down")
    await push(api, app_message(user_id="u-early"), clock.now())
    await drain(hub)
    early = await _only_ticket(hub)
    for _ in range(6):  # past every backoff and breaker pause until the budget (4) is spent
        _elapse(clock, 120)
        await drain(hub)
    lookup = (await _lookups(hub))[(early.id, "crm")]  # type: ignore[index]
    assert lookup.state == ContextState.unavailable
    async with hub.reads() as session:
        row = await session.get(OutboxRow, lookup.outbox_id)
    assert row is not None and row.status == OutboxStatus.dead

    crm.set_mode("ok")
    await push(api, app_message(user_id="u-later"), clock.now())
    await drain(
        hub
    )  # the later ticket's lookup succeeds: the CRM is back, the early one is asked again
    lookup = (await _lookups(hub))[(early.id, "crm")]  # type: ignore[index]
    assert lookup.state == ContextState.complete
    assert (await _ticket(hub, early.number or "")).customer_id is not None


async def test_a_lookup_with_nothing_to_go_on_is_skipped_not_dead_lettered(
    hub: Hub, clock: ManualClock, crm: CrmStandIn
) -> None:
    await hub.envelopes.accept(
        relay_envelope(clock.now(), "gone-1", "扣费", ("wechat_openid", "oGone", True))
    )
    await hub.pipeline.process_once()
    async with hub.sessions() as session, session.begin():  # a retention purge, say
        envelope = (await session.exec(select(Envelope))).one()
        await session.delete(envelope)
    await drain(hub)
    ticket = await _only_ticket(hub)
    lookup = (await _lookups(hub))[(ticket.id, "crm")]  # type: ignore[index]
    assert lookup.state == ContextState.skipped
    assert "no longer stored" in (lookup.last_error or "")
    assert crm.calls == 0
    async with hub.reads() as session:
        dead = (await session.exec(select(OutboxRow).where(OutboxRow.status == "dead"))).all()
    assert dead == []


async def _only_ticket(hub: Hub) -> Ticket:
    async with hub.reads() as session:
        tickets = (await session.exec(select(Ticket).order_by(col(Ticket.id)))).all()
    return tickets[-1]
