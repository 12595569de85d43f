"""The push endpoint as WeChat's servers (and attackers) call it: verification, the three
modes, signatures, hostile XML, duplicates. In-process; tests/e2e/test_wechat.py repeats the
essentials over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from connectors.wechat.outbound import seen_key
from hub.testing.standins.wechat_push import WeChatPusher
from tests.wechat_pushes import (
    AES_KEY,
    APP_ID,
    BOMB,
    EXTERNAL,
    OPENID,
    ORIGINAL_ID,
    REMOTE_DTD,
    TOKEN,
    Wired,
    cards_pusher,
    retail_pusher,
    wired,
)
from ticket_core import ManualClock

RETAIL = "/channels/wechat/retail"
CARDS = "/channels/wechat/cards"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
async def hub_side(clock: ManualClock) -> AsyncIterator[Wired]:
    # Nothing here calls WeChat's API: a closed port is fine.
    async with wired("http://127.0.0.1:9", clock) as w:
        yield w


# --- server verification -------------------------------------------------------------------


async def test_verification_get_with_good_signature_echoes_echostr(
    hub_side: Wired, clock: ManualClock
) -> None:
    params = retail_pusher().verification("7394865123987", clock.now())
    response = await hub_side.client.get(RETAIL, params=params)
    assert response.status_code == 200
    assert response.text == "7394865123987"


async def test_verification_get_with_bad_signature_is_refused_401(
    hub_side: Wired, clock: ManualClock
) -> None:
    params = WeChatPusher("wrongToken", APP_ID).verification("7394865123987", clock.now())
    response = await hub_side.client.get(RETAIL, params=params)
    assert response.status_code == 401
    assert "7394865123987" not in response.text


async def test_verification_for_an_unknown_account_is_404(
    hub_side: Wired, clock: ManualClock
) -> None:
    params = retail_pusher().verification("1", clock.now())
    assert (await hub_side.client.get("/channels/wechat/nobody", params=params)).status_code == 404


# --- the three modes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "pusher", "mode"),
    [
        (RETAIL, retail_pusher, "safe"),
        (CARDS, cards_pusher, "compatible"),
        (CARDS, cards_pusher, "plaintext"),
    ],
)
async def test_each_mode_is_answered_success_and_stores_the_plain_message(
    hub_side: Wired, clock: ManualClock, path: str, pusher: type[WeChatPusher], mode: str
) -> None:
    wechat = pusher()
    message = wechat.text(OPENID, "我要投诉理财经理", 7000000000000000001, clock.now())
    response = await wechat.push(hub_side.client, path, message, mode, clock.now())  # type: ignore[arg-type]
    assert (response.status_code, response.text) == (200, "success")
    [envelope] = hub_side.ingest.envelopes
    assert envelope.body == message
    assert envelope.metadata["encrypted"] is (mode != "plaintext")
    assert envelope.external_id == f"{path.rsplit('/', 1)[1]}:7000000000000000001"


async def test_plaintext_push_to_a_safe_mode_account_is_refused(
    hub_side: Wired, clock: ManualClock
) -> None:
    wechat = retail_pusher()
    message = wechat.text(OPENID, "hi", 1, clock.now())
    response = await wechat.push(hub_side.client, RETAIL, message, "plaintext", clock.now())
    assert response.status_code == 403
    assert not hub_side.ingest.envelopes


async def test_wrong_msg_signature_is_refused_401(hub_side: Wired, clock: ManualClock) -> None:
    wechat = retail_pusher()
    signed = wechat.sign(wechat.text(OPENID, "hi", 1, clock.now()), "safe", clock.now())
    params = {**signed.params, "msg_signature": "0" * 40}
    response = await hub_side.client.post(RETAIL, params=params, content=signed.body)
    assert response.status_code == 401
    assert "signature" in response.json()["detail"]
    assert not hub_side.ingest.envelopes


async def test_ciphertext_swapped_under_a_valid_signature_is_refused(
    hub_side: Wired, clock: ManualClock
) -> None:
    wechat = retail_pusher()
    signed = wechat.sign(wechat.text(OPENID, "hi", 1, clock.now()), "safe", clock.now())
    forged = wechat.encrypt(wechat.text(OPENID, "转账给我", 2, clock.now()))
    body = signed.body.decode().split("<Encrypt>")[0] + f"<Encrypt>{forged}</Encrypt></xml>"
    response = await hub_side.client.post(RETAIL, params=signed.params, content=body.encode())
    assert response.status_code == 401
    assert not hub_side.ingest.envelopes


async def test_push_signed_with_another_token_is_refused_401(
    hub_side: Wired, clock: ManualClock
) -> None:
    impostor = WeChatPusher("notTheToken", APP_ID, AES_KEY, ORIGINAL_ID)
    message = impostor.text(OPENID, "hi", 1, clock.now())
    response = await impostor.push(hub_side.client, RETAIL, message, "safe", clock.now())
    assert response.status_code == 401
    assert not hub_side.ingest.envelopes


async def test_stale_timestamp_is_refused_401(hub_side: Wired, clock: ManualClock) -> None:
    wechat = retail_pusher()
    old = clock.now() - timedelta(minutes=10)
    response = await wechat.push(
        hub_side.client, RETAIL, wechat.text(OPENID, "hi", 1, old), "safe", old
    )
    assert response.status_code == 401
    assert "too old" in response.json()["detail"]


async def test_push_for_another_original_id_is_refused(hub_side: Wired, clock: ManualClock) -> None:
    wechat = WeChatPusher(TOKEN, APP_ID, AES_KEY, "gh_someoneelse1")
    message = wechat.text(OPENID, "hi", 1, clock.now())
    response = await wechat.push(hub_side.client, RETAIL, message, "safe", clock.now())
    assert response.status_code == 400
    assert not hub_side.ingest.envelopes


# --- retries ---------------------------------------------------------------------------------


async def test_wechat_retries_of_a_message_store_one_envelope(
    hub_side: Wired, clock: ManualClock
) -> None:
    wechat = retail_pusher()
    message = wechat.text(OPENID, "卡被吞了", 7100000000000000001, clock.now())
    answers = []
    for _ in range(4):  # the first push and WeChat's three retries, each freshly signed
        response = await wechat.push(hub_side.client, RETAIL, message, "safe", clock.now())
        answers.append((response.status_code, response.text))
        clock.advance(seconds=5)
    assert answers == [(200, "success")] * 4
    assert len(hub_side.ingest.envelopes) == 1


async def test_retried_event_is_keyed_by_sender_time_and_event(
    hub_side: Wired, clock: ManualClock
) -> None:
    wechat = retail_pusher()
    at = clock.now()
    subscribe = wechat.event(OPENID, "subscribe", at)
    for _ in range(3):
        await wechat.push(hub_side.client, RETAIL, subscribe, "safe", clock.now())
    await wechat.push(
        hub_side.client, RETAIL, wechat.event(OPENID, "CLICK", at, "MENU_BALANCE"), "safe", at
    )
    ids = [e.external_id for e in hub_side.ingest.envelopes]
    assert ids == [
        f"retail:{OPENID}:{int(at.timestamp())}:subscribe",
        f"retail:{OPENID}:{int(at.timestamp())}:CLICK",
    ]


async def test_a_push_handled_late_never_moves_the_last_interaction_back(
    hub_side: Wired, clock: ManualClock
) -> None:
    # The customer's last interaction opens WeChat's 48-hour window for replies: a push that
    # was written earlier but arrives later (a retry, another process) must not shorten it.
    wechat = retail_pusher()
    earlier, later = clock.now() - timedelta(seconds=30), clock.now()
    key = seen_key("retail", OPENID)
    second = wechat.text(OPENID, "二", 7100000000000000012, later)
    await wechat.push(hub_side.client, RETAIL, second, "safe", later)
    assert await hub_side.state.get(key) == later.isoformat()
    first = wechat.text(OPENID, "一", 7100000000000000011, earlier)
    await wechat.push(hub_side.client, RETAIL, first, "safe", later)
    assert await hub_side.state.get(key) == later.isoformat()
    clock.advance(hours=47, minutes=59)
    assert await hub_side.state.get(key) == later.isoformat()
    clock.advance(minutes=2)  # the record lasts as long as the window it opens
    assert await hub_side.state.get(key) is None


# --- hostile input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [BOMB, EXTERNAL, REMOTE_DTD],
    ids=["entity-bomb", "external-entity", "external-dtd"],
)
@pytest.mark.parametrize("where", ["outer", "inner"])
async def test_entity_tricks_are_refused_400_at_the_doctype_unexpanded(
    hub_side: Wired, clock: ManualClock, body: bytes, where: str
) -> None:
    wechat = cards_pusher()
    if where == "outer":
        signed = wechat.sign(body, "plaintext", clock.now())
        path, params, content = CARDS, signed.params, signed.body
    else:  # the same attack inside a correctly encrypted and signed push
        signed = retail_pusher().sign(body, "safe", clock.now())
        path, params, content = RETAIL, signed.params, signed.body
    response = await hub_side.client.post(path, params=params, content=content)
    assert response.status_code == 400
    assert "refused XML: DTDForbidden" in response.text  # stopped at the DOCTYPE, unexpanded
    assert not hub_side.ingest.envelopes


async def test_oversized_body_is_refused_400_without_reading_it_all(
    hub_side: Wired, clock: ManualClock
) -> None:
    wechat = cards_pusher()
    huge = b"<xml><Content>" + b"A" * (2 * 1024 * 1024) + b"</Content></xml>"
    signed = wechat.sign(huge, "plaintext", clock.now())
    response = await hub_side.client.post(CARDS, params=signed.params, content=signed.body)
    assert response.status_code == 400
    assert "larger than" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"", "empty"),
        (b"not xml at all", "well-formed"),
        (b"<xml><ToUserName>gh</ToUserName>", "well-formed"),
        (b"<root/>", "root element"),
        (b"<xml>" + b"<a>" * 20 + b"</a>" * 20 + b"</xml>", "deeper"),
        (b"<xml>" + b"<a>1</a>" * 300 + b"</xml>", "elements"),
        (b"<xml><a b='1'>x</a></xml>", "attributes"),
        (b"<xml><MsgType>text</MsgType></xml>", "ToUserName"),
    ],
)
async def test_malformed_pushes_are_refused_400_and_nothing_stored(
    hub_side: Wired, clock: ManualClock, body: bytes, problem: str
) -> None:
    signed = cards_pusher().sign(body, "plaintext", clock.now())
    response = await hub_side.client.post(CARDS, params=signed.params, content=signed.body)
    assert response.status_code == 400
    assert problem in response.json()["detail"]
    assert not hub_side.ingest.envelopes


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"MsgType": "text", "Content": "no msgid"}, "MsgId"),
        ({"MsgType": "image", "MsgId": 5}, "MediaId"),
        ({"MsgType": "event"}, "Event"),
        ({"MsgType": "text", "Content": "x", "MsgId": "12ab"}, "MsgId"),
    ],
)
async def test_pushes_missing_what_their_type_needs_are_refused(
    hub_side: Wired, clock: ManualClock, fields: dict[str, str | int], problem: str
) -> None:
    wechat = cards_pusher()
    msg_type = str(fields.pop("MsgType"))
    body = wechat.message(OPENID, msg_type, clock.now(), **fields)
    response = await wechat.push(hub_side.client, CARDS, body, "plaintext", clock.now())
    assert response.status_code == 400
    assert problem in response.json()["detail"]


async def test_nested_event_fields_as_wechat_sends_them_are_accepted(
    hub_side: Wired, clock: ManualClock
) -> None:
    wechat = cards_pusher()
    nested = (
        b"<SendPicsInfo><Count>1</Count><PicList><item><PicMd5Sum><![CDATA["
        b"1b5f7c23b5bf75682a53e7b6d163e185]]></PicMd5Sum></item></PicList></SendPicsInfo></xml>"
    )
    body = wechat.event(OPENID, "pic_sysphoto", clock.now(), "PHOTO").replace(b"</xml>", nested)
    response = await wechat.push(hub_side.client, CARDS, body, "plaintext", clock.now())
    assert (response.status_code, response.text) == (200, "success")
    [envelope] = hub_side.ingest.envelopes
    assert not hub_side.connector.parse(envelope).opens_ticket
