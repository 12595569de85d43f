"""The built-in app connector against the conformance kit, like any third-party connector."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from connectors.app import AppConnector
from hub.sdk import OutboundMessage
from hub.testing import ConnectorConformance, HttpConnectorHarness, InboundRequest
from tests.app_pushes import APP_SECRET, OTHER_SECRET, sign_push


def _request(
    payload: dict[str, Any] | bytes,
    now: datetime,
    secret: str = APP_SECRET,
    msg_id: str | None = None,
    description: str = "",
) -> InboundRequest:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return InboundRequest(
        body=body,
        headers=sign_push(body, now, msg_id, secret),
        path="/messages",
        description=description,
    )


class AppHarness(HttpConnectorHarness):
    connector = AppConnector

    def config(self, peer_url: str) -> dict[str, Any]:
        return {"secret": APP_SECRET, "callback_url": f"{peer_url}/callback"}

    def invalid_configs(self) -> list[tuple[dict[str, Any], str]]:
        return [
            ({}, "secret"),
            ({"secret": "not-a-whsec"}, "secret"),
            ({"secret": APP_SECRET, "callback_url": "ftp://x"}, "callback_url"),
            ({"secret": APP_SECRET, "colour": "red"}, "colour"),
        ]

    def valid_request(self, now: datetime) -> InboundRequest:
        return _request({"user_id": "u-1", "text": "我要投诉", "phone": "13812345678"}, now)

    def tampered_request(self, now: datetime) -> InboundRequest:
        return _request({"user_id": "u-1", "text": "我要投诉"}, now, secret=OTHER_SECRET)

    def malformed_requests(self, now: datetime) -> list[InboundRequest]:
        return [
            _request(b"{not json", now, description="not JSON"),
            _request({"text": "no user"}, now, description="no user_id"),
            _request({"user_id": "u", "text": ""}, now, description="empty text"),
            _request({"user_id": "u", "text": "x" * 20001}, now, description="text too long"),
            _request({"user_id": "u", "text": "a\u0000b"}, now, description="NUL in text"),
            _request([1, 2], now, description="a JSON array"),  # type: ignore[arg-type]
            _request(
                {"user_id": "u", "text": "hi"},
                now - timedelta(minutes=10),
                description="stale timestamp",
            ),
        ]

    def outbound_message(self, now: datetime) -> OutboundMessage:
        return OutboundMessage(
            channel="app",
            idempotency_key="msg_kit_1",
            ticket_number="TD-20261123-000001",
            recipient={"user_id": "u-1"},
            text="您的投诉已受理",
            purpose="acknowledgement",
            created_at=now,
        )


class TestAppConnectorConformance(ConnectorConformance):
    harness = AppHarness()
