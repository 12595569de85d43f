"""The CRM provider passes the context-provider conformance kit, like a bank's own would."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from connectors.crm import CrmProvider
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
TOKEN = "gateway-token-0123456789abcdef"
JSON = {"content-type": "application/json"}
CUSTOMER = {
    "customer_number": "C00012345",
    "name": "张伟",
    "tier": "private_banking",
    "segments": ["VIP", "elderly"],
    "products": ["credit_card", "mortgage"],
    "relationship_manager": "王经理",
    "matched_by": "wechat_openid",
}


def _answer(body: Any) -> PeerAnswer:
    return PeerAnswer(200, json.dumps(body, ensure_ascii=False).encode(), JSON)


class CrmHarness(ContextProviderHarness):
    provider = CrmProvider

    def config(self, peer_url: str) -> dict[str, Any]:
        return {
            "base_url": peer_url,
            "secret": SECRET,
            "bearer_token": TOKEN,
            "timeout_seconds": self.timeout,
        }

    def invalid_configs(self) -> list[tuple[dict[str, Any], str]]:
        return [
            ({"secret": SECRET}, "base_url"),
            ({"base_url": "http://crm.example", "secret": "plain-password"}, "secret"),
            (
                {"base_url": "http://crm.example", "secret": SECRET, "timeout_seconds": 0},
                "timeout_seconds",
            ),
            (
                {"base_url": "http://crm.example", "secret": SECRET, "bearer_token": "a b"},
                "bearer_token",
            ),
            ({"base_url": "http://crm.example", "secret": SECRET, "colour": "red"}, "colour"),
        ]

    def request(self, now: datetime) -> ContextRequest:
        return ContextRequest(
            request_id="ctx_conformance",
            identities=(Identity("wechat_openid", "oAbC123_conformance", verified=True),),
            ticket_number="TD-20261124-000001",
            channel="wechat",
            kind="complaint",
            text="信用卡重复扣费",
            received_at=now,
        )

    def peer_answer(self, scenario: str) -> PeerAnswer | None:
        if scenario == "found":
            return _answer({"found": True, "customer": CUSTOMER})
        return _answer({"found": False})

    def hostile_answers(self) -> list[tuple[str, PeerAnswer]]:
        def customer(**changes: Any) -> PeerAnswer:
            return _answer({"found": True, "customer": {**CUSTOMER, **changes}})

        return [
            ("found as a string", _answer({"found": "true", "customer": CUSTOMER})),
            ("found without a customer", _answer({"found": True})),
            ("not found with a customer", _answer({"found": False, "customer": CUSTOMER})),
            ("a customer number with spaces", customer(customer_number="C1 OR 1=1")),
            ("a numeric customer number", customer(customer_number=12345)),
            ("an empty customer number", customer(customer_number="")),
            ("a name with a NUL", customer(name="张\x00伟")),
            ("a 10,000-character name", customer(name="张" * 10_000)),
            ("segments as a string", customer(segments="vip")),
            ("a segment with markup", customer(segments=["<script>"])),
            ("a thousand segments", customer(segments=[f"s{i}" for i in range(1000)])),
            ("products holding objects", customer(products=[{"id": 1}])),
            (
                "a relationship manager with control characters",
                customer(relationship_manager="\x1b[31m"),
            ),
        ]

    def check_found(self, context: CustomerContext) -> str:
        expected = ("C00012345", "private_banking", ("vip", "elderly"), "王经理")
        got = (context.customer_ref, context.tier, context.segments, context.relationship_manager)
        return "" if got == expected else f"expected {expected}, got {got}"

    def check_request(self, received: ReceivedRequest, sent: ContextRequest) -> str:
        try:
            verify([SECRET], received.headers, received.body, sent.received_at)
        except SignatureError as exc:
            return f"the request's signature does not verify: {exc}"
        headers = {k.lower(): v for k, v in received.headers.items()}
        if headers.get("authorization") != f"Bearer {TOKEN}":
            return "the bearer token is missing"
        body = json.loads(received.body)
        if body.get("identities") != [{"kind": "wechat_openid", "value": "oAbC123_conformance"}]:
            return f"identities sent: {body.get('identities')!r}"
        if (
            headers.get("webhook-id") != sent.request_id
            or body.get("request_id") != sent.request_id
        ):
            return "the request id is not the lookup's (so the peer cannot spot a retry)"
        return ""


class TestCrmProviderConformance(ContextProviderConformance):
    harness = CrmHarness()
