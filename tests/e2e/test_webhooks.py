"""Webhooks to core systems over real HTTP, each delivery verified with the reference
``standardwebhooks`` package as a receiving bank system would."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiohttp import web
from standardwebhooks import Webhook

from hub.auth import Role
from hub.runtime import Hub
from hub.sdk import SignatureError, verify
from hub.settings import Settings
from tests.app_pushes import app_message, push
from tests.conftest import drain
from ticket_core import ManualClock


class CoreSystem:
    """A bank system receiving webhooks: keeps raw requests, answers as told."""

    def __init__(self) -> None:
        self.requests: list[tuple[bytes, dict[str, str]]] = []
        self.status = 200
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append((await request.read(), dict(request.headers)))
        return web.Response(status=self.status, text="ok" if self.status < 300 else "down")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/hooks"  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    def verified(self, secret: str, moved_clock: bool = False) -> list[dict[str, Any]]:
        """Every delivery, checked with the reference implementation. Its ``verify`` reads
        the real time; when the test has moved the clock, its ``sign`` is compared instead."""
        if not moved_clock:
            return [Webhook(secret).verify(body, headers) for body, headers in self.requests]
        payloads = []
        for body, headers in self.requests:
            stamp = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
            expected = Webhook(secret).sign(headers["webhook-id"], stamp, body.decode())
            assert expected in headers["webhook-signature"].split(), "signature mismatch"
            payloads.append(json.loads(body))
        return payloads

    def delivered(self, secret: str, moved_clock: bool = False) -> list[dict[str, Any]]:
        """Deliveries the system accepted, once per webhook-id."""
        seen, out = set(), []
        pairs = zip(self.requests, self.verified(secret, moved_clock), strict=True)
        for (_, headers), payload in pairs:
            if headers["webhook-id"] not in seen:
                seen.add(headers["webhook-id"])
                out.append(payload)
        return out


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"webhooks": settings.webhooks.model_copy(update={"allow_private_targets": True})}
    )


@pytest.fixture
async def core() -> Any:
    system = CoreSystem()
    await system.start()
    yield system
    await system.stop()


async def _subscribe(
    api: httpx.AsyncClient, headers: dict[str, str], url: str, events: list[str], **extra: Any
) -> dict[str, Any]:
    response = await api.post(
        "/api/v1/webhooks", json={"url": url, "events": events, **extra}, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_ticket_events_are_delivered_signed_and_verifiable(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, core: CoreSystem, make_key
) -> None:
    admin = await make_key(Role.admin)
    subscription = await _subscribe(api, admin, core.url, ["*"], description="core banking")
    assert subscription["secret"].startswith("whsec_")
    await push(api, app_message("我要投诉 13812345678 被扣款"), clock.now())
    await drain(hub)
    payloads = core.verified(subscription["secret"])
    assert [p["type"] for p in payloads] == [
        "ticket.created",
        "message.created",
        "message.created",
        "ticket.status_changed",
        "ticket.updated",
    ]
    created = payloads[0]
    assert created["data"]["version"] == "1"
    # The ticket as it stands when the transaction that made the event commits.
    assert created["data"]["ticket"]["status"] == "open"
    assert created["data"]["change"]["action"] == "ticket.created"
    status = payloads[3]["data"]["change"]
    assert (status["before"]["status"], status["after"]["status"]) == ("new", "open")
    inbound = payloads[1]["data"]["message"]
    assert inbound["direction"] == "in"
    assert "13812345678" not in inbound["text"] and "138****5678" in inbound["text"]
    assert "13812345678" not in json.dumps(payloads, ensure_ascii=False)  # subject too
    ids = [headers["webhook-id"] for _, headers in core.requests]
    assert len(set(ids)) == len(ids)


async def test_wildcard_selects_only_matching_events(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, core: CoreSystem, make_key
) -> None:
    admin = await make_key(Role.admin)
    subscription = await _subscribe(api, admin, core.url, ["ticket.status_*", "review.*"])
    await push(api, app_message(), clock.now())
    await drain(hub)
    assert [p["type"] for p in core.verified(subscription["secret"])] == ["ticket.status_changed"]


async def test_clear_text_subscription_sees_message_text_unmasked(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, core: CoreSystem, make_key
) -> None:
    admin = await make_key(Role.admin)
    subscription = await _subscribe(api, admin, core.url, ["message.created"], clear_text=True)
    await push(api, app_message("电话13812345678"), clock.now())
    await drain(hub)
    assert core.verified(subscription["secret"])[0]["data"]["message"]["text"] == "电话13812345678"


async def test_endpoint_down_retries_then_delivers_in_order_when_back(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, core: CoreSystem, make_key
) -> None:
    admin = await make_key(Role.admin)
    subscription = await _subscribe(api, admin, core.url, ["ticket.*", "message.*"])
    core.status = 503
    await push(api, app_message(user_id="u-order"), clock.now())
    await drain(hub)
    assert len(core.requests) == 1  # the first event failed; the rest wait behind it
    log = (await api.get(f"/api/v1/webhooks/{subscription['id']}/attempts", headers=admin)).json()
    assert [(a["result"], a["status_code"]) for a in log] == [("retry", 503)]
    assert log[0]["response_excerpt"] == "down"
    core.status = 200
    clock.advance(seconds=10)
    await drain(hub)
    delivered = core.delivered(subscription["secret"])
    assert [p["type"] for p in delivered] == [
        "ticket.created",
        "message.created",
        "message.created",
        "ticket.status_changed",
        "ticket.updated",
    ]
    # The failed event kept its id when it was retried.
    assert core.requests[0][1]["webhook-id"] == core.requests[1][1]["webhook-id"]


async def test_replay_since_a_time_delivers_again_with_the_same_ids(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, core: CoreSystem, make_key
) -> None:
    admin = await make_key(Role.admin)
    subscription = await _subscribe(api, admin, core.url, ["ticket.created"])
    start = clock.now()
    await push(api, app_message(), clock.now())
    await drain(hub)
    response = await api.post(
        f"/api/v1/webhooks/{subscription['id']}/replay",
        json={"since": start.isoformat()},
        headers=admin,
    )
    assert response.json() == {"requeued": 1}
    await drain(hub)
    assert len(core.requests) == 2
    assert core.requests[0][1]["webhook-id"] == core.requests[1][1]["webhook-id"]


async def test_rotated_secret_signs_with_both_during_the_overlap(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, core: CoreSystem, make_key
) -> None:
    admin = await make_key(Role.admin)
    subscription = await _subscribe(api, admin, core.url, ["ticket.created"])
    rotated = (
        await api.post(
            f"/api/v1/webhooks/{subscription['id']}/rotate",
            json={"overlap_hours": 1},
            headers=admin,
        )
    ).json()
    await push(api, app_message(user_id="a"), clock.now())
    await drain(hub)
    assert len(core.verified(subscription["secret"])) == 1
    assert len(core.verified(rotated["secret"])) == 1
    clock.advance(hours=2)
    core.requests.clear()
    await push(api, app_message(user_id="b"), clock.now())
    await drain(hub)
    body, headers = core.requests[0]
    assert len(headers["webhook-signature"].split()) == 1
    assert verify([rotated["secret"]], headers, body, clock.now())
    with pytest.raises(SignatureError):
        verify([subscription["secret"]], headers, body, clock.now())


async def test_ssrf_targets_are_refused(api: httpx.AsyncClient, hub: Hub, make_key) -> None:
    admin = await make_key(Role.admin)
    object.__setattr__(hub.settings.webhooks, "allow_private_targets", False)
    for url, words in (
        ("http://127.0.0.1:9/hook", "loopback"),
        ("http://10.1.2.3/hook", "private"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://[::1]/hook", "loopback"),
        ("ftp://example.com/hook", "only http and https"),
        ("http://user:pw@example.com/hook", "credentials"),
        ("http://[2002:7f00:1::]/hook", "loopback"),
        ("http://[64:ff9b::a9fe:a9fe]/hook", "link-local"),
        ("http://[::ffff:10.0.0.1]/hook", "private"),
        ("http://example.com:99999/hook", "cannot be parsed"),
    ):
        response = await api.post(
            "/api/v1/webhooks", json={"url": url, "events": ["*"]}, headers=admin
        )
        assert response.status_code == 422, url
        assert words in response.json()["detail"], (url, response.json())
    typo = await api.post(
        "/api/v1/webhooks",
        json={"url": "http://127.0.0.1/x", "events": ["tickets.*"]},
        headers=admin,
    )
    assert typo.status_code == 422 and "tickets.*" in typo.json()["detail"]


async def test_failing_endpoint_is_paused_then_disabled_with_the_reason(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, core: CoreSystem, make_key
) -> None:
    admin = await make_key(Role.admin)
    subscription = await _subscribe(api, admin, core.url, ["ticket.created"])
    core.status = 500
    for user in range(5):
        await push(api, app_message(user_id=f"p{user}"), clock.now())
    await drain(hub)
    state = (await api.get(f"/api/v1/webhooks/{subscription['id']}", headers=admin)).json()
    assert state["consecutive_failures"] == 5 and state["paused_until"] is not None
    sent = len(core.requests)
    clock.advance(seconds=60)
    await drain(hub)
    assert len(core.requests) == sent  # paused: nothing is tried
    for _ in range(80):
        clock.advance(hours=1)
        await drain(hub)
    state = (await api.get(f"/api/v1/webhooks/{subscription['id']}", headers=admin)).json()
    assert state["active"] is False
    assert "failing since" in state["disabled_reason"] and "HTTP 500" in state["disabled_reason"]
    core.status = 200
    await api.patch(f"/api/v1/webhooks/{subscription['id']}", json={"active": True}, headers=admin)
    await api.post(
        f"/api/v1/webhooks/{subscription['id']}/replay",
        json={"since": subscription["created_at"]},
        headers=admin,
    )
    await drain(hub)
    assert len(core.delivered(subscription["secret"], moved_clock=True)) == 5


async def test_only_admins_and_integrators_manage_subscriptions(
    api: httpx.AsyncClient, make_key
) -> None:
    agent = await make_key(Role.agent)
    response = await api.get("/api/v1/webhooks", headers=agent)
    assert response.status_code == 403


async def test_assignment_is_a_ticket_assigned_event(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, core: CoreSystem, make_key
) -> None:
    admin, supervisor = await make_key(Role.admin), await make_key(Role.supervisor)
    subscription = await _subscribe(api, admin, core.url, ["ticket.assigned"])
    await push(api, app_message(), clock.now())
    await drain(hub)
    number = (await api.get("/api/v1/tickets", headers=admin)).json()["items"][0]["number"]
    response = await api.post(
        f"/api/v1/tickets/{number}/assignment",
        json={"assignee": "li.wei", "queue": "cards"},
        headers=supervisor,
    )
    assert response.status_code == 200
    assert (response.json()["assignee"], response.json()["queue"]) == ("li.wei", "cards")
    await drain(hub)
    (event,) = core.verified(subscription["secret"])
    assert event["type"] == "ticket.assigned"
    assert event["data"]["change"]["after"] == {"assignee": "li.wei", "queue": "cards"}


async def test_only_an_admin_gives_a_subscription_clear_text(
    api: httpx.AsyncClient, core: CoreSystem, make_key
) -> None:
    integrator = await make_key(Role.integrator)
    body = {"url": core.url, "events": ["*"], "clear_text": True}
    refused = await api.post("/api/v1/webhooks", json=body, headers=integrator)
    assert refused.status_code == 403
    assert "only an admin" in refused.json()["detail"]


async def test_replay_needs_a_time_with_its_zone(
    api: httpx.AsyncClient, core: CoreSystem, make_key
) -> None:
    admin = await make_key(Role.admin)
    subscription = await _subscribe(api, admin, core.url, ["*"])
    response = await api.post(
        f"/api/v1/webhooks/{subscription['id']}/replay",
        json={"since": "2026-01-01T00:00:00"},
        headers=admin,
    )
    assert response.status_code == 422


async def test_second_rotation_during_the_overlap_is_refused(
    api: httpx.AsyncClient, core: CoreSystem, make_key
) -> None:
    admin = await make_key(Role.admin)
    subscription = await _subscribe(api, admin, core.url, ["*"])
    path = f"/api/v1/webhooks/{subscription['id']}/rotate"
    assert (await api.post(path, json={"overlap_hours": 1}, headers=admin)).status_code == 200
    again = await api.post(path, json={"overlap_hours": 1}, headers=admin)
    assert again.status_code == 409
    assert "overlap is still running" in again.json()["detail"]
