"""The anti-fraud provider passes the context-provider conformance kit."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from connectors.antifraud import AntifraudProvider
from hub.sdk import (
    ContextRequest,
    CustomerContext,
    Identity,
    SignatureError,
    generate_secret,
    verify,
)
from hub.testing import ContextProviderConformance, ContextProviderHarness, PeerAnswer
from hub.testing.peer import ReceivedRequest

SECRET = generate_secret()
JSON = {"content-type": "application/json"}
ASSESSMENT = {
    "risk_score": 0.93,
    "reasons": [
        {"code": "known_malicious_complainant", "description": "近90天恶意投诉3次"},
        {"code": "suspicious_refund_demand", "description": "退款诉求异常"},
    ],
    "assessment_id": "AF-000001",
}


def _answer(body: Any) -> PeerAnswer:
    return PeerAnswer(200, json.dumps(body, ensure_ascii=False).encode(), JSON)


class AntifraudHarness(ContextProviderHarness):
    provider = AntifraudProvider

    def config(self, peer_url: str) -> dict[str, Any]:
        return {"base_url": peer_url, "secret": SECRET, "timeout_seconds": self.timeout}

    def invalid_configs(self) -> list[tuple[dict[str, Any], str]]:
        return [
            ({"secret": SECRET}, "base_url"),
            ({"base_url": "ftp://af.example", "secret": SECRET}, "base_url"),
            (
                {"base_url": "http://af.example", "secret": SECRET, "max_text_chars": 5},
                "max_text_chars",
            ),
            (
                {"base_url": "http://af.example", "secret": SECRET, "max_response_bytes": 10**9},
                "max_response_bytes",
            ),
        ]

    def request(self, now: datetime) -> ContextRequest:
        return ContextRequest(
            request_id="ctx_conformance",
            identities=(Identity("app_user", "u-conformance", verified=True),),
            ticket_number="TD-20261124-000002",
            channel="app",
            kind="complaint",
            text="不给我退款我就找媒体曝光你们",
            received_at=now,
            customer_ref="C00012345",
        )

    def peer_answer(self, scenario: str) -> PeerAnswer | None:
        if scenario == "found":
            return _answer(ASSESSMENT)
        return None

    def hostile_answers(self) -> list[tuple[str, PeerAnswer]]:
        def assessment(**changes: Any) -> PeerAnswer:
            return _answer({**ASSESSMENT, **changes})

        return [
            ("a score as a string", assessment(risk_score="0.99")),
            ("a score as a boolean", assessment(risk_score=True)),
            ("a score above 1", assessment(risk_score=93)),
            ("a negative score", assessment(risk_score=-0.5)),
            ("no score", _answer({"reasons": []})),
            ("Infinity", PeerAnswer(200, b'{"risk_score": Infinity}', JSON)),
            ("a reason code with spaces", assessment(reasons=[{"code": "drop table"}])),
            ("a reason as a string", assessment(reasons=["fraud"])),
            (
                "a description with a NUL",
                assessment(reasons=[{"code": "x", "description": "\x00"}]),
            ),
            ("a hundred reasons", assessment(reasons=[{"code": f"r{i}"} for i in range(100)])),
        ]

    def check_found(self, context: CustomerContext) -> str:
        expected = (0.93, ("known_malicious_complainant", "suspicious_refund_demand"))
        got = (context.risk_score, context.reasons)
        return "" if got == expected else f"expected {expected}, got {got}"

    def check_request(self, received: ReceivedRequest, sent: ContextRequest) -> str:
        try:
            verify([SECRET], received.headers, received.body, sent.received_at)
        except SignatureError as exc:
            return f"the request's signature does not verify: {exc}"
        body = json.loads(received.body)
        if body.get("customer_number") != "C00012345":
            return "the customer number the CRM named is not sent"
        if (body.get("message") or {}).get("text") != sent.text:
            return "the message text is not sent"
        return ""


class TestAntifraudProviderConformance(ContextProviderConformance):
    harness = AntifraudHarness()
