"""Each kind of push as the hub's worker sees it: ``parse`` on the stored envelope."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from connectors.wechat.connector import OPENID as OPENID_KIND
from hub.sdk import InboundEnvelope, InboundMessage
from normalizer import normalize
from tests.wechat_pushes import OPENID, Wired, retail_pusher, wired
from ticket_core import ManualClock

AT = datetime(2026, 11, 23, 1, 2, 3, tzinfo=UTC)


@pytest.fixture
async def w() -> AsyncIterator[Wired]:
    clock = ManualClock(AT)
    async with wired("http://127.0.0.1:9", clock) as connected:
        yield connected


async def _parsed(w: Wired, message: bytes) -> tuple[InboundEnvelope, InboundMessage]:
    before = len(w.ingest.envelopes)
    response = await retail_pusher().push(
        w.client, "/channels/wechat/retail", message, "safe", w.clock.now()
    )
    assert response.text == "success"
    envelope = w.ingest.envelopes[before]
    parsed = w.connector.parse(envelope)
    assert parsed == w.connector.parse(envelope)  # pure and repeatable
    return envelope, parsed


async def test_text_message_becomes_a_message_from_a_verified_openid(w: Wired) -> None:
    envelope, parsed = await _parsed(w, retail_pusher().text(OPENID, "我要投诉乱收费", 11, AT))
    assert parsed.text == "我要投诉乱收费"
    assert parsed.identities[0].kind == OPENID_KIND
    assert parsed.identities[0].value == OPENID and parsed.identities[0].verified
    assert parsed.sent_at == AT
    assert parsed.opens_ticket and parsed.attaches_to is None
    assert parsed.reply_address == {
        "account": "retail",
        "openid": OPENID,
        "last_inbound_at": AT.isoformat(),
    }
    incoming = normalize(envelope, parsed)
    assert incoming.kind == "complaint"
    assert incoming.identities[0].masked != OPENID


async def test_image_message_opens_a_ticket_and_its_picture_follows(w: Wired) -> None:
    _, parsed = await _parsed(w, retail_pusher().image(OPENID, "MEDIA_IMG_1", 12, AT))
    assert parsed.text == "[图片]"
    assert parsed.opens_ticket
    assert parsed.attachments == ()  # fetched after the ack: see test_wechat_media.py


async def test_voice_message_uses_the_recognition_text(w: Wired) -> None:
    _, parsed = await _parsed(
        w, retail_pusher().voice(OPENID, "MEDIA_VOICE_1", 13, AT, recognition="我的卡被冻结了")
    )
    assert parsed.text == "我的卡被冻结了"
    _, silent = await _parsed(w, retail_pusher().voice(OPENID, "MEDIA_VOICE_2", 14, AT))
    assert silent.text == "[语音]"


async def test_location_message_names_the_place_and_coordinates(w: Wired) -> None:
    _, parsed = await _parsed(
        w, retail_pusher().location(OPENID, 23.134521, 113.358803, "广州市天河区体育西路", 15, AT)
    )
    assert parsed.text == "[位置] 广州市天河区体育西路 (23.134521, 113.358803)"
    assert parsed.opens_ticket


async def test_link_message_keeps_title_description_and_url(w: Wired) -> None:
    _, parsed = await _parsed(
        w,
        retail_pusher().link(
            OPENID, "可疑短信", "收到冒充银行的短信", "https://phish.example/x", 16, AT
        ),
    )
    assert parsed.text == "[链接] 可疑短信\n收到冒充银行的短信\nhttps://phish.example/x"


@pytest.mark.parametrize(
    ("event", "key", "described"),
    [
        ("subscribe", None, "关注了公众号"),
        ("unsubscribe", None, "取消关注公众号"),
        ("CLICK", "MENU_BALANCE", "点击菜单 MENU_BALANCE"),
        ("VIEW", "https://m.bank.example/", "打开菜单链接 https://m.bank.example/"),
    ],
)
async def test_events_are_recorded_but_open_no_ticket(
    w: Wired, event: str, key: str | None, described: str
) -> None:
    _, parsed = await _parsed(w, retail_pusher().event(OPENID, event, AT, key))
    assert not parsed.opens_ticket
    assert parsed.text == f"[事件] {described}"
    assert parsed.ticket_reference is None


async def test_click_on_a_configured_request_menu_opens_a_ticket(w: Wired) -> None:
    envelope, parsed = await _parsed(
        w, retail_pusher().event(OPENID, "CLICK", AT, "MENU_COMPLAINT")
    )
    assert parsed.opens_ticket
    assert parsed.text == "我要投诉"
    assert normalize(envelope, parsed).kind == "complaint"


async def test_unknown_message_type_still_reaches_an_agent(w: Wired) -> None:
    _, parsed = await _parsed(
        w, retail_pusher().message(OPENID, "miniprogrampage", AT, Title="页面", MsgId=17)
    )
    assert parsed.text == "[miniprogrampage]"
    assert parsed.opens_ticket


async def test_a_typed_ticket_number_threads_onto_that_ticket(w: Wired) -> None:
    _, parsed = await _parsed(
        w, retail_pusher().text(OPENID, "关于 TD-20261120-000042 补充一下", 18, AT)
    )
    assert parsed.ticket_reference == "TD-20261120-000042"


async def test_a_follow_up_joins_the_ticket_the_customer_was_last_written_about(w: Wired) -> None:
    from connectors.wechat.outbound import follow_up_key

    await w.state.put(follow_up_key("retail", OPENID), "TD-20261123-000007")
    envelope, parsed = await _parsed(w, retail_pusher().text(OPENID, "还没到账", 19, AT))
    assert envelope.metadata["follow_up"] == "TD-20261123-000007"
    assert parsed.ticket_reference == "TD-20261123-000007"


async def test_an_envelope_of_an_account_no_longer_configured_fails_loudly(w: Wired) -> None:
    envelope, _ = await _parsed(w, retail_pusher().text(OPENID, "hi", 20, AT))
    orphan = InboundEnvelope(
        channel="wechat",
        external_id="gone:1",
        body=envelope.body,
        content_type="application/xml",
        received_at=AT,
        metadata={"account": "gone"},
    )
    with pytest.raises(LookupError, match="not configured"):
        w.connector.parse(orphan)
