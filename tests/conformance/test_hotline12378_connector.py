"""The built-in 12378 connector against the conformance kit, like any third-party connector."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from connectors.hotline12378 import FEEDBACK_PURPOSE, Hotline12378Connector
from hub.sdk import OutboundMessage
from hub.testing import ConnectorConformance, HttpConnectorHarness, InboundRequest
from tests.hotline_transfers import (
    BEIJING_SECRET,
    STRANGER_SECRET,
    encode,
    hotline_config,
    signed,
    transfer,
)


def _request(
    payload: Any, now: datetime, secret: str = BEIJING_SECRET, description: str = ""
) -> InboundRequest:
    body = payload if isinstance(payload, bytes) else encode(payload)
    return InboundRequest(
        body=body,
        headers=signed(body, now, secret),
        path="/transfers",
        description=description,
    )


class HotlineHarness(HttpConnectorHarness):
    connector = Hotline12378Connector

    def config(self, peer_url: str) -> dict[str, Any]:
        return hotline_config(f"{peer_url}/feedback")

    def invalid_configs(self) -> list[tuple[dict[str, Any], str]]:
        good = hotline_config("https://regulator.example/feedback")
        beijing = good["branches"]["beijing"]
        return [
            ({}, "branches"),
            ({"branches": {}}, "branches"),
            ({"branches": {"beijing": {**beijing, "secret": "plain"}}}, "branches.beijing.secret"),
            (
                {"branches": {"beijing": {**beijing, "feedback_url": "ftp://x"}}},
                "branches.beijing.feedback_url",
            ),
            ({**good, "max_batch": 501}, "max_batch"),
            ({**good, "colour": "red"}, "colour"),
            # Two branches with one secret: the error names the table it found it in.
            (
                {"branches": {"a": beijing, "b": {**beijing, "name": "其他"}}},
                "",
            ),
        ]

    def valid_request(self, now: datetime) -> InboundRequest:
        return _request(transfer(now), now)

    def tampered_request(self, now: datetime) -> InboundRequest:
        return _request(transfer(now), now, secret=STRANGER_SECRET)

    def malformed_requests(self, now: datetime) -> list[InboundRequest]:
        return [
            _request(b"{not json", now, description="not JSON"),
            _request([1, 2], now, description="a JSON array"),
            _request({"transfer_id": "X-1"}, now, description="most fields missing"),
            _request(
                transfer(now, transfer_type="hot_transfer"), now, description="hot without call_id"
            ),
            _request(
                transfer(now, received_at="2026-11-20 09:30"), now, description="time without zone"
            ),
            _request(transfer(now, summary="a\u0000b"), now, description="NUL in summary"),
            _request({"transfers": []}, now, description="empty batch"),
            _request(
                {"transfers": [transfer(now)] * 2}, now, description="one transfer twice in a batch"
            ),
            _request(
                {"transfers": [transfer(now) for _ in range(501)]},
                now,
                description="501 transfers",
            ),
            _request(transfer(now), now - timedelta(minutes=10), description="stale timestamp"),
        ]

    def outbound_message(self, now: datetime) -> OutboundMessage:
        return OutboundMessage(
            channel="hotline12378",
            idempotency_key="msg_kit_1",
            ticket_number="TD-20261123-000001",
            recipient={"branch": "beijing", "transfer_id": "BJ12378-000001"},
            text="监管转办结果反馈（BJ12378-000001）：已解决",
            purpose=FEEDBACK_PURPOSE,
            created_at=now,
            metadata={
                "contacted_at": (now - timedelta(days=2)).isoformat(),
                "decided_at": now.isoformat(),
                "outcome": "resolved",
                "summary": "已退还年费 300 元并致歉",
                "extensions": [],
                "satisfaction": "satisfied",
                "handler": "consumer-protection / 张*",
            },
        )


class TestHotline12378ConnectorConformance(ConnectorConformance):
    harness = HotlineHarness()
