"""The customer's progress lookup through real HTTP, on SQLite and PostgreSQL: the code from
the acknowledgement opens the ticket's public view, nothing internal shows, every mismatch
gives the same 404, attempts are rate-limited on the hub's clock, and the page escapes."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest

from hub.app import create_app
from hub.auth import Role
from hub.runtime import Hub
from hub.settings import ProgressLookupSettings, Settings
from hub.testing import SignedWebhookReceiver
from tests.app_pushes import app_message, push
from tests.conftest import drain
from ticket_core import ManualClock

PER_NUMBER, PER_CLIENT, WINDOW = 4, 7, 600
CODE = re.compile(r"查询码：([23456789A-HJKMNP-Z]{8})")
INTERNAL = ("客户疑似职业索赔人", "li.wei", "cards-backoffice", "不符合赔付条件")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Small limits, so the tests reach them in a few requests."""
    return settings.model_copy(
        update={
            "progress_lookup": ProgressLookupSettings(
                max_attempts_per_number=PER_NUMBER,
                max_attempts_per_client=PER_CLIENT,
                window_seconds=WINDOW,
            )
        }
    )


async def _open(
    api: httpx.AsyncClient,
    hub: Hub,
    clock: ManualClock,
    receiver: SignedWebhookReceiver,
    text: str = "信用卡被重复扣费，要求退款",
    user_id: str = "u-100",
) -> tuple[str, str]:
    """Open a ticket through the app channel; the number and code as the customer got them."""
    await push(api, app_message(text, user_id=user_id), clock.now())
    await drain(hub)
    ack = [r for r in receiver.received if r["purpose"] == "acknowledgement"][-1]
    match = CODE.search(ack["text"])
    assert match, ack["text"]
    return ack["ticket_number"], match.group(1)


def _from(address: str) -> dict[str, str]:
    # uvicorn trusts X-Forwarded-For from 127.0.0.1 (FORWARDED_ALLOW_IPS), as from a proxy.
    return {"x-forwarded-for": address}


async def _lookup(
    api: httpx.AsyncClient, number: str, code: str, client: str = "198.51.100.1"
) -> httpx.Response:
    return await api.post(
        "/api/v1/progress", json={"number": number, "code": code}, headers=_from(client)
    )


async def test_the_code_in_the_acknowledgement_opens_the_public_view(
    api: httpx.AsyncClient,
    hub: Hub,
    clock: ManualClock,
    receiver: SignedWebhookReceiver,
    make_key,
) -> None:
    number, code = await _open(api, hub, clock, receiver)
    response = await _lookup(api, number, code)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    view = response.json()
    agent = await make_key(Role.agent)
    ticket = (await api.get(f"/api/v1/tickets/{number}", headers=agent)).json()
    assert view["number"] == number
    assert (view["kind"], view["kind_text"]) == ("complaint", "投诉")
    assert (view["status"], view["status_text"]) == ("received", "已受理")
    assert view["due_at"] == ticket["sla"]["resolution_due_at"]
    assert view["outcome"] is None
    assert [(e["sender"], e["channel"]) for e in view["timeline"]][:2] == [
        ("customer", "app"),
        ("bank", "app"),
    ]
    assert view["timeline"][0]["text"] == "信用卡被重复扣费，要求退款"
    # The code reached the customer, but the hub keeps only its hash: the stored copy of
    # the acknowledgement (what agents, webhooks and the page show) has it masked.
    acknowledgement = view["timeline"][1]["text"]
    assert code not in acknowledgement and "********" in acknowledgement
    assert all(code not in m["text"] for m in ticket["messages"])
    # Case, dashes and spaces do not matter to the customer.
    typed = f"{code[:4].lower()}-{code[4:].lower()}"
    assert (await _lookup(api, f" {number.lower()} ", typed)).status_code == 200


