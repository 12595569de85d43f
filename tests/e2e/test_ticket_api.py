"""Tickets over the REST API: lifecycle moves, refusals with reasons, notes, the audit trail."""

from __future__ import annotations

import itertools

import httpx
import pytest

from hub.auth import Role
from hub.runtime import Hub
from hub.testing import SignedWebhookReceiver
from tests.app_pushes import app_message, push
from tests.conftest import drain
from ticket_core import ManualClock


@pytest.fixture
async def ticket(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, receiver: SignedWebhookReceiver
) -> str:
    await push(api, app_message("我要投诉，理财产品收益和宣传不一致"), clock.now())
    await drain(hub)
    return receiver.received[0]["ticket_number"]


async def _move(
    api: httpx.AsyncClient, number: str, headers: dict[str, str], **body: object
) -> httpx.Response:
    return await api.post(f"/api/v1/tickets/{number}/transitions", json=body, headers=headers)


async def test_complaint_walks_the_lifecycle_to_closed(
    api: httpx.AsyncClient, ticket: str, make_key
) -> None:
    agent = await make_key(Role.agent)
    for step in (
        {"to": "in_progress"},
        {"to": "pending_internal"},
        {"to": "in_progress"},
        {"to": "pending_customer"},
        {"to": "in_progress"},
        {"to": "resolved", "outcome": "resolved", "summary": "差额已补偿"},
        {"to": "closed"},
    ):
        response = await _move(api, ticket, agent, **step)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == step["to"]
    final = response.json()
    assert final["outcome"] == "resolved"
    assert final["closed_at"] is not None
    assert final["allowed_transitions"] == []


async def test_illegal_move_gets_409_naming_the_allowed_moves(
    api: httpx.AsyncClient, ticket: str, make_key
) -> None:
    agent = await make_key(Role.agent)
    response = await _move(api, ticket, agent, to="closed")
    assert response.status_code == 409
    assert response.json()["detail"] == (
        "cannot move from open to closed: from open the ticket can only move to: "
        "in_progress, pending_customer, pending_internal"
    )
    unknown = await _move(api, ticket, agent, to="archived")
    assert unknown.status_code == 422


async def test_rejection_is_held_for_review_and_only_a_supervisor_approves(
    api: httpx.AsyncClient, ticket: str, make_key, receiver: SignedWebhookReceiver, hub: Hub
) -> None:
    agent, supervisor = await make_key(Role.agent), await make_key(Role.supervisor)
    await _move(api, ticket, agent, to="in_progress")
    direct = await _move(api, ticket, agent, to="resolved", outcome="rejected")
    assert direct.status_code == 409
    assert "must pass under_review" in direct.json()["detail"]
    review = await _move(
        api, ticket, agent, to="under_review", outcome="rejected", summary="不符合赔付条件"
    )
    assert review.status_code == 200
    assert review.json()["review_state"] == "requested"
    refused = await _move(api, ticket, agent, to="resolved", approve_review=True)
    assert refused.status_code == 403
    approved = await _move(api, ticket, supervisor, to="resolved", approve_review=True)
    assert approved.status_code == 200
    assert approved.json()["review_state"] == "approved"
    assert approved.json()["outcome"] == "rejected"


async def test_reply_to_a_closed_ticket_is_refused_with_409(
    api: httpx.AsyncClient, ticket: str, make_key
) -> None:
    agent = await make_key(Role.agent)
    for step in (
        {"to": "in_progress"},
        {"to": "resolved", "outcome": "withdrawn"},
        {"to": "closed"},
    ):
        assert (await _move(api, ticket, agent, **step)).status_code == 200
    response = await api.post(
        f"/api/v1/tickets/{ticket}/replies", json={"text": "hello"}, headers=agent
    )
    assert response.status_code == 409
    assert "closed" in response.json()["detail"]


async def test_internal_note_is_never_sent_to_the_customer(
    api: httpx.AsyncClient, hub: Hub, ticket: str, make_key, receiver: SignedWebhookReceiver
) -> None:
    agent = await make_key(Role.agent)
    response = await api.post(
        f"/api/v1/tickets/{ticket}/notes", json={"text": "客户情绪激动，注意措辞"}, headers=agent
    )
    assert response.status_code == 201
    await drain(hub)
    assert [r["purpose"] for r in receiver.received] == ["acknowledgement"]
    view = (await api.get(f"/api/v1/tickets/{ticket}", headers=agent)).json()
    assert view["messages"][-1]["direction"] == "note"


