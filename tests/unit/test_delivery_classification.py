"""How a peer's HTTP answer or failure becomes delivered / retry / give_up (hub/sdk/delivery.py)."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from aiohttp import web

from hub.sdk.delivery import (
    DeliveryStatus,
    classify_exception,
    classify_response,
    post_json,
)

REQUEST = httpx.Request("POST", "http://x")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def response(status: int, text: str = "", **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers, text=text, request=REQUEST)


@pytest.mark.parametrize("status", [200, 201, 204])
def test_2xx_is_delivered(status: int) -> None:
    result = classify_response(response(status))
    assert result.status == DeliveryStatus.delivered
    assert result.reason == ""
    assert result.retry_after is None


def test_delivered_keeps_the_peer_request_id_as_reference() -> None:
    result = classify_response(response(200, **{"x-request-id": "req-42"}))
    assert result.peer_reference == "req-42"


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503])
def test_transient_status_is_retried_with_the_code_in_the_reason(status: int) -> None:
    result = classify_response(response(status, text="busy"))
    assert result.status == DeliveryStatus.retry
    assert result.reason == f"HTTP {status}: busy"
    assert result.retry_after is None


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_in_seconds_is_honoured(status: int) -> None:
    result = classify_response(response(status, **{"retry-after": "120"}))
    assert result.status == DeliveryStatus.retry
    assert result.retry_after == 120.0


def test_retry_after_as_http_date_is_honoured() -> None:
    when = datetime.now(UTC) + timedelta(seconds=90)
    result = classify_response(response(503, **{"retry-after": format_datetime(when, usegmt=True)}))
    assert result.status == DeliveryStatus.retry
    assert result.retry_after is not None
    assert 80 < result.retry_after <= 90


def test_retry_after_date_in_the_past_means_now() -> None:
    past = format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True)
    assert classify_response(response(429, **{"retry-after": past})).retry_after == 0.0


def test_unreadable_retry_after_is_ignored() -> None:
    result = classify_response(response(503, **{"retry-after": "soon"}))
    assert result.status == DeliveryStatus.retry
    assert result.retry_after is None


@pytest.mark.parametrize("status", [400, 401, 404, 410])
def test_permanent_client_error_is_given_up_naming_the_status(status: int) -> None:
    result = classify_response(response(status, text=" no such user \n"))
    assert result.status == DeliveryStatus.give_up
    assert result.reason == f"HTTP {status}: no such user"
    assert result.retry_after is None


def test_reason_without_a_body_is_just_the_status() -> None:
    assert classify_response(response(404)).reason == "HTTP 404"


def test_reason_excerpt_is_bounded() -> None:
    reason = classify_response(response(500, text="x" * 5000)).reason
    assert reason == "HTTP 500: " + "x" * 200


@pytest.mark.parametrize("exc_type", [httpx.ConnectTimeout, httpx.ReadTimeout])
def test_timeouts_are_retried(exc_type: type[httpx.TimeoutException]) -> None:
    result = classify_exception(exc_type("timed out", request=REQUEST))
    assert result.status == DeliveryStatus.retry
    assert result.reason == f"timeout: {exc_type.__name__}"


def test_connection_error_is_retried() -> None:
    result = classify_exception(httpx.ConnectError("refused", request=REQUEST))
    assert result.status == DeliveryStatus.retry
    assert result.reason == "connection error: ConnectError: refused"


def test_non_transport_exception_is_given_up() -> None:
    result = classify_exception(ValueError("bad payload"))
    assert result.status == DeliveryStatus.give_up
    assert result.reason == "ValueError: bad payload"


@pytest.fixture
async def peer() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    """Start real aiohttp servers on loopback; each call returns the URL of a new one."""
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> str:
        app = web.Application()
        app.router.add_post("/hook", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        runners.append(runner)
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}/hook"

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as http:
        yield http


async def test_post_json_retries_a_503_honouring_retry_after(
    peer: Callable[[Handler], Awaitable[str]], client: httpx.AsyncClient
) -> None:
    async def busy(request: web.Request) -> web.Response:
        return web.Response(status=503, text="maintenance", headers={"Retry-After": "7"})

    result = await post_json(client, await peer(busy), b"{}", {})
    assert result.status == DeliveryStatus.retry
    assert result.retry_after == 7.0
    assert result.reason == "HTTP 503: maintenance"


async def test_post_json_sends_the_body_as_json_with_given_headers_and_is_delivered(
    peer: Callable[[Handler], Awaitable[str]], client: httpx.AsyncClient
) -> None:
    seen: dict[str, Any] = {}

    async def created(request: web.Request) -> web.Response:
        seen["content_type"] = request.headers["content-type"]
        seen["webhook_id"] = request.headers.get("webhook-id")
        seen["body"] = await request.json()
        return web.Response(status=201, headers={"x-request-id": "peer-7"})

    body = json.dumps({"text": "您好"}, ensure_ascii=False).encode()
    result = await post_json(client, await peer(created), body, {"webhook-id": "msg_1"})
    assert result.status == DeliveryStatus.delivered
    assert result.peer_reference == "peer-7"
    assert seen == {
        "content_type": "application/json",
        "webhook_id": "msg_1",
        "body": {"text": "您好"},
    }


async def test_post_json_to_a_closed_port_is_retried(client: httpx.AsyncClient) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = await post_json(client, f"http://127.0.0.1:{port}/hook", b"{}", {})
    assert result.status == DeliveryStatus.retry
    assert result.reason.startswith("connection error: ConnectError")


def test_retry_after_http_date_without_zone_is_read_as_utc() -> None:
    response = httpx.Response(
        503,
        headers={"retry-after": "Wed, 21 Oct 2099 07:28:00 -0000"},
        request=httpx.Request("POST", "http://x"),
    )
    result = classify_response(response)
    assert result.status == DeliveryStatus.retry
    assert result.retry_after == 86400.0


@pytest.mark.parametrize("value", ["inf", "1e20", "nan", "-5"])
def test_absurd_retry_after_is_bounded(value: str) -> None:
    response = httpx.Response(
        429, headers={"retry-after": value}, request=httpx.Request("POST", "http://x")
    )
    retry_after = classify_response(response).retry_after
    assert retry_after is None or 0.0 <= retry_after <= 86400.0