async def test_wrong_code_and_unknown_number_get_the_same_404(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, receiver: SignedWebhookReceiver
) -> None:
    number, code = await _open(api, hub, clock, receiver)
    wrong_code = await _lookup(api, number, "ABCDEFGH" if code != "ABCDEFGH" else "HGFEDCBA")
    unknown = await _lookup(api, "TD-20991231-999999", code, client="198.51.100.2")
    malformed = await _lookup(api, "not-a-number", "x", client="198.51.100.3")
    other = await _open(api, hub, clock, receiver, user_id="u-other")
    crossed = await _lookup(api, number, other[1], client="198.51.100.4")
    for response in (wrong_code, unknown, malformed, crossed):
        assert response.status_code == 404
        assert response.json() == {"detail": "no ticket matches this number and verification code"}
        assert response.content == wrong_code.content


async def test_notes_and_internal_fields_never_show(
    api: httpx.AsyncClient,
    hub: Hub,
    clock: ManualClock,
    receiver: SignedWebhookReceiver,
    make_key,
) -> None:
    number, code = await _open(api, hub, clock, receiver)
    agent = await make_key(Role.agent)
    base = f"/api/v1/tickets/{number}"
    note = await api.post(f"{base}/notes", json={"text": "客户疑似职业索赔人"}, headers=agent)
    assert note.status_code == 201
    assigned = await api.post(
        f"{base}/assignment",
        json={"assignee": "li.wei", "queue": "cards-backoffice"},
        headers=agent,
    )
    assert assigned.status_code == 200, assigned.text
    reply = await api.post(
        f"{base}/replies", json={"text": "已为您核实，正在处理。"}, headers=agent
    )
    assert reply.status_code == 202
    # A rejection proposed for review is not an outcome the customer may see yet.
    review = await api.post(
        f"{base}/transitions",
        json={"to": "under_review", "outcome": "rejected", "summary": "不符合赔付条件"},
        headers=agent,
    )
    assert review.status_code == 200, review.text

    response = await _lookup(api, number, code)
    assert response.status_code == 200
    view = response.json()
    assert (view["status"], view["outcome"], view["outcome_text"]) == ("in_progress", None, None)
    assert "已为您核实，正在处理。" in [e["text"] for e in view["timeline"]]
    for secret in INTERNAL:
        assert secret not in response.text
    assert not {"assignee", "queue", "review_state", "notes", "audit", "author"} & (
        set(view) | {key for entry in view["timeline"] for key in entry}
    )


async def test_a_resolved_ticket_shows_its_outcome_and_no_due_time(
    api: httpx.AsyncClient,
    hub: Hub,
    clock: ManualClock,
    receiver: SignedWebhookReceiver,
    make_key,
) -> None:
    number, code = await _open(api, hub, clock, receiver)
    agent = await make_key(Role.agent)
    for step in ({"to": "in_progress"}, {"to": "resolved", "outcome": "resolved"}):
        moved = await api.post(f"/api/v1/tickets/{number}/transitions", json=step, headers=agent)
        assert moved.status_code == 200, moved.text
    view = (await _lookup(api, number, code)).json()
    assert (view["status"], view["status_text"]) == ("resolved", "已办结")
    assert (view["outcome"], view["outcome_text"]) == ("resolved", "已解决")
    assert view["due_at"] is None


async def test_attempts_per_number_are_limited_until_the_clock_moves(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, receiver: SignedWebhookReceiver
) -> None:
    number, code = await _open(api, hub, clock, receiver)
    for i in range(PER_NUMBER - 1):
        assert (await _lookup(api, number, "WRONGCDE", client=f"203.0.113.{i}")).status_code == 404
    assert (await _lookup(api, number, code, client="203.0.113.50")).status_code == 200
    # The limit counts every attempt on the number, from anywhere, right code or not.
    limited = await _lookup(api, number, code, client="203.0.113.51")
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) == WINDOW
    assert "too many attempts" in limited.json()["detail"]
    clock.advance(seconds=WINDOW - 1)
    assert (await _lookup(api, number, code, client="203.0.113.52")).status_code == 429
    clock.advance(seconds=1)
    assert (await _lookup(api, number, code, client="203.0.113.53")).status_code == 200


