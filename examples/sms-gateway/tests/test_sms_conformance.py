"""The SMS example against Tongdao's conformance kit, the same tests as the built-in channels."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from hub.sdk import OutboundMessage
from hub.testing import ConnectorConformance, HttpConnectorHarness, InboundRequest, PeerAnswer
from tongdao_sms import SmsConnector, sign_uplink

SIGNING_KEY = "example-signing-key-0123456789"


def _uplink(
    payload: Any,
    now: datetime,
    key: str = SIGNING_KEY,
    description: str = "",
    stamp: int | None = None,
) -> InboundRequest:
    body = json.dumps(payload, ensure_ascii=False).encode()
    stamp = stamp if stamp is not None else int(now.timestamp())
    return InboundRequest(
        body=body,
        headers={
            "content-type": "application/json",
            "x-sms-timestamp": str(stamp),
            "x-sms-signature": sign_uplink(key, stamp, body),
        },
        path="/uplink",
        description=description,
    )


class SmsHarness(HttpConnectorHarness):
    connector = SmsConnector

    def config(self, peer_url: str) -> dict[str, Any]:
        return {"api_url": peer_url, "api_key": "key-12345678", "signing_key": SIGNING_KEY}

    def invalid_configs(self) -> list[tuple[dict[str, Any], str]]:
        return [
            ({"api_key": "key-12345678", "signing_key": SIGNING_KEY}, "api_url"),
            ({"api_url": "http://gw", "api_key": "short", "signing_key": SIGNING_KEY}, "api_key"),
            (
                {"api_url": "http://gw", "api_key": "key-12345678", "signing_key": "x"},
                "signing_key",
            ),
            (
                {
                    "api_url": "http://gw",
                    "api_key": "key-12345678",
                    "signing_key": SIGNING_KEY,
                    "sender": "abc",
                },
                "sender",
            ),
        ]

    def valid_request(self, now: datetime) -> InboundRequest:
        return _uplink(
            {
                "msg_id": "mo-1",
                "from": "+8613812345678",
                "to": "10690000",
                "text": "投诉 TD-20261123-000001 的处理太慢",
            },
            now,
        )

    def tampered_request(self, now: datetime) -> InboundRequest:
        return _uplink(
            {"msg_id": "mo-2", "from": "13812345678", "to": "10690000", "text": "x"},
            now,
            key="somebody-else-entirely-0000",
        )

    def malformed_requests(self, now: datetime) -> list[InboundRequest]:
        return [
            _uplink(
                {"msg_id": "mo-3", "to": "10690000", "text": "x"}, now, description="no sender"
            ),
            _uplink(
                {"msg_id": "mo-4", "from": "not-a-number", "to": "1069", "text": "x"},
                now,
                description="sender is not a number",
            ),
            _uplink(
                {"msg_id": "mo-5", "from": "13812345678", "to": "1069", "text": "x"},
                now,
                stamp=int((now - timedelta(hours=1)).timestamp()),
                description="timestamp an hour old",
            ),
            _uplink("[]", now, description="not an object"),
        ]

    def outbound_message(self, now: datetime) -> OutboundMessage:
        return OutboundMessage(
            channel="sms",
            idempotency_key="msg_kit_1",
            ticket_number="TD-20261123-000001",
            recipient={"phone": "+8613812345678"},
            text="您的投诉已受理。",
            purpose="acknowledgement",
            created_at=now,
        )

    def peer_answer(self, scenario: str) -> PeerAnswer:
        if scenario == "client_error":
            return PeerAnswer(400, b'{"code": "INVALID_NUMBER"}')
        return super().peer_answer(scenario)


class TestSmsConformance(ConnectorConformance):
    harness = SmsHarness()
