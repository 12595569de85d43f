"""Compliance over the REST API: review before an unfavourable answer, extensions, contacts,
clocks in the ticket view, and the progress notices the customer receives on their channel."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from hub.auth import Role, create_key
from hub.runtime import Hub
from hub.settings import RuleSettings, Settings, SlaSettings
from hub.testing import SignedWebhookReceiver
from tests.app_pushes import app_message, push
from tests.conftest import drain
from ticket_core import ManualClock


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """App complaints run on the regulator's template here, so extensions apply."""
    rules = [
        RuleSettings(policy="cn-nfra-order-3", kinds=["complaint"]),
        RuleSettings(policy="cn-service-24-48-72"),
    ]
    return settings.model_copy(update={"sla": SlaSettings(rules=rules)})


@pytest.fixture
async def ticket(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, receiver: SignedWebhookReceiver
) -> str:
    await push(api, app_message("我要投诉，理财产品收益和宣传不一致"), clock.now())
    await drain(hub)
    return receiver.received[0]["ticket_number"]


async def _key(hub: Hub, name: str, role: Role) -> dict[str, str]:
    async with hub.sessions() as session, session.begin():
        key = await create_key(session, name, role, hub.clock.now())
    return {"authorization": f"Bearer {key}"}


async def _post(
    api: httpx.AsyncClient, number: str, path: str, headers: dict[str, str], **body: object
) -> httpx.Response:
    return await api.post(f"/api/v1/tickets/{number}/{path}", json=body, headers=headers)


def _notices(receiver: SignedWebhookReceiver) -> list[str]:
    return [m["purpose"] for m in receiver.received]


async def test_a_rejection_reaches_the_customer_only_after_another_reviewer_approves_it(
    api: httpx.AsyncClient, hub: Hub, ticket: str, receiver: SignedWebhookReceiver
) -> None:
    agent = await _key(hub, "li", Role.agent)
    senior = await _key(hub, "wang", Role.supervisor)
    ombudsman = await _key(hub, "zhao", Role.supervisor)
    await _post(api, ticket, "transitions", agent, to="in_progress")
    proposed = await _post(
        api, ticket, "transitions", senior, to="under_review", outcome="rejected", summary="不符"
    )
    assert proposed.status_code == 200
    assert proposed.json()["review"] == {
        "state": "requested",
        "proposed_by": "supervisor:wang",
        "note": None,
    }
    await drain(hub)
    assert _notices(receiver) == ["acknowledgement", "progress"]  # accepted, in progress

    reply = await _post(api, ticket, "replies", agent, text="很遗憾")
    assert reply.status_code == 409
    own = await _post(api, ticket, "review", senior, decision="approve", reason="ok")
    assert own.status_code == 409
    assert "cannot review it" in own.json()["detail"]
    by_agent = await _post(api, ticket, "review", agent, decision="approve", reason="ok")
    assert by_agent.status_code == 403
    await drain(hub)
    assert _notices(receiver) == ["acknowledgement", "progress"]

    approved = await _post(api, ticket, "review", ombudsman, decision="approve", reason="依据充分")
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert (body["status"], body["outcome"], body["review_state"]) == (
        "resolved",
        "rejected",
        "approved",
    )
    assert body["review"]["note"] == "依据充分"
    await drain(hub)
    assert _notices(receiver) == ["acknowledgement", "progress", "progress", "survey"]


async def test_a_reviewer_changes_the_outcome_or_sends_the_decision_back_with_reasons(
    api: httpx.AsyncClient, hub: Hub, ticket: str
) -> None:
    agent = await _key(hub, "li", Role.agent)
    reviewer = await _key(hub, "zhao", Role.supervisor)
    await _post(api, ticket, "transitions", agent, to="in_progress")
    await _post(api, ticket, "transitions", agent, to="under_review", outcome="rejected")
    back = await _post(api, ticket, "review", reviewer, decision="send_back", reason="补充证据")
    assert back.status_code == 200
    assert (back.json()["status"], back.json()["review"]["note"]) == ("in_progress", "补充证据")

    await _post(api, ticket, "transitions", agent, to="under_review", outcome="rejected")
    missing = await _post(api, ticket, "review", reviewer, decision="change", reason="部分支持")
    assert missing.status_code == 422
    changed = await _post(
        api,
        ticket,
        "review",
        reviewer,
        decision="change",
        outcome="partially_resolved",
        summary="退还部分费用",
        reason="部分支持",
    )
    assert changed.status_code == 200
    body = changed.json()
    assert (body["status"], body["outcome"], body["outcome_summary"]) == (
        "resolved",
        "partially_resolved",
        "退还部分费用",
    )


async def test_extensions_need_a_reason_a_supervisor_for_the_second_and_stop_at_the_cap(
    api: httpx.AsyncClient, hub: Hub, ticket: str, receiver: SignedWebhookReceiver
) -> None:
    agent = await _key(hub, "li", Role.agent)
    supervisor = await _key(hub, "zhao", Role.supervisor)
    view = (await api.get(f"/api/v1/tickets/{ticket}", headers=agent)).json()
    due = view["sla"]["resolution_due_at"]
    assert view["sla"]["policy"] == "cn-nfra-order-3"
    assert {c["name"] for c in view["sla"]["clocks"]} == {"first_response", "resolution"}

    empty = await _post(api, ticket, "extensions", agent, reason=" ")
    assert empty.status_code == 422
    first = await _post(api, ticket, "extensions", agent, reason="需调取监控录像")
    assert first.status_code == 200, first.text
    assert first.json()["sla"]["resolution_due_at"] > due
    second = await _post(api, ticket, "extensions", agent, reason="仍需时间")
    assert second.status_code == 403
    assert "supervisor" in second.json()["detail"]
    granted = await _post(api, ticket, "extensions", supervisor, reason="案情特别复杂")
    assert granted.status_code == 200
    extensions = granted.json()["sla"]["extensions"]
    assert [(e["number"], e["approved_by"]) for e in extensions] == [
        (1, None),
        (2, "supervisor:zhao"),
    ]
    third = await _post(api, ticket, "extensions", supervisor, reason="再延")
    assert third.status_code == 409
    assert "beyond the cap" in third.json()["detail"]
    await drain(hub)
    assert _notices(receiver).count("progress") == 2  # the customer is told of each extension


async def test_a_phone_contact_counts_as_the_first_response(
    api: httpx.AsyncClient, hub: Hub, ticket: str, clock: ManualClock
) -> None:
    agent = await _key(hub, "li", Role.agent)
    clock.advance(timedelta(hours=3))
    response = await _post(api, ticket, "contacts", agent, via="phone", summary="已致电客户")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "in_progress"
    assert body["sla"]["first_responded_at"] is not None
    first = next(c for c in body["sla"]["clocks"] if c["name"] == "first_response")
    assert first["state"] == "met"
    assert all(m["text"] != "已致电客户" for m in body["messages"])
