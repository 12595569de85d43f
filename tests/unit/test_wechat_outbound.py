"""Messages to WeChat customers against the WeChat API stand-in on loopback: the 48-hour
window, template fallback, undeliverable, error codes, and the shared access token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest

from connectors.wechat.outbound import fit_value, seen_key, split_text
from hub.sdk import DeliveryResult, DeliveryStatus, MemoryState, OutboundMessage
from hub.testing.standins.wechat_api import WeChatApiStandIn
from tests.wechat_pushes import OPENID, Wired, retail_pusher, wechat_api, wechat_config, wired
from ticket_core import ManualClock

CUSTOM = "/cgi-bin/message/custom/send"
TEMPLATE = "/cgi-bin/message/template/send"


@dataclass
class Setup:
    api: WeChatApiStandIn
    w: Wired
    clock: ManualClock


@pytest.fixture
async def s() -> AsyncIterator[Setup]:
    clock = ManualClock(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))
    async with wechat_api(clock) as api, wired(api.url, clock) as w:
        yield Setup(api, w, clock)


def _message(
    clock: ManualClock,
    *,
    account: str = "retail",
    wrote_at: datetime | None = None,
    text: str = "您的投诉已受理，工单号 TD-20261123-000001。",
    purpose: str = "acknowledgement",
    key: str = "msg_0001",
) -> OutboundMessage:
    written = wrote_at if wrote_at is not None else clock.now()
    return OutboundMessage(
        channel="wechat",
        idempotency_key=key,
        ticket_number="TD-20261123-000001",
        recipient={"account": account, "openid": OPENID, "last_inbound_at": written.isoformat()},
        text=text,
        purpose=purpose,
        created_at=clock.now(),
    )


async def _send(s: Setup, message: OutboundMessage) -> DeliveryResult:
    return await s.w.connector.send(message)


# --- the window ----------------------------------------------------------------------------


async def test_within_48_hours_the_text_goes_as_a_customer_service_message(s: Setup) -> None:
    result = await _send(s, _message(s.clock))
    assert result.status == DeliveryStatus.delivered
    [sent] = s.api.delivered()
    assert sent.kind == "custom"
    assert sent.payload == {
        "touser": OPENID,
        "msgtype": "text",
        "text": {"content": "您的投诉已受理，工单号 TD-20261123-000001。"},
    }


async def test_after_48_hours_a_template_message_goes_instead(s: Setup) -> None:
    wrote = s.clock.now()
    s.clock.advance(hours=49)
    result = await _send(s, _message(s.clock, wrote_at=wrote, purpose="reply", text="已为您退款"))
    assert result.status == DeliveryStatus.delivered
    assert result.peer_reference and result.peer_reference.startswith("template:")
    [sent] = s.api.delivered()
    assert sent.kind == "template"
    assert sent.payload["template_id"] == "tpl-ticket-update"
    assert sent.payload["client_msg_id"] == "msg_0001"
    assert sent.payload["url"] == "https://m.bank.example/tickets/TD-20261123-000001"
    assert sent.payload["data"] == {
        "character_string1": {"value": "TD-20261123-000001"},
        "thing2": {"value": "已为您退款"},
        "phrase3": {"value": "客服回复"},
        "time4": {"value": "2026-11-25 18:00"},
    }


async def test_a_later_interaction_elsewhere_keeps_the_window_open(s: Setup) -> None:
    """The ticket's last message is three days old, but the customer clicked a menu (or wrote
    on another ticket) an hour ago: WeChat allows a customer-service message."""
    old = s.clock.now()
    s.clock.advance(days=3)
    await s.w.state.put(
        seen_key("retail", OPENID), (s.clock.now() - timedelta(hours=1)).isoformat()
    )
    result = await _send(s, _message(s.clock, wrote_at=old))
    assert result.status == DeliveryStatus.delivered
    assert [d.kind for d in s.api.delivered()] == ["custom"]


async def test_wechat_saying_the_window_closed_falls_back_to_the_template(s: Setup) -> None:
    s.api.fail(CUSTOM, 45015, errmsg="response out of time limit")
    result = await _send(s, _message(s.clock))
    assert result.status == DeliveryStatus.delivered
    assert [d.kind for d in s.api.delivered()] == ["template"]


async def test_custom_quota_used_up_falls_back_to_the_template(s: Setup) -> None:
    s.api.fail(CUSTOM, 45047)
    assert (await _send(s, _message(s.clock))).status == DeliveryStatus.delivered
    assert [d.kind for d in s.api.delivered()] == ["template"]


async def test_outside_the_window_without_a_template_is_undeliverable_with_the_reason(
    s: Setup,
) -> None:
    wrote = s.clock.now()
    s.clock.advance(hours=60)
    result = await _send(s, _message(s.clock, account="cards", wrote_at=wrote))
    assert result.status == DeliveryStatus.give_up
    assert "undeliverable" in result.reason
    assert "48-hour" in result.reason and "no template" in result.reason
    assert s.api.delivered() == []


async def test_template_send_is_idempotent_by_client_msg_id(s: Setup) -> None:
    wrote = s.clock.now()
    s.clock.advance(hours=49)
    first = await _send(s, _message(s.clock, wrote_at=wrote, key="msg_same"))
    again = await _send(s, _message(s.clock, wrote_at=wrote, key="msg_same"))
    assert first.peer_reference == again.peer_reference
    assert len(s.api.delivered("template")) == 1


# --- error codes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("errcode", "status", "retry_after"),
    [
        (-1, DeliveryStatus.retry, 5.0),
        (45009, DeliveryStatus.retry, None),
        (45011, DeliveryStatus.retry, 60.0),
        (43004, DeliveryStatus.give_up, None),
        (40003, DeliveryStatus.give_up, None),
        (48001, DeliveryStatus.give_up, None),
        (99999, DeliveryStatus.give_up, None),
    ],
)
async def test_wechat_error_codes_map_to_retry_or_give_up_keeping_the_code(
    s: Setup, errcode: int, status: DeliveryStatus, retry_after: float | None
) -> None:
    s.api.fail(CUSTOM, errcode, errmsg="as scripted rid: 1234-abcd")
    result = await _send(s, _message(s.clock))
    assert result.status == status
    assert f"WeChat {errcode}" in result.reason
    assert "rid:" not in result.reason
    if errcode == 45009:  # the daily quota resets at midnight, Beijing time
        assert result.retry_after == pytest.approx(
            (datetime(2026, 11, 23, 16, 0, tzinfo=UTC) - s.clock.now()).total_seconds() + 60
        )
    elif retry_after is not None:
        assert result.retry_after == retry_after


async def test_http_errors_from_wechat_are_retried_or_given_up(s: Setup) -> None:
    s.api.fail(CUSTOM, -1, http_status=502)
    assert (await _send(s, _message(s.clock))).status == DeliveryStatus.retry
    s.api.fail(CUSTOM, 0, http_status=404)
    assert (await _send(s, _message(s.clock))).status == DeliveryStatus.give_up


async def test_recipient_without_openid_is_given_up(s: Setup) -> None:
    result = await _send(s, replace(_message(s.clock), recipient={"user_id": "u-1"}))
    assert result.status == DeliveryStatus.give_up
    assert "openid" in result.reason


# --- the access token ----------------------------------------------------------------------


async def test_token_is_fetched_once_and_reused(s: Setup) -> None:
    for n in range(3):
        await _send(s, _message(s.clock, key=f"msg_{n}"))
    assert s.api.calls.token_fetches == 1
    assert len(s.api.delivered()) == 3


async def test_token_refresh_on_40001_and_the_message_is_not_lost(s: Setup) -> None:
    await _send(s, _message(s.clock, key="msg_a"))
    s.api.fail(CUSTOM, 40001, errmsg="invalid credential")
    result = await _send(s, _message(s.clock, key="msg_b"))
    assert result.status == DeliveryStatus.delivered
    assert len(s.api.delivered()) == 2


async def test_token_refresh_on_42001_when_wechat_expires_it_early(s: Setup) -> None:
    await _send(s, _message(s.clock, key="msg_a"))
    s.api.expire_tokens()
    result = await _send(s, _message(s.clock, key="msg_b"))
    assert result.status == DeliveryStatus.delivered
    assert s.api.calls.token_fetches == 2
    assert s.api.calls.forced_refreshes == 0
    assert len(s.api.delivered()) == 2


async def test_a_token_wechat_keeps_refusing_is_force_refreshed_once(s: Setup) -> None:
    """Normal mode returns the very token WeChat refused (40001 for a token that is, say,
    leaked and revoked): only then force mode, and only one process does it."""
    await _send(s, _message(s.clock, key="msg_a"))
    s.api.fail(CUSTOM, 40001)
    first = await _send(s, _message(s.clock, key="msg_b"))
    assert first.status == DeliveryStatus.delivered
    assert s.api.calls.forced_refreshes == 1


async def test_token_is_refreshed_before_it_expires(s: Setup) -> None:
    await _send(s, _message(s.clock, key="msg_a"))
    s.clock.advance(seconds=7200 - 240)  # inside the last five minutes
    await _send(s, _message(s.clock, key="msg_b", wrote_at=s.clock.now()))
    assert s.api.calls.token_fetches == 2
    assert s.api.calls.forced_refreshes == 0


async def test_two_processes_share_one_token(s: Setup) -> None:
    async with wired(s.api.url, s.clock, state=s.w.state) as second:
        await _send(s, _message(s.clock, key="msg_a"))
        await second.connector.send(_message(s.clock, key="msg_b"))
    assert s.api.calls.token_fetches == 1


async def test_wrong_app_secret_is_given_up_naming_it(s: Setup) -> None:
    accounts = wechat_config(s.api.url)["accounts"]
    accounts["retail"]["app_secret"] = "wrong"
    async with wired(s.api.url, s.clock, state=MemoryState(s.clock.now), accounts=accounts) as w:
        result = await w.connector.send(_message(s.clock))
    assert result.status == DeliveryStatus.give_up
    assert "40125" in result.reason and "AppSecret" in result.reason


async def test_sends_beyond_the_rate_limit_are_retried_shortly(s: Setup) -> None:
    async with wired(s.api.url, s.clock, rate_limit_per_second=2.0) as w:
        results = [await w.connector.send(_message(s.clock, key=f"m{n}")) for n in range(3)]
    assert [r.status for r in results] == [DeliveryStatus.delivered] * 2 + [DeliveryStatus.retry]
    assert results[2].retry_after == pytest.approx(0.5)


# --- long texts and template values --------------------------------------------------------


async def test_a_long_reply_goes_in_parts(s: Setup) -> None:
    text = "\n".join(f"第{n}条说明：" + "详" * 300 for n in range(10))
    assert (await _send(s, _message(s.clock, text=text))).status == DeliveryStatus.delivered
    parts = [d.payload["text"]["content"] for d in s.api.delivered()]
    assert len(parts) == 3
    assert all(len(p.encode()) <= 2000 for p in parts)
    assert parts[-1].endswith("…")


def test_split_text_keeps_short_text_whole_and_cuts_at_line_ends() -> None:
    assert split_text("您好", 2000, 3) == ["您好"]
    lines = "一" * 500 + "\n" + "二" * 500
    assert split_text(lines, 2000, 3) == ["一" * 500, "二" * 500]


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        (
            "thing2",
            "您的投诉已有处理结果，请点击查看详情并对本次服务评价",
            "您的投诉已有处理结果，请点击查看详情并…",
        ),
        ("phrase3", "处理进展更新", "处理进展…"),
        ("character_string1", "TD-20261123-000001 号", "TD-20261123-000001 "),
        ("keyword1", "短", "短"),
    ],
)
def test_template_values_are_cut_to_wechat_limits(key: str, value: str, expected: str) -> None:
    assert fit_value(key, value) == expected


async def test_only_interactions_wechat_counts_reopen_the_window(s: Setup) -> None:
    wrote = s.clock.now()
    s.clock.advance(hours=50)
    wechat = retail_pusher()
    for event, key in [("VIEW", "https://m.bank.example/"), ("unsubscribe", None)]:
        push = wechat.event(OPENID, event, s.clock.now(), key)
        await wechat.push(s.w.client, "/channels/wechat/retail", push, "safe", s.clock.now())
    await _send(s, _message(s.clock, wrote_at=wrote, key="m1"))
    click = wechat.event(OPENID, "CLICK", s.clock.now(), "MENU_BALANCE")
    await wechat.push(s.w.client, "/channels/wechat/retail", click, "safe", s.clock.now())
    await _send(s, _message(s.clock, wrote_at=wrote, key="m2"))
    assert [d.kind for d in s.api.delivered()] == ["template", "custom"]
