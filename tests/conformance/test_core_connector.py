"""The built-in core-systems connector against the conformance kit."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from connectors.core import CoreConnector
from hub.sdk import OutboundMessage
from hub.testing import ConnectorConformance, HttpConnectorHarness, InboundRequest
from tests.app_pushes import APP_SECRET, OTHER_SECRET, sign_push


def _event(
    payload: Any, now: datetime, secret: str = APP_SECRET, description: str = ""
) -> InboundRequest:
    body = json.dumps(payload).encode()
    return InboundRequest(
        body=body,
        headers=sign_push(body, now, secret=secret),
        path="/events",
        description=description,
    )


class CoreHarness(HttpConnectorHarness):
    connector = CoreConnector

    def config(self, peer_url: str) -> dict[str, Any]:
        return {"systems": {"cards": {"secret": APP_SECRET}}}

    def invalid_configs(self) -> list[tuple[dict[str, Any], str]]:
        return [
            ({}, "systems"),
            ({"systems": {"cards": {"secret": "plain"}}}, "systems.cards.secret"),
            ({"systems": {"a:b": {"secret": APP_SECRET}}}, ""),
            ({"systems": {"a": {"secret": APP_SECRET}, "b": {"secret": APP_SECRET}}}, ""),
        ]

    def valid_request(self, now: datetime) -> InboundRequest:
        return _event(
            {
                "ticket_number": "TD-20261123-000001",
                "reference": {"type": "refund", "id": "RF-1"},
                "message": "退款已原路退回",
            },
            now,
        )

    def tampered_request(self, now: datetime) -> InboundRequest:
        return _event(
            {"ticket_number": "TD-20261123-000001", "note": "x"}, now, secret=OTHER_SECRET
        )

    def malformed_requests(self, now: datetime) -> list[InboundRequest]:
        return [
            _event({"ticket_number": "TD-20261123-000001"}, now, description="does nothing"),
            _event({"ticket_number": "nope", "note": "x"}, now, description="bad ticket number"),
            _event(
                {"ticket_number": "TD-20261123-000001", "status": "archived"},
                now,
                description="unknown status",
            ),
            _event(
                {"ticket_number": "TD-20261123-000001", "summary": "done", "note": "x"},
                now,
                description="summary without a status",
            ),
            _event(
                {"ticket_number": "TD-20261123-000001", "note": "a\u0000"},
                now,
                description="NUL in note",
            ),
            _event(
                {"ticket_number": "TD-20261123-000001", "note": "x"},
                now - timedelta(minutes=10),
                description="stale timestamp",
            ),
        ]

    def outbound_message(self, now: datetime) -> OutboundMessage:
        return OutboundMessage("core", "k", "TD-20261123-000001", {}, "x", "reply", now)


class TestCoreConnectorConformance(ConnectorConformance):
    harness = CoreHarness()
