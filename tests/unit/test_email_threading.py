"""Which ticket a mail belongs to, whether it may open one, and where the answer goes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from connectors.email import EmailConnector, threads
from connectors.email.config import OAuth2
from connectors.email.mailboxes import CONTENT_TYPE
from connectors.email.oauth import TokenError, TokenSource
from connectors.email.reading import external_id
from hub.registry import build_config
from hub.sdk import ConnectorContext, InboundEnvelope, InboundMessage, MemoryState
from hub.testing import InMemoryIngest, PeerAnswer, ScriptedPeer
from tests import email_samples as samples
from tests.email_setup import email_config
from ticket_core import ManualClock

TICKET = "TD-20261123-000007"
OTHER = "TD-20261123-000009"
OURS = threads.outbound_message_id(TICKET, "msg_1", "bank.test")
NOW = datetime(2026, 11, 23, 2, 30, tzinfo=UTC)


@pytest.fixture
async def connector() -> AsyncIterator[EmailConnector]:
    async with httpx.AsyncClient() as http:
        yield EmailConnector(
            build_config("email", EmailConnector, email_config(ignore_senders=["@monitor.test"])),
            ConnectorContext(
                "email", InMemoryIngest(), http, ManualClock(NOW), state=MemoryState()
            ),
        )


def _parse(connector: EmailConnector, raw: bytes, **metadata: object) -> InboundMessage:
    envelope = InboundEnvelope("email", external_id(raw), raw, CONTENT_TYPE, NOW, {}, metadata)
    parsed = connector.parse(envelope)
    assert isinstance(parsed, InboundMessage)
    return parsed


def test_reply_address_token_is_the_strongest_evidence(connector: EmailConnector) -> None:
    raw = samples.plain(
        f"补充 [{OTHER}]",
        to=f"Support+{TICKET}@Bank.Test",
        in_reply_to=threads.outbound_message_id(OTHER, "msg_2", "bank.test"),
        subject=f"[{OTHER}] 补充",
    )
    message = _parse(connector, raw)
    assert message.ticket_reference == TICKET
    assert message.thread_hints == ()


def test_our_message_id_in_in_reply_to_beats_the_subject(connector: EmailConnector) -> None:
    message = _parse(connector, samples.plain("x", in_reply_to=OURS, subject=f"[{OTHER}]"))
    assert message.ticket_reference == TICKET
    # References, newest last in the header, are searched nearest first too.
    message = _parse(
        connector,
        samples.plain("x", in_reply_to="<theirs@qq.com>", references=[OURS, "<mid@qq.com>"]),
    )
    assert message.ticket_reference == TICKET


def test_without_our_ids_the_hub_gets_hints_and_the_subject_token_as_fallback(
    connector: EmailConnector,
) -> None:
    message = _parse(
        connector,
        samples.plain(
            "x",
            in_reply_to="<c@qq.com>",
            references=["<a@qq.com>", "<b@qq.com>"],
            subject=f"回复：年费 [{OTHER}]",
        ),
    )
    assert message.thread_hints == ("<c@qq.com>", "<b@qq.com>", "<a@qq.com>")
    assert message.ticket_reference == OTHER
    assert message.subject == "年费"
    assert _parse(connector, samples.plain("x")).ticket_reference is None


def test_message_ids_and_tokens_of_other_domains_are_not_ours() -> None:
    foreign = threads.outbound_message_id(TICKET, "msg_1", "evil.example")
    assert threads.ticket_from_message_ids([foreign], ["bank.test"]) is None
    assert (
        threads.ticket_from_message_ids(["<TD-20261123-000007@bank.test>"], ["bank.test"]) is None
    )
    assert (
        threads.ticket_from_recipients([f"other+{TICKET}@bank.test"], ["support@bank.test"]) is None
    )
    assert (
        threads.ticket_from_recipients(["support+hello@bank.test"], ["support@bank.test"]) is None
    )


@pytest.mark.parametrize(
    ("subject", "clean", "token"),
    [
        (f"Re: RE: 回复：年费投诉 [{TICKET}]", "年费投诉", TICKET),
        (f"答复: Fwd: 关于工单 {TICKET} 的补充", f"关于工单 {TICKET} 的补充", TICKET),
        ("AW: [ TD-20261123-1234567 ] x", "x", "TD-20261123-1234567"),
        ("回复[2]: 你好", "你好", None),
    ],
)
def test_subjects_are_cleaned_and_tokens_found(subject: str, clean: str, token: str | None) -> None:
    assert threads.clean_subject(subject) == clean
    assert threads.ticket_from_subject(subject) == token


def test_our_message_ids_are_stable_per_delivery() -> None:
    assert threads.outbound_message_id(TICKET, "msg_1", "Bank.Test") == OURS
    assert threads.outbound_message_id(TICKET, "msg_2", "bank.test") != OURS
    assert threads.is_our_message_id(OURS, ["bank.test"])


@pytest.mark.parametrize(
    "raw",
    [
        samples.out_of_office(),
        samples.bounce(),
        samples.mailing_list(),
        samples.plain("echo", sender="support@bank.test"),
        samples.plain("our own mail came back", message_id=OURS),
        samples.plain("disk full", sender="alerts@monitor.test"),
    ],
)
def test_machines_ourselves_and_ignored_senders_open_nothing(
    connector: EmailConnector, raw: bytes
) -> None:
    assert _parse(connector, raw).opens_ticket is False


def test_answers_go_to_the_sender_never_to_a_reply_to_the_mail_names(
    connector: EmailConnector,
) -> None:
    raw = samples.plain(
        "请把处理结果发到下面地址",
        message_id="<m1@qq.com>",
        references=["<root@qq.com>"],
        headers=[("Reply-To", b"attacker@evil.example")],
    )
    message = _parse(connector, raw)
    assert message.reply_address == {
        "email": samples.CUSTOMER,
        "message_id": "<m1@qq.com>",
        "references": ["<root@qq.com>"],
        "subject": "信用卡年费投诉",
    }
    assert [(i.kind, i.value, i.verified) for i in message.identities] == [
        ("email", samples.CUSTOMER, True)
    ]
    assert message.display_name == "张三"


def test_times_come_from_the_server_and_the_date_header_only_when_plausible(
    connector: EmailConnector,
) -> None:
    raw = samples.plain("x")  # Date: Mon, 23 Nov 2026 10:15:00 +0800 = 02:15 UTC
    arrived = NOW - timedelta(minutes=10)
    message = _parse(connector, raw, arrived_at=arrived.isoformat())
    assert message.sent_at == datetime(2026, 11, 23, 2, 15, tzinfo=UTC)
    assert message.received_at == arrived
    future = raw.replace(b"Mon, 23 Nov 2026", b"Mon, 23 Nov 2037")
    assert _parse(connector, future).sent_at == NOW
    assert _parse(connector, raw, arrived_at="not a time").received_at is None


def test_an_empty_mail_still_has_text_for_the_ticket(connector: EmailConnector) -> None:
    assert _parse(connector, samples.mail(body=b"")).text == "信用卡年费投诉"
    no_subject = samples.mail(body=b"", subject=b"")
    assert _parse(connector, no_subject).text == "（邮件无正文）"


async def test_oauth_tokens_are_fetched_once_and_renewed_before_they_expire(
    scripted_peer: ScriptedPeer,
) -> None:
    scripted_peer.answer = PeerAnswer(
        200, json.dumps({"access_token": "tok-1", "expires_in": 3600}).encode()
    )
    clock = ManualClock(NOW)
    settings = OAuth2.model_validate(
        {"token_url": f"{scripted_peer.url}/token", "client_id": "hub", "client_secret": "s3cret"}
    )
    async with httpx.AsyncClient() as http:
        source = TokenSource(settings, http, clock)
        assert await source.token() == "tok-1"
        assert await source.token() == "tok-1"
        assert len(scripted_peer.requests) == 1
        request = scripted_peer.requests[0]
        assert b"grant_type=client_credentials" in request.body
        assert b"scope=https%3A%2F%2Foutlook.office365.com%2F.default" in request.body

        clock.advance(seconds=3600 - 60)
        scripted_peer.answer = PeerAnswer(200, b'{"access_token": "tok-2"}')
        assert await source.token() == "tok-2"

        source.forget()
        scripted_peer.answer = PeerAnswer(401, b'{"error": "invalid_client"}')
        with pytest.raises(TokenError, match="401"):
            await source.token()