async def test_every_change_is_in_the_audit_trail_in_order(
    api: httpx.AsyncClient, ticket: str, make_key
) -> None:
    agent = await make_key(Role.agent)
    await _move(api, ticket, agent, to="in_progress")
    trail = (await api.get(f"/api/v1/tickets/{ticket}/audit", headers=agent)).json()
    assert [e["action"] for e in trail] == [
        "ticket.created",
        "message.received",
        "message.acknowledgement",
        "ticket.status_changed",
        "ticket.status_changed",
        "message.progress",  # the customer is told their case is being handled
    ]
    moved = trail[-2]
    assert moved["actor"] == "agent:test-agent"
    assert moved["before"]["status"] == "open" and moved["after"]["status"] == "in_progress"
    assert trail[-1]["actor"] == "system"
    assert all(e["prev_hash"] == p["hash"] for p, e in itertools.pairwise(trail))


async def test_unknown_ticket_is_404(api: httpx.AsyncClient, make_key) -> None:
    agent = await make_key(Role.agent)
    response = await api.get("/api/v1/tickets/TD-20990101-000001", headers=agent)
    assert response.status_code == 404
    assert "TD-20990101-000001" in response.json()["detail"]


async def test_ticket_list_filters_by_status(api: httpx.AsyncClient, ticket: str, make_key) -> None:
    agent = await make_key(Role.agent)
    page = (await api.get("/api/v1/tickets", params={"status": "open"}, headers=agent)).json()
    assert [t["number"] for t in page["items"]] == [ticket]
    empty = (await api.get("/api/v1/tickets", params={"status": "closed"}, headers=agent)).json()
    assert empty["total"] == 0


async def test_health_ready_openapi_and_docs(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz")).json() == {"status": "ok"}
    assert (await api.get("/readyz")).status_code == 200
    schema = (await api.get("/openapi.json")).json()
    assert "/channels/app/messages" in schema["paths"]
    assert "/api/v1/tickets/{number}/transitions" in schema["paths"]
    assert (await api.get("/docs")).status_code == 200


async def test_metrics_count_intake_and_delivery(api: httpx.AsyncClient, ticket: str) -> None:
    text = (await api.get("/metrics")).text
    assert 'tongdao_envelopes_total{channel="app",result="stored"}' in text
    assert 'tongdao_envelopes_processed_total{channel="app",result="processed"}' in text
    assert 'tongdao_outbox_attempts_total{result="delivered",target="channel:app"}' in text


async def test_api_refuses_a_keyless_request_before_reading_its_body(
    api: httpx.AsyncClient,
) -> None:
    response = await api.post("/api/v1/tickets/TD-1/replies", content=b"{not json")
    assert response.status_code == 401
    assert "API key is required" in response.json()["detail"]


async def test_api_refuses_a_body_over_the_cap(api: httpx.AsyncClient, make_key) -> None:
    agent = await make_key(Role.agent)
    big = b'{"text": "' + b"x" * (300 * 1024) + b'"}'
    response = await api.post("/api/v1/tickets/TD-1/replies", content=big, headers=agent)
    assert response.status_code == 413

    async def chunks():
        for _ in range(300):
            yield b"x" * 1024

    streamed = await api.post("/api/v1/tickets/TD-1/replies", content=chunks(), headers=agent)
    assert streamed.status_code == 413


async def test_reply_while_under_review_is_refused(
    api: httpx.AsyncClient, ticket: str, make_key
) -> None:
    agent = await make_key(Role.agent)
    await _move(api, ticket, agent, to="in_progress")
    await _move(api, ticket, agent, to="under_review", outcome="rejected")
    response = await api.post(
        f"/api/v1/tickets/{ticket}/replies", json={"text": "驳回"}, headers=agent
    )
    assert response.status_code == 409
    assert "under review" in response.json()["detail"]


async def test_odd_path_parameters_get_4xx_not_5xx(api: httpx.AsyncClient, make_key) -> None:
    admin = await make_key(Role.admin)
    for path in (
        "/api/v1/tickets/%00",
        "/api/v1/receipts/a%00",
        "/api/v1/outbox/99999999999999999999/replay",
    ):
        method = api.post if path.endswith("replay") else api.get
        response = await method(path, headers=admin)
        assert 400 <= response.status_code < 500, (path, response.status_code)
    huge = await api.get("/api/v1/tickets", params={"offset": 10**20}, headers=admin)
    assert huge.status_code == 422


async def test_an_auditor_reads_the_ticket_with_personal_data_masked(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, receiver: SignedWebhookReceiver, make_key
) -> None:
    text = "我的卡 6222021234567890128 被盗刷，电话 13812345678，邮箱 li.wei@example.com"
    await push(api, app_message(text), clock.now())
    await drain(hub)
    number = receiver.received[0]["ticket_number"]
    agent, auditor = await make_key(Role.agent), await make_key(Role.auditor)
    seen_by_agent = (await api.get(f"/api/v1/tickets/{number}", headers=agent)).json()
    assert seen_by_agent["messages"][0]["text"] == text
    seen_by_auditor = (await api.get(f"/api/v1/tickets/{number}", headers=auditor)).json()
    masked = seen_by_auditor["messages"][0]["text"]
    for secret in ("6222021234567890128", "13812345678", "li.wei@example.com"):
        assert secret not in masked
    assert "被盗刷" in masked
