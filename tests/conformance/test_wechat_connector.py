"""The WeChat connector against the conformance kit, like any third-party connector.

WeChat's API answers HTTP 200 with an ``errcode`` for everything, so the harness says how it
signals each scenario; the kit's scripted peer answers the token endpoint the same way, which
the connector must (and does) read the same way too.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from connectors.wechat import WeChatConnector
from hub.sdk import OutboundMessage
from hub.testing import ConnectorConformance, HttpConnectorHarness, InboundRequest, PeerAnswer
from hub.testing.standins.wechat_push import WeChatPusher
from tests.wechat_pushes import APP_ID, BOMB, EXTERNAL, OPENID, retail_pusher, wechat_config


def _wechat(body: dict[str, Any]) -> PeerAnswer:
    return PeerAnswer(200, json.dumps(body).encode())


def _push(
    message: bytes, now: datetime, pusher: WeChatPusher | None = None, description: str = ""
) -> InboundRequest:
    signed = (pusher or retail_pusher()).sign(message, "safe", now)
    return InboundRequest(
        body=signed.body,
        headers={"content-type": "text/xml"},
        path="/retail",
        params=signed.params,
        description=description,
    )


class WeChatHarness(HttpConnectorHarness):
    connector = WeChatConnector

    def config(self, peer_url: str) -> dict[str, Any]:
        return wechat_config(peer_url)

    def invalid_configs(self) -> list[tuple[dict[str, Any], str]]:
        good = wechat_config("http://127.0.0.1:1")
        retail = good["accounts"]["retail"]

        def with_retail(**changes: Any) -> dict[str, Any]:
            return {**good, "accounts": {"retail": {**retail, **changes}}}

        return [
            ({}, "accounts"),
            ({**good, "accounts": {}}, "accounts"),
            (with_retail(token="has spaces!"), "accounts.retail.token"),
            (with_retail(encoding_aes_key="tooShort"), "accounts.retail.encoding_aes_key"),
            (with_retail(encoding_aes_key=None), "accounts.retail"),
            (with_retail(mode="paranoid"), "accounts.retail.mode"),
            (
                with_retail(templates={"default": {"template_id": "t", "data": {"k": "{secret}"}}}),
                "accounts.retail.templates.default.data",
            ),
            ({**good, "accounts": {"Retail Bank": retail}}, "accounts"),
            ({**good, "api_base_url": "ftp://x"}, "api_base_url"),
            ({**good, "colour": "red"}, "colour"),
        ]

    def valid_request(self, now: datetime) -> InboundRequest:
        return _push(retail_pusher().text(OPENID, "我要投诉：信用卡年费乱扣", 8100000001, now), now)

    def duplicate_request(self, first: InboundRequest, now: datetime) -> InboundRequest:
        # WeChat's retry: the same message, signed again with a new nonce.
        message = retail_pusher().text(OPENID, "我要投诉：信用卡年费乱扣", 8100000001, now)
        return _push(message, now + timedelta(seconds=5))

    def tampered_request(self, now: datetime) -> InboundRequest:
        impostor = WeChatPusher("impostorToken1", APP_ID, retail_pusher().encoding_aes_key)
        return _push(impostor.text(OPENID, "转账", 1, now), now, impostor)

    def malformed_requests(self, now: datetime) -> list[InboundRequest]:
        wechat = retail_pusher()
        return [
            _push(b"not xml", now, description="not XML"),
            _push(BOMB, now, description="an entity bomb"),
            _push(EXTERNAL, now, description="an external entity"),
            _push(wechat.message(OPENID, "text", now, Content="x"), now, description="no MsgId"),
            _push(
                wechat.message(OPENID, "image", now, MsgId=3), now, description="image, no MediaId"
            ),
            _push(
                wechat.text(OPENID, "长" * 30000, 4, now), now, description="over max_body_bytes"
            ),
            _push(
                wechat.text(OPENID, "hi", 2, now - timedelta(minutes=10)),
                now - timedelta(minutes=10),
                description="stale timestamp",
            ),
        ]

    def outbound_message(self, now: datetime) -> OutboundMessage:
        return OutboundMessage(
            channel="wechat",
            idempotency_key="msg_kit_1",
            ticket_number="TD-20261123-000001",
            recipient={"account": "retail", "openid": OPENID, "last_inbound_at": now.isoformat()},
            text="您的投诉已受理",
            purpose="acknowledgement",
            created_at=now,
        )

    def peer_answer(self, scenario: str) -> PeerAnswer:
        return {
            # One body that is both a token and a successful send, as the scripted peer
            # answers every path alike.
            "success": _wechat(
                {"errcode": 0, "errmsg": "ok", "access_token": "KIT_TOKEN", "expires_in": 7200}
            ),
            "rate_limited": _wechat({"errcode": 45009, "errmsg": "reach max api daily quota"}),
            "server_error": _wechat({"errcode": -1, "errmsg": "system error"}),
            "client_error": _wechat({"errcode": 40003, "errmsg": "invalid openid"}),
        }[scenario]


class TestWeChatConnectorConformance(ConnectorConformance):
    harness = WeChatHarness()
