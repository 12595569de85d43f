"""The app channel through real HTTP, exactly as specs/api.md fixes it, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
from sqlmodel import func, select
from standardwebhooks import Webhook

from hub.auth import Role
from hub.runtime import Hub
from hub.store import Envelope, OutboxRow
from hub.testing import SignedWebhookReceiver
from tests.app_pushes import APP_SECRET, OTHER_SECRET, app_message, push, sign_push
from tests.conftest import drain
from ticket_core import ManualClock, Message


async def _count(hub: Hub, model: type) -> int:
    async with hub.sessions() as session:
        return (await session.exec(select(func.count()).select_from(model))).one()


async def test_push_is_acknowledged_with_a_receipt_once_stored(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock
) -> None:
    response = await push(api, app_message(), clock.now())
    assert response.status_code == 202
    receipt = response.json()["receipt"]
    assert receipt.startswith("rcpt_")
    assert await _count(hub, Envelope) == 1


async def test_redelivered_webhook_id_returns_first_receipt_and_makes_one_ticket_message(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, make_key
) -> None:
    body = app_message()
    first = await push(api, body, clock.now(), msg_id="msg_retry_1")
    again = await push(api, body, clock.now(), msg_id="msg_retry_1")
    await drain(hub)
    third = await push(api, body, clock.now(), msg_id="msg_retry_1")
    await drain(hub)
    assert first.status_code == 202
    assert again.status_code == third.status_code == 200
    assert again.json() == third.json() == first.json()
    assert await _count(hub, Envelope) == 1
    async with hub.sessions() as session:
        inbound = (await session.exec(select(Message).where(Message.direction == "in"))).all()
    assert len(inbound) == 1


async def test_receipt_reports_pending_then_processed_with_ticket_number(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, make_key
) -> None:
    headers = await make_key(Role.integrator)
    receipt = (await push(api, app_message(), clock.now())).json()["receipt"]
    pending = (await api.get(f"/api/v1/receipts/{receipt}", headers=headers)).json()
    assert pending == {
        "receipt": receipt,
        "status": "pending",
        "ticket_number": None,
        "error": None,
    }
    await drain(hub)
    done = (await api.get(f"/api/v1/receipts/{receipt}", headers=headers)).json()
    assert done["status"] == "processed"
    assert done["ticket_number"].startswith("TD-")
    assert (await api.get("/api/v1/receipts/rcpt_nope", headers=headers)).status_code == 404


async def test_new_ticket_acknowledgement_reaches_app_callback_signed_with_ticket_number(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, receiver: SignedWebhookReceiver, make_key
) -> None:
    await push(api, app_message(user_id="u-77"), clock.now())
    await drain(hub)
    assert len(receiver.received) == 1
    callback = receiver.received[0]
    assert callback["event"] == "message"
    assert callback["user_id"] == "u-77"
    assert callback["purpose"] == "acknowledgement"
    assert callback["ticket_number"] in callback["text"]
    headers = await make_key(Role.agent)
    ticket = (await api.get(f"/api/v1/tickets/{callback['ticket_number']}", headers=headers)).json()
    assert ticket["status"] == "open"
    assert ticket["kind"] == "complaint"
    assert ticket["channel"] == "app"
    assert [(m["direction"], m["purpose"], m["delivery_state"]) for m in ticket["messages"]] == [
        ("in", "customer", None),
        ("out", "acknowledgement", "delivered"),
    ]


async def test_callback_signature_verifies_with_reference_library(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock
) -> None:
    seen: list[tuple[bytes, dict[str, str]]] = []

    from aiohttp import web

    async def handler(request: web.Request) -> web.Response:
        seen.append((await request.read(), dict(request.headers)))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/cb", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        connector = hub.registry.get("app")
        assert connector is not None
        object.__setattr__(connector.config, "callback_url", f"http://127.0.0.1:{port}/cb")
        clock.set(clock.now())
        await push(api, app_message(), clock.now())
        await drain(hub)
    finally:
        await runner.cleanup()
    assert len(seen) == 1
    body, headers = seen[0]
    # The reference implementation checks the timestamp against the real clock.
    payload = Webhook(APP_SECRET).verify(body, headers)
    assert payload["event"] == "message"


async def test_agent_reply_through_api_reaches_app_callback(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, receiver: SignedWebhookReceiver, make_key
) -> None:
    await push(api, app_message(user_id="u-9"), clock.now())
    await drain(hub)
    number = receiver.received[0]["ticket_number"]
    headers = await make_key(Role.agent)
    reply = await api.post(
        f"/api/v1/tickets/{number}/replies",
        json={"text": "已为您核实，款项将原路退回。"},
        headers=headers,
    )
    assert reply.status_code == 202
    assert reply.json()["delivery_state"] == "pending"
    await drain(hub)
    assert [r["purpose"] for r in receiver.received] == ["acknowledgement", "reply"]
    assert receiver.received[1] == receiver.received[1] | {
        "ticket_number": number,
        "user_id": "u-9",
        "text": "已为您核实，款项将原路退回。",
    }
    ticket = (await api.get(f"/api/v1/tickets/{number}", headers=headers)).json()
    assert ticket["status"] == "in_progress"
    assert ticket["messages"][-1]["delivery_state"] == "delivered"
    assert ticket["sla"]["first_responded_at"] is not None


async def test_follow_up_with_ticket_number_joins_that_ticket(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, receiver: SignedWebhookReceiver, make_key
) -> None:
    await push(api, app_message(user_id="u-5"), clock.now())
    await drain(hub)
    number = receiver.received[0]["ticket_number"]
    await push(
        api,
        app_message("补充：扣费时间是11月20日", user_id="u-5", ticket_number=number),
        clock.now(),
    )
    # Somebody else naming that ticket opens their own instead of writing into it.
    await push(api, app_message("我也是", user_id="u-6", ticket_number=number), clock.now())
    await drain(hub)
    headers = await make_key(Role.agent)
    ticket = (await api.get(f"/api/v1/tickets/{number}", headers=headers)).json()
    inbound = [m["text"] for m in ticket["messages"] if m["direction"] == "in"]
    assert inbound == ["我的信用卡被重复扣费了，要求退款", "补充：扣费时间是11月20日"]
    assert len({r["ticket_number"] for r in receiver.received}) == 2


async def test_wrong_signature_is_refused_with_401_and_nothing_stored(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock
) -> None:
    response = await push(api, app_message(), clock.now(), secret=OTHER_SECRET)
    assert response.status_code == 401
    assert "does not match" in response.json()["detail"]
    assert await _count(hub, Envelope) == 0


async def test_tampered_body_is_refused_with_401(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock
) -> None:
    headers = sign_push(app_message("original"), clock.now())
    response = await api.post(
        "/channels/app/messages", content=app_message("tampered"), headers=headers
    )
    assert response.status_code == 401
    assert await _count(hub, Envelope) == 0


async def test_stale_timestamp_is_refused_with_401_naming_it(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock
) -> None:
    response = await push(api, app_message(), clock.now() - timedelta(minutes=6))
    assert response.status_code == 401
    assert "too old" in response.json()["detail"]
    assert await _count(hub, Envelope) == 0


async def test_missing_signature_headers_are_named(api: httpx.AsyncClient, hub: Hub) -> None:
    response = await api.post("/channels/app/messages", content=app_message())
    assert response.status_code == 401
    assert "webhook-signature" in response.json()["detail"]
    assert await _count(hub, Envelope) == 0


async def test_invalid_body_gets_422_naming_each_bad_field_and_nothing_stored(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock
) -> None:
    body = json.dumps(
        {"text": "", "attachments": [{"name": "a.png", "content_type": "image/png", "data": "!!"}]}
    ).encode()
    response = await push(api, body, clock.now())
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"user_id", "text", "attachments.0.data"} <= fields
    not_json = await push(api, b"{not json", clock.now())
    assert not_json.status_code == 422
    assert await _count(hub, Envelope) == 0


async def test_body_over_one_mebibyte_gets_413_and_nothing_stored(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock
) -> None:
    body = app_message("x" * (1024 * 1024))
    response = await push(api, body, clock.now())
    assert response.status_code == 413
    assert "larger than 1048576 bytes" in response.json()["detail"]
    assert await _count(hub, Envelope) == 0


async def test_attachment_is_stored_by_content_hash(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, receiver: SignedWebhookReceiver, make_key
) -> None:
    import base64
    import hashlib

    data = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
    attachment = {
        "name": "账单.png",
        "content_type": "image/png",
        "data": base64.b64encode(data).decode(),
    }
    await push(api, app_message(attachments=[attachment]), clock.now())
    await drain(hub)
    headers = await make_key(Role.agent)
    ticket = (
        await api.get(f"/api/v1/tickets/{receiver.received[0]['ticket_number']}", headers=headers)
    ).json()
    assert ticket["messages"][0]["attachments"] == [
        {
            "name": "账单.png",
            "content_type": "image/png",
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
        }
    ]


async def test_api_requires_a_valid_key_and_the_right_role(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, receiver: SignedWebhookReceiver, make_key
) -> None:
    await push(api, app_message(), clock.now())
    await drain(hub)
    number = receiver.received[0]["ticket_number"]
    assert (await api.get(f"/api/v1/tickets/{number}")).status_code == 401
    bad = {"authorization": "Bearer td_000000000000_nope"}
    assert (await api.get(f"/api/v1/tickets/{number}", headers=bad)).status_code == 401
    auditor = await make_key(Role.auditor)
    assert (await api.get(f"/api/v1/tickets/{number}", headers=auditor)).status_code == 200
    refused = await api.post(
        f"/api/v1/tickets/{number}/replies", json={"text": "hi"}, headers=auditor
    )
    assert refused.status_code == 403
    assert "auditor" in refused.json()["detail"]
    assert await _count(hub, OutboxRow) == 1


async def test_receipt_stays_pending_with_the_error_while_retries_remain(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, make_key
) -> None:
    from hub.sdk import InboundEnvelope

    result = await hub.envelopes.accept(
        InboundEnvelope("app", "broken", b'{"user_id": "u"}', "application/json", clock.now())
    )
    await hub.pipeline.process_once()
    headers = await make_key(Role.integrator)
    state = (await api.get(f"/api/v1/receipts/{result.receipt}", headers=headers)).json()
    assert state["status"] == "pending"
    assert state["error"] == "ValidationError: text: Field required"


async def test_nul_character_is_refused_with_422(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock
) -> None:
    response = await push(api, app_message("投诉\u0000内容"), clock.now())
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "text"
    assert await _count(hub, Envelope) == 0