async def test_attempts_per_client_are_limited_across_numbers(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, receiver: SignedWebhookReceiver
) -> None:
    number, code = await _open(api, hub, clock, receiver)
    for i in range(PER_CLIENT):
        guess = await _lookup(api, f"TD-20261123-{i:06d}9", "WRONGCDE", client="192.0.2.9")
        assert guess.status_code == 404
    # The same client is now refused even for the right code; another client is not.
    assert (await _lookup(api, number, code, client="192.0.2.9")).status_code == 429
    assert (await _lookup(api, number, code, client="192.0.2.10")).status_code == 200
    clock.advance(timedelta(seconds=WINDOW))
    assert (await _lookup(api, number, code, client="192.0.2.9")).status_code == 200


async def test_the_public_endpoint_needs_no_key_but_bounds_its_body(
    api: httpx.AsyncClient,
) -> None:
    keyless = await api.post("/api/v1/progress", json={"number": "x", "code": "y"})
    assert keyless.status_code == 404
    huge = await api.post("/api/v1/progress", json={"number": "x" * 5000, "code": "y"})
    assert huge.status_code == 413
    bad = await api.post("/api/v1/progress", json={"number": "TD-20261123-000001"})
    assert bad.status_code == 422
    # Everything else under /api still needs a key.
    assert (await api.get("/api/v1/tickets")).status_code == 401
    schema = (await api.get("/openapi.json")).json()
    assert "/api/v1/progress" in schema["paths"]


async def test_the_page_looks_a_ticket_up_and_escapes_what_it_shows(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, receiver: SignedWebhookReceiver
) -> None:
    hostile = '<script>alert("x")</script> & <b>bold</b>'
    number, code = await _open(api, hub, clock, receiver, text=hostile)
    form = await api.get("/progress")
    assert form.status_code == 200
    assert '<form method="post"' in form.text
    assert "frame-ancestors 'none'" in form.headers["content-security-policy"]
    assert "http://" not in form.text and "https://" not in form.text  # no external assets

    page = await api.post(
        "/progress",
        data={"number": number, "code": code, "lang": "zh-CN"},
        headers=_from("198.51.100.77"),
    )
    assert page.status_code == 200, page.text
    assert page.headers["cache-control"] == "no-store"
    assert (
        "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page.text
    )
    assert "<script>" not in page.text and "<b>" not in page.text
    assert "已受理" in page.text and "北京时间" in page.text
    assert code not in page.text  # the code is never echoed back

    english = await api.post(
        "/progress",
        data={"number": number, "code": code, "lang": "en"},
        headers=_from("198.51.100.78"),
    )
    assert "Beijing time" in english.text and "received" in english.text


async def test_the_page_answers_a_mismatch_and_too_many_attempts(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, receiver: SignedWebhookReceiver
) -> None:
    number, _ = await _open(api, hub, clock, receiver)
    injected = '"><img src=x onerror=alert(1)>'
    miss = await api.post(
        "/progress", data={"number": injected, "code": "ABCDEFGH"}, headers=_from("192.0.2.200")
    )
    assert miss.status_code == 404
    assert "未找到" in miss.text
    assert "<img" not in miss.text and "&#34;&gt;&lt;img" in miss.text
    for _ in range(PER_NUMBER):
        await api.post("/progress", data={"number": number, "code": "ABCDEFGH"})
    limited = await api.post("/progress", data={"number": number, "code": "ABCDEFGH", "lang": "en"})
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == str(WINDOW)
    assert "Too many attempts" in limited.text and "10 minutes" in limited.text


async def test_the_lookup_can_be_turned_off(sqlite_url: str) -> None:
    hub = Hub(
        Settings(database={"url": sqlite_url}, progress_lookup={"enabled": False}),
        clock=ManualClock(),
    )
    transport = httpx.ASGITransport(app=create_app(hub=hub, run_workers=False))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
            api_call = await client.post("/api/v1/progress", json={"number": "x", "code": "y"})
            assert api_call.status_code == 401  # an ordinary API path again: key required
            assert (await client.get("/progress")).status_code == 404
    finally:
        await hub.close()
