"""The built-in email connector against the conformance kit, like any third-party connector.

The mail channel polls rather than being called, so the kit reads the envelopes the connector
would have stored (raw mails from Chinese customers' clients) instead of sending requests, and
its outbound peer is a real SMTP server (the aiosmtpd stand-in) answering in SMTP codes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from connectors.email import EmailConnector
from connectors.email.mailboxes import CONTENT_TYPE
from connectors.email.reading import external_id
from hub.sdk import InboundEnvelope, OutboundMessage
from hub.testing import ConnectorConformance, ConnectorHarness, PeerAnswer
from hub.testing.conformance import OutboundPeer
from hub.testing.standins.smtp import SmtpStandIn
from tests import email_samples as samples

ADDRESS = "support@bank.test"


class EmailHarness(ConnectorHarness):
    connector = EmailConnector

    def config(self, peer_url: str) -> dict[str, Any]:
        peer = urlsplit(peer_url)
        return {
            "address": ADDRESS,
            "display_name": "某某银行客服",
            "smtp": {"host": peer.hostname, "port": peer.port, "security": "none"},
            "timeout_seconds": self.outbound_timeout,
        }

    def invalid_configs(self) -> list[tuple[dict[str, Any], str]]:
        box = {"host": "imap.bank.example", "username": "support", "password": "x"}
        return [
            ({}, "address"),
            ({"address": "not an address"}, "address"),
            ({"address": "support+x@bank.test"}, "address"),
            ({"address": ADDRESS, "mailboxes": [{**box, "password": None}]}, "mailboxes.0"),
            ({"address": ADDRESS, "mailboxes": [{**box, "security": "tls"}]}, "mailboxes.0"),
            ({"address": ADDRESS, "mailboxes": [box, box]}, "mailboxes"),
            ({"address": ADDRESS, "smtp": {"host": "smtp.x", "port": 70000}}, "smtp.port"),
            ({"address": ADDRESS, "max_attachment_bytes": 0}, "max_attachment_bytes"),
            ({"address": ADDRESS, "ignore_senders": ["nobody"]}, "ignore_senders"),
            ({"address": ADDRESS, "intake": {"port": 2525, "protocol": "pop3"}}, "intake"),
            ({"address": ADDRESS, "colour": "red"}, "colour"),
        ]

    def make_peer(self) -> OutboundPeer:
        return SmtpStandIn()

    def peer_answer(self, scenario: str) -> PeerAnswer:
        return {
            "success": PeerAnswer(250, b"2.0.0 queued as 4F2A"),
            "rate_limited": PeerAnswer(421, b"4.7.0 too many messages, slow down"),
            "server_error": PeerAnswer(451, b"4.3.0 local error in processing"),
            "client_error": PeerAnswer(550, b"5.1.1 user unknown"),
        }[scenario]

    def sample_envelopes(self, now: datetime) -> list[InboundEnvelope]:
        raws = [
            samples.gbk_mail(),
            samples.big5_mail(),
            samples.qq_raw_header_mail(),
            samples.mislabelled_mail(),
            samples.split_word_mail(),
            samples.html_only_mail(),
            samples.rfc2231_attachment_mail(),
            samples.client_reply("补充说明", in_reply_to=f"<TD-20261123-000001.{'a' * 24}@x>"),
            samples.out_of_office(),
            samples.bounce(),
        ]
        return [
            InboundEnvelope(
                channel="email",
                external_id=external_id(raw),
                body=raw,
                content_type=CONTENT_TYPE,
                received_at=now,
                metadata={"source": "imap", "mailbox": "complaints", "uid": index + 1},
            )
            for index, raw in enumerate(raws)
        ]

    def outbound_message(self, now: datetime) -> OutboundMessage:
        return OutboundMessage(
            channel="email",
            idempotency_key="msg_kit_1",
            ticket_number="TD-20261123-000001",
            recipient={
                "email": "zhangsan@qq.com",
                "message_id": "<a1b2c3@qq.com>",
                "references": [],
                "subject": "信用卡年费投诉",
            },
            text="您的投诉已受理，工单号 TD-20261123-000001。",
            purpose="acknowledgement",
            created_at=now,
        )


class TestEmailConnectorConformance(ConnectorConformance):
    harness = EmailHarness()
