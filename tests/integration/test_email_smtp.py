"""Answers by mail against a real SMTP server (the aiosmtpd stand-in): threading headers,
stable Message-IDs, TLS and login, and how every kind of answer is classified."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.email import EmailConnector
from connectors.email.sending import compose
from hub.registry import build_config
from hub.sdk import DeliveryStatus, OutboundMessage
from hub.testing import PeerAnswer
from hub.testing.server import free_port
from hub.testing.standins.smtp import SmtpStandIn
from tests.email_setup import email_config, running_connector

TICKET = "TD-20261123-000001"
CUSTOMER_MAIL = "<a1b2c3@qq.com>"


def _message(
    purpose: str = "reply",
    key: str = "msg_0001",
    recipient: dict[str, object] | None = None,
    text: str = "已为您核实，年费将原路退回。",
) -> OutboundMessage:
    return OutboundMessage(
        channel="email",
        idempotency_key=key,
        ticket_number=TICKET,
        recipient=recipient
        if recipient is not None
        else {
            "email": "zhangsan@qq.com",
            "message_id": CUSTOMER_MAIL,
            "references": ["<root@qq.com>"],
            "subject": "信用卡年费投诉",
        },
        text=text,
        purpose=purpose,
        created_at=datetime(2026, 11, 23, 10, 30, tzinfo=UTC),
    )


async def test_reply_threads_in_the_customers_client(smtp_standin: SmtpStandIn) -> None:
    config = email_config(smtp=smtp_standin, plus_addressing=True)
    async with running_connector(config) as connector:
        result = await connector.send(_message())
    assert result.status == DeliveryStatus.delivered, result.reason
    (sent,) = await smtp_standin.wait_for(1)
    mail = sent.message()
    assert sent.rcpt_tos == ("zhangsan@qq.com",)
    assert mail["In-Reply-To"] == CUSTOMER_MAIL
    assert mail["References"].split() == ["<root@qq.com>", CUSTOMER_MAIL]
    assert mail["Subject"] == f"Re: 信用卡年费投诉 [{TICKET}]"
    assert mail["Reply-To"] == f"support+{TICKET}@bank.test"
    assert mail["From"].addresses[0].display_name == "某某银行客服"
    assert mail["Message-ID"].startswith(f"<{TICKET}.") and mail["Message-ID"].endswith(
        "@bank.test>"
    )
    assert result.peer_reference == mail["Message-ID"]
    assert mail["Auto-Submitted"] is None  # an agent's answer is a person's mail
    assert mail.get_content().strip() == "已为您核实，年费将原路退回。"


async def test_retried_delivery_keeps_its_message_id(smtp_standin: SmtpStandIn) -> None:
    async with running_connector(email_config(smtp=smtp_standin)) as connector:
        await connector.send(_message(key="msg_same"))
        await connector.send(_message(key="msg_same"))
        await connector.send(_message(key="msg_other"))
    ids = [m.message()["Message-ID"] for m in await smtp_standin.wait_for(3)]
    assert ids[0] == ids[1] != ids[2]


def test_automatic_notices_say_so_and_agents_replies_do_not() -> None:
    config = build_config("email", EmailConnector, email_config())
    ack, _ = compose(config, _message(purpose="acknowledgement"))
    progress, _ = compose(config, _message(purpose="progress"))
    reply, _ = compose(config, _message(purpose="reply"))
    assert ack["Auto-Submitted"] == "auto-replied"
    assert progress["Auto-Submitted"] == "auto-generated"
    assert ack["X-Auto-Response-Suppress"] == "All"
    assert reply["Auto-Submitted"] is None
    assert ack["Reply-To"] is None  # plus addressing is off unless the server delivers it


def test_a_mail_without_subject_gets_the_fallback_subject() -> None:
    config = build_config("email", EmailConnector, email_config())
    mail, _ = compose(config, _message(recipient={"email": "zhangsan@qq.com"}))
    assert mail["Subject"] == f"您的来信 [{TICKET}]"
    assert mail["In-Reply-To"] is None


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (421, b"4.7.0 too many connections, slow down"),
        (451, b"4.3.0 greylisted, try again later"),
        (452, b"4.3.1 insufficient system storage"),
    ],
)
async def test_smtp_4xx_is_retried_with_the_code_kept(
    smtp_standin: SmtpStandIn, code: int, text: bytes
) -> None:
    smtp_standin.answer = PeerAnswer(code, text)
    async with running_connector(email_config(smtp=smtp_standin)) as connector:
        result = await connector.send(_message())
    assert result.status == DeliveryStatus.retry
    assert result.status_code == code
    assert text.decode() in result.reason


@pytest.mark.parametrize(
    ("code", "text"),
    [(550, b"5.1.1 user unknown"), (554, b"5.7.1 message rejected as spam")],
)
async def test_smtp_5xx_is_given_up_with_the_code_kept(
    smtp_standin: SmtpStandIn, code: int, text: bytes
) -> None:
    smtp_standin.answer = PeerAnswer(code, text)
    async with running_connector(email_config(smtp=smtp_standin)) as connector:
        result = await connector.send(_message())
    assert result.status == DeliveryStatus.give_up
    assert (result.status_code, result.response_excerpt) == (code, text.decode())
    assert f"{code} {text.decode()}" in result.reason


async def test_refused_recipient_is_given_up_with_the_code(smtp_standin: SmtpStandIn) -> None:
    smtp_standin.rcpt_answer = "550 5.1.1 <zhangsan@qq.com>: mailbox unavailable"
    async with running_connector(email_config(smtp=smtp_standin)) as connector:
        result = await connector.send(_message())
    assert result.status == DeliveryStatus.give_up
    assert result.status_code == 550
    assert "recipient refused" in result.reason


async def test_unreachable_and_slow_servers_are_retried(smtp_standin: SmtpStandIn) -> None:
    dead = email_config(smtp={"host": "127.0.0.1", "port": free_port(), "security": "none"})
    async with running_connector(dead) as connector:
        result = await connector.send(_message())
    assert result.status == DeliveryStatus.retry and "connection" in result.reason.lower()

    smtp_standin.answer = PeerAnswer(250, b"2.0.0 queued", delay=2.0)
    slow = email_config(smtp=smtp_standin, timeout_seconds=0.5)
    async with running_connector(slow) as connector:
        result = await connector.send(_message())
    assert result.status == DeliveryStatus.retry and "timed out" in result.reason


async def test_starttls_and_login_are_used_and_a_refused_login_is_retried() -> None:
    server = SmtpStandIn(users={"svc-tongdao": "s3cret"}, tls=True)
    await server.start()
    try:
        smtp = {
            "host": "127.0.0.1",
            "port": server.port,
            "security": "starttls",
            "username": "svc-tongdao",
            "password": "s3cret",
            "ca_file": server.ca_file,
        }
        async with running_connector(email_config(smtp=smtp)) as connector:
            result = await connector.send(_message())
            assert result.status == DeliveryStatus.delivered, result.reason
            assert (await connector.health()).ok
        (sent,) = await server.wait_for(1)
        assert sent.tls and sent.authenticated_as == "svc-tongdao"

        wrong = email_config(smtp={**smtp, "password": "wrong"})
        async with running_connector(wrong) as connector:
            result = await connector.send(_message())
            health = await connector.health()
        assert result.status == DeliveryStatus.retry
        assert result.status_code == 535 and "credentials" in result.reason
        assert not health.ok and "smtp" in health.detail

        untrusted = email_config(smtp={**smtp, "ca_file": None})
        async with running_connector(untrusted) as connector:
            result = await connector.send(_message())
        assert result.status == DeliveryStatus.retry  # an unverifiable certificate: never sent
        assert len(server.received) == 1
    finally:
        await server.stop()


async def test_nothing_is_sent_without_a_usable_recipient_or_to_ourselves(
    smtp_standin: SmtpStandIn,
) -> None:
    async with running_connector(email_config(smtp=smtp_standin)) as connector:
        missing = await connector.send(_message(recipient={"user_id": "u-1"}))
        ourselves = await connector.send(_message(recipient={"email": "support@bank.test"}))
    assert missing.status == ourselves.status == DeliveryStatus.give_up
    assert not smtp_standin.requests
