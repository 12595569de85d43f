"""Automatic assignment in the running hub: agents managed over the API, each routed ticket
given to an agent who fits (skill = the ticket's category, language, capacity, presence), the
least loaded first, sticky to the customer's last agent, VIP first when an agent comes back,
and re-assignment when an agent goes away. Off unless ``[assignment] enabled``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from hub.auth import Role, create_key
from hub.runtime import Hub
from hub.settings import AssignmentSettings, Settings
from tests.app_pushes import app_message, push
from tests.conftest import drain
from ticket_core import AuditEvent, Customer, ManualClock, Ticket

RULES = [{"name": "app desk", "when": {"channels": ["app"]}, "then": {"queue": "desk"}}]
CARD_COMPLAINT = "我的信用卡被重复扣费了，要求退款"  # category: cards

MakeKey = Callable[[Role], Awaitable[dict[str, str]]]


@pytest.fixture
def assignment_enabled() -> bool:
    return True


@pytest.fixture
def settings(settings: Settings, assignment_enabled: bool) -> Settings:
    return settings.model_copy(
        update={
            "routing": Settings(routing={"rules": RULES}).routing,
            "assignment": AssignmentSettings(enabled=assignment_enabled),
        }
    )


async def _put_agent(
    api: httpx.AsyncClient, headers: dict[str, str], name: str, **body: Any
) -> dict[str, Any]:
    body = {"queues": ["desk"], "skills": ["cards"], **body}
    response = await api.put(f"/api/v1/agents/{name}", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def _presence(
    api: httpx.AsyncClient, headers: dict[str, str], name: str, presence: str
) -> httpx.Response:
    return await api.post(
        f"/api/v1/agents/{name}/presence", json={"presence": presence}, headers=headers
    )


async def _complain(api: httpx.AsyncClient, hub: Hub, clock: ManualClock, user: str) -> str:
    """A card complaint from ``user``; returns its ticket number."""
    clock.advance(minutes=1)
    response = await push(api, app_message(CARD_COMPLAINT, user_id=user), clock.now())
    assert response.status_code == 202
    await drain(hub)
    async with hub.sessions() as session:
        ticket = (await session.exec(select(Ticket).order_by(col(Ticket.id).desc()))).first()
        assert ticket is not None and ticket.number is not None
        return ticket.number


async def _assignees(hub: Hub) -> dict[str, str | None]:
    async with hub.sessions() as session:
        return {t.number: t.assignee for t in (await session.exec(select(Ticket))).all()}  # type: ignore[misc]


async def _assigned_events(hub: Hub, number: str) -> list[AuditEvent]:
    async with hub.sessions() as session:
        ticket = (await session.exec(select(Ticket).where(Ticket.number == number))).one()
        return list(
            (
                await session.exec(
                    select(AuditEvent)
                    .where(
                        AuditEvent.ticket_id == ticket.id, AuditEvent.action == "ticket.assigned"
                    )
                    .order_by(col(AuditEvent.id))
                )
            ).all()
        )


async def test_a_routed_ticket_goes_to_the_agent_with_its_category_skill(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, make_key: MakeKey
) -> None:
    boss = await make_key(Role.supervisor)
    await _put_agent(api, boss, "li", skills=["cards"])
    await _put_agent(api, boss, "wang", skills=["loans"])
    first = await _complain(api, hub, clock, "u-1")
    second = await _complain(api, hub, clock, "u-2")
    assert await _assignees(hub) == {first: "li", second: "li"}
    (event,) = await _assigned_events(hub, first)
    assert event.actor == "system:assignment"
    assert event.before == {"assignee": None, "queue": "desk"}
    assert event.after["assignee"] == "li"
    assert event.after["reason"].startswith("least loaded: li")
    listed = (await api.get("/api/v1/agents", headers=boss)).json()
    assert [(a["name"], a["open_tickets"]) for a in listed] == [("li", 2), ("wang", 0)]


async def test_tickets_go_to_the_least_loaded_agent_who_fits(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, make_key: MakeKey
) -> None:
    boss = await make_key(Role.admin)
    await _put_agent(api, boss, "li")
    await _put_agent(api, boss, "wang")
    await _put_agent(api, boss, "zhao", languages=["en"])  # does not speak the customer's zh-CN
    numbers = [await _complain(api, hub, clock, f"u-{i}") for i in range(4)]
    assignees = await _assignees(hub)
    assert [assignees[n] for n in numbers] == ["li", "wang", "li", "wang"]
    (event,) = await _assigned_events(hub, numbers[2])
    assert event.after["reason"] == "least loaded: li holds 1 of 10, among 2 who fit"


async def test_a_customers_new_ticket_goes_to_the_agent_of_their_last_ticket(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, make_key: MakeKey
) -> None:
    boss = await make_key(Role.supervisor)
    await _put_agent(api, boss, "li")
    await _put_agent(api, boss, "wang")
    await _complain(api, hub, clock, "u-1")  # li
    await _complain(api, hub, clock, "u-2")  # wang
    again = await _complain(api, hub, clock, "u-2")  # least loaded would say li
    assert (await _assignees(hub))[again] == "wang"
    (event,) = await _assigned_events(hub, again)
    assert event.after["reason"] == "sticky: wang handled this customer's last ticket"


async def test_an_agent_coming_back_takes_the_vip_customer_first(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, make_key: MakeKey
) -> None:
    boss = await make_key(Role.supervisor)
    await _put_agent(api, boss, "li", capacity=1)
    assert (await _presence(api, boss, "li", "away")).status_code == 200
    older = await _complain(api, hub, clock, "u-plain")
    vip = await _complain(api, hub, clock, "u-vip")
    assert await _assignees(hub) == {older: None, vip: None}  # nobody there: they wait
    async with hub.sessions() as session, session.begin():
        ticket = (await session.exec(select(Ticket).where(Ticket.number == vip))).one()
        customer = await session.get(Customer, ticket.customer_id)
        assert customer is not None
        customer.tags = ["vip"]
        session.add(customer)
    li = await make_key(Role.agent)  # named test-agent: may not set li's presence
    assert (await _presence(api, li, "li", "available")).status_code == 403
    back = await _presence(api, boss, "li", "available")
    assert back.status_code == 200
    assert back.json()["presence"] == "available"
    assert await _assignees(hub) == {older: None, vip: "li"}  # li has room for one: the VIP
    reassigned = back.json()["reassigned"]
    assert [(r["number"], r["agent"]) for r in reassigned] == [(vip, "li"), (older, None)]


async def test_an_agent_going_away_hands_their_tickets_on_or_back_to_the_queue(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock
) -> None:
    async with hub.sessions() as session, session.begin():
        boss_key = await create_key(session, "boss", Role.supervisor, clock.now())
        li_key = await create_key(session, "li", Role.agent, clock.now())
    boss = {"authorization": f"Bearer {boss_key}"}
    li = {"authorization": f"Bearer {li_key}"}
    await _put_agent(api, boss, "li")
    await _put_agent(api, boss, "wang", capacity=2)
    first = await _complain(api, hub, clock, "u-1")  # li
    second = await _complain(api, hub, clock, "u-2")  # wang
    third = await _complain(api, hub, clock, "u-3")  # li
    assert await _assignees(hub) == {first: "li", second: "wang", third: "li"}
    assert (await api.put("/api/v1/agents/li", json={}, headers=li)).status_code == 403
    clock.advance(timedelta(minutes=5))
    away = await _presence(api, li, "li", "away")  # an agent sets their own presence
    assert away.status_code == 200, away.text
    assert away.json()["presence"] == "away"
    # wang has room for one more: the oldest goes to wang, the other back to the queue.
    assert await _assignees(hub) == {first: "wang", second: "wang", third: None}
    events = await _assigned_events(hub, third)
    assert events[-1].before == {"assignee": "li", "queue": "desk"}
    assert events[-1].after["assignee"] is None
    assert events[-1].after["reason"].startswith("no present agent")
    # A new ticket no longer goes to li, who is away.
    fourth = await _complain(api, hub, clock, "u-4")
    assert (await _assignees(hub))[fourth] is None


@pytest.mark.parametrize("assignment_enabled", [False])
async def test_assignment_is_off_by_default_and_tickets_stay_in_the_queue(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, make_key: MakeKey
) -> None:
    assert Settings().assignment.enabled is False
    boss = await make_key(Role.supervisor)
    await _put_agent(api, boss, "li")
    number = await _complain(api, hub, clock, "u-1")
    assert await _assignees(hub) == {number: None}
    assert await _assigned_events(hub, number) == []
    away = await _presence(api, boss, "li", "away")
    assert away.status_code == 200
    assert away.json()["presence"] == "away"
    assert (await _presence(api, boss, "nobody", "away")).status_code == 404
