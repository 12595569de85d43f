"""Core systems telling the hub what they did, through ``/channels/core/events``."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import httpx
import pytest

from hub.auth import Role
from hub.runtime import Hub
from hub.settings import Settings
from hub.testing import SignedWebhookReceiver
from tests.app_pushes import OTHER_SECRET, app_message, push, sign_push
from tests.conftest import drain
from ticket_core import ManualClock

CARDS_SECRET = "whsec_Y2FyZHMtc3lzdGVtLXNlY3JldC0wMTIzNDU2Nzg5"
PAYMENTS_SECRET = "whsec_cGF5bWVudHMtc3lzdGVtLXNlY3JldC0wMTIzNDU2"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    connectors = {
        **settings.connectors,
        "core": {
            "systems": {"cards": {"secret": CARDS_SECRET}, "payments": {"secret": PAYMENTS_SECRET}}
        },
    }
    return settings.model_copy(update={"connectors": connectors})


@pytest.fixture
async def ticket(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, receiver: SignedWebhookReceiver
) -> str:
    await push(api, app_message("信用卡被重复扣款，要求退款", user_id="u-core"), clock.now())
    await drain(hub)
    return receiver.received[0]["ticket_number"]


async def _event(
    api: httpx.AsyncClient,
    payload: dict[str, Any],
    at: datetime,
    secret: str = PAYMENTS_SECRET,
    msg_id: str | None = None,
) -> httpx.Response:
    body = json.dumps(payload, ensure_ascii=False).encode()
    return await api.post(
        "/channels/core/events", content=body, headers=sign_push(body, at, msg_id, secret)
    )


async def test_refund_event_updates_the_ticket_and_the_customer_is_told(
    api: httpx.AsyncClient,
    hub: Hub,
    clock: ManualClock,
    receiver: SignedWebhookReceiver,
    ticket: str,
    make_key,
) -> None:
    response = await _event(
        api,
        {
            "ticket_number": ticket,
            "reference": {"type": "refund", "id": "RF20261123001"},
            "note": "退款已入账",
            "message": "您的退款 1,280 元已原路退回，请注意查收。",
        },
        clock.now(),
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "applied"
    await drain(hub)
    told = [r for r in receiver.received if r["purpose"] == "progress"]
    assert [(r["ticket_number"], r["user_id"]) for r in told] == [(ticket, "u-core")]
    assert "已原路退回" in told[0]["text"]
    agent = await make_key(Role.agent)
    view = (await api.get(f"/api/v1/tickets/{ticket}", headers=agent)).json()
    assert [m["purpose"] for m in view["messages"]][-2:] == ["note", "progress"]
    trail = (await api.get(f"/api/v1/tickets/{ticket}/audit", headers=agent)).json()
    reference = next(e for e in trail if e["action"] == "ticket.reference_added")
    assert reference["actor"] == "system:payments"
    assert reference["after"] == {"kind": "refund", "id": "RF20261123001"}


async def test_refused_move_answers_409_with_the_reason_every_time(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, ticket: str, make_key
) -> None:
    payload = {"ticket_number": ticket, "status": "closed"}
    first = await _event(api, payload, clock.now(), msg_id="evt-close-1")
    again = await _event(api, payload, clock.now(), msg_id="evt-close-1")
    assert first.status_code == again.status_code == 409
    assert "from open the ticket can only move to" in first.json()["detail"]
    assert again.json() == first.json()
    agent = await make_key(Role.agent)
    assert (await api.get(f"/api/v1/tickets/{ticket}", headers=agent)).json()["status"] == "open"


async def test_allowed_move_is_applied_once_per_webhook_id(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, ticket: str, make_key
) -> None:
    payload = {"ticket_number": ticket, "status": "in_progress", "note": "card unblocked"}
    first = await _event(api, payload, clock.now(), CARDS_SECRET, msg_id="evt-1")
    again = await _event(api, payload, clock.now(), CARDS_SECRET, msg_id="evt-1")
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json()["receipt"] == again.json()["receipt"]
    agent = await make_key(Role.agent)
    view = (await api.get(f"/api/v1/tickets/{ticket}", headers=agent)).json()
    assert view["status"] == "in_progress"
    assert [m["text"] for m in view["messages"] if m["direction"] == "note"] == ["card unblocked"]


async def test_each_system_signs_with_its_own_secret(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, ticket: str
) -> None:
    refused = await _event(api, {"ticket_number": ticket, "note": "x"}, clock.now(), OTHER_SECRET)
    assert refused.status_code == 401
    assert "matches no configured system" in refused.json()["detail"]
    # The same webhook-id from two systems is two events.
    one = await _event(
        api, {"ticket_number": ticket, "note": "a"}, clock.now(), CARDS_SECRET, "same"
    )
    two = await _event(
        api, {"ticket_number": ticket, "note": "b"}, clock.now(), PAYMENTS_SECRET, "same"
    )
    assert one.status_code == two.status_code == 202


async def test_unknown_ticket_is_404(api: httpx.AsyncClient, clock: ManualClock) -> None:
    response = await _event(api, {"ticket_number": "TD-20990101-000009", "note": "x"}, clock.now())
    assert response.status_code == 404
    assert "TD-20990101-000009" in response.json()["detail"]
