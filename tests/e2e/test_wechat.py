"""The WeChat channel end to end over real HTTP, on SQLite and PostgreSQL: pushes signed and
encrypted the way WeChat's servers do (and retried the way they do), the hub on a loopback
port, and a stand-in of WeChat's API on another that the connector calls."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlmodel import func, select

from hub.auth import Role
from hub.runtime import Hub
from hub.settings import Settings
from hub.store import Envelope, EnvelopeStatus, OutboxRow
from hub.testing.standins.wechat_api import WeChatApiStandIn
from tests.conftest import drain
from tests.wechat_pushes import (
    BOMB,
    EXTERNAL,
    OPENID,
    OTHER_OPENID,
    cards_pusher,
    retail_pusher,
    stand_in_accounts,
    wechat_config,
)
from ticket_core import ManualClock, Message

RETAIL = "/channels/wechat/retail"
CARDS = "/channels/wechat/cards"
MakeKey = Callable[[Role], Awaitable[dict[str, str]]]


@pytest.fixture
async def wechat_api(clock: ManualClock) -> AsyncIterator[WeChatApiStandIn]:
    stand_in = WeChatApiStandIn(stand_in_accounts(), now=clock.now)
    await stand_in.start()
    yield stand_in
    await stand_in.stop()


@pytest.fixture
def settings(database_url: str, wechat_api: WeChatApiStandIn) -> Settings:
    return Settings(
        database={"url": database_url},
        worker={"in_process": False},
        outbox={"backoff_initial": 2, "max_attempts": 4, "http_timeout": 2},
        connectors={"wechat": wechat_config(wechat_api.url)},
    )


async def _count(hub: Hub, model: type, *where: Any) -> int:
    async with hub.sessions() as session:
        query = select(func.count()).select_from(model)
        for clause in where:
            query = query.where(clause)
        return (await session.exec(query)).one()


async def _inbound(hub: Hub) -> list[Message]:
    async with hub.sessions() as session:
        query = select(Message).where(Message.direction == "in").order_by(Message.id)
        return list((await session.exec(query)).all())


async def _ticket(api: httpx.AsyncClient, make_key: MakeKey, number: str) -> dict[str, Any]:
    response = await api.get(f"/api/v1/tickets/{number}", headers=await make_key(Role.agent))
    assert response.status_code == 200
    return response.json()


async def _numbers(api: httpx.AsyncClient, make_key: MakeKey) -> list[str]:
    response = await api.get("/api/v1/tickets", headers=await make_key(Role.agent))
    return [t["number"] for t in response.json()["items"]]


async def test_message_retried_by_wechat_makes_one_ticket_and_is_acknowledged_in_wechat(
    api: httpx.AsyncClient,
    hub: Hub,
    clock: ManualClock,
    wechat_api: WeChatApiStandIn,
    make_key: MakeKey,
) -> None:
    wechat = retail_pusher()
    message = wechat.text(
        OPENID, "我要投诉，信用卡被重复扣费两次", 6900000000000000001, clock.now()
    )
    answers = []
    for attempt in range(4):  # WeChat's push and its three retries, five seconds apart
        response = await wechat.push(api, RETAIL, message, "safe", clock.now())
        answers.append((response.status_code, response.text))
        if attempt == 1:
            await drain(hub)  # a retry that lands after the ticket exists
        clock.advance(seconds=5)
    await drain(hub)
    assert answers == [(200, "success")] * 4
    assert await _count(hub, Envelope) == 1
    assert len(await _inbound(hub)) == 1

    [sent] = wechat_api.delivered()
    assert sent.kind == "custom" and sent.payload["touser"] == OPENID
    [number] = await _numbers(api, make_key)
    assert number in sent.payload["text"]["content"]
    ticket = await _ticket(api, make_key, number)
    assert (ticket["channel"], ticket["kind"], ticket["status"]) == ("wechat", "complaint", "open")
    assert [(m["direction"], m["purpose"], m["delivery_state"]) for m in ticket["messages"]] == [
        ("in", "customer", None),
        ("out", "acknowledgement", "delivered"),
    ]


async def test_server_verification_over_http(api: httpx.AsyncClient, clock: ManualClock) -> None:
    params = retail_pusher().verification("5837461234", clock.now())
    good = await api.get(RETAIL, params=params)
    assert (good.status_code, good.text) == (200, "5837461234")
    bad = await api.get(RETAIL, params={**params, "nonce": "tampered"})
    assert bad.status_code == 401


@pytest.mark.parametrize(
    ("path", "mode"), [(RETAIL, "safe"), (CARDS, "compatible"), (CARDS, "plaintext")]
)
async def test_each_mode_reaches_a_ticket(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, path: str, mode: str
) -> None:
    wechat = retail_pusher() if path == RETAIL else cards_pusher()
    message = wechat.text(OPENID, "请问信用卡分期怎么办理", 42, clock.now())
    response = await wechat.push(api, path, message, mode, clock.now())  # type: ignore[arg-type]
    assert response.text == "success"
    await drain(hub)
    [inbound] = await _inbound(hub)
    assert inbound.text == "请问信用卡分期怎么办理"


async def test_events_are_recorded_and_open_no_ticket(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, wechat_api: WeChatApiStandIn
) -> None:
    wechat = retail_pusher()
    for event, key in [
        ("subscribe", None),
        ("CLICK", "MENU_BALANCE"),
        ("VIEW", "https://m.bank.example/"),
        ("unsubscribe", None),
    ]:
        response = await wechat.push(
            api, RETAIL, wechat.event(OPENID, event, clock.now(), key), "safe", clock.now()
        )
        assert response.text == "success"
        clock.advance(seconds=1)
    await drain(hub)
    assert await _count(hub, Envelope, Envelope.status == EnvelopeStatus.processed) == 4
    assert await _inbound(hub) == []
    assert wechat_api.delivered() == []


async def test_a_follow_up_joins_the_ticket_and_a_request_menu_opens_one(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, make_key: MakeKey
) -> None:
    wechat = retail_pusher()
    await wechat.push(
        api, RETAIL, wechat.text(OPENID, "我的卡被锁了", 1, clock.now()), "safe", clock.now()
    )
    await drain(hub)  # ticket opened, acknowledgement sent
    clock.advance(minutes=3)
    await wechat.push(
        api, RETAIL, wechat.voice(OPENID, "V1", 2, clock.now(), "急用钱"), "safe", clock.now()
    )
    await wechat.push(
        api,
        RETAIL,
        wechat.event(OTHER_OPENID, "CLICK", clock.now(), "MENU_COMPLAINT"),
        "safe",
        clock.now(),
    )
    await drain(hub)
    numbers = await _numbers(api, make_key)
    assert len(numbers) == 2
    texts = {
        n: [
            m["text"]
            for m in (await _ticket(api, make_key, n))["messages"]
            if m["direction"] == "in"
        ]
        for n in numbers
    }
    assert sorted(texts.values()) == [["我的卡被锁了", "急用钱"], ["我要投诉"]]


async def test_reply_after_48_hours_goes_as_a_template_message(
    api: httpx.AsyncClient,
    hub: Hub,
    clock: ManualClock,
    wechat_api: WeChatApiStandIn,
    make_key: MakeKey,
) -> None:
    wechat = retail_pusher()
    await wechat.push(
        api, RETAIL, wechat.text(OPENID, "转账未到账", 7, clock.now()), "safe", clock.now()
    )
    wechat_api.customer_wrote(OPENID, clock.now())
    await drain(hub)
    [number] = await _numbers(api, make_key)
    clock.advance(hours=49)
    reply = await api.post(
        f"/api/v1/tickets/{number}/replies",
        json={"text": "经核查，款项已于今日到账，请查收。"},
        headers=await make_key(Role.agent),
    )
    assert reply.status_code == 202
    await drain(hub)
    assert [d.kind for d in wechat_api.delivered()] == ["custom", "template"]
    template = wechat_api.delivered("template")[0].payload
    assert template["data"]["character_string1"]["value"] == number
    assert template["data"]["thing2"]["value"] == "经核查，款项已于今日到账，请查收。"
    ticket = await _ticket(api, make_key, number)
    assert ticket["messages"][-1]["delivery_state"] == "delivered"


async def test_reply_neither_window_nor_template_allows_is_shown_as_undeliverable(
    api: httpx.AsyncClient,
    hub: Hub,
    clock: ManualClock,
    wechat_api: WeChatApiStandIn,
    make_key: MakeKey,
) -> None:
    wechat = cards_pusher()
    await wechat.push(
        api, CARDS, wechat.text(OPENID, "年费能免吗", 8, clock.now()), "compatible", clock.now()
    )
    await drain(hub)
    [number] = await _numbers(api, make_key)
    clock.advance(hours=60)
    await api.post(
        f"/api/v1/tickets/{number}/replies",
        json={"text": "可以申请减免"},
        headers=await make_key(Role.agent),
    )
    await drain(hub)
    last = (await _ticket(api, make_key, number))["messages"][-1]
    assert last["delivery_state"] == "failed"
    assert "undeliverable" in last["delivery_error"]
    assert "48-hour" in last["delivery_error"]
    assert await _count(hub, OutboxRow, OutboxRow.status == "dead") == 1
    assert [d.kind for d in wechat_api.delivered()] == ["custom"]  # only the acknowledgement


async def test_token_refresh_on_42001_loses_no_message(
    api: httpx.AsyncClient,
    hub: Hub,
    clock: ManualClock,
    wechat_api: WeChatApiStandIn,
    make_key: MakeKey,
) -> None:
    wechat = retail_pusher()
    await wechat.push(
        api, RETAIL, wechat.text(OPENID, "网银登录不了", 9, clock.now()), "safe", clock.now()
    )
    await drain(hub)
    [number] = await _numbers(api, make_key)
    wechat_api.expire_tokens()  # WeChat ends the token early: the next call gets 42001
    await api.post(
        f"/api/v1/tickets/{number}/replies",
        json={"text": "请尝试清除缓存后重新登录"},
        headers=await make_key(Role.agent),
    )
    await drain(hub)
    assert [d.payload["text"]["content"] for d in wechat_api.delivered()][-1] == (
        "请尝试清除缓存后重新登录"
    )
    assert wechat_api.calls.token_fetches == 2
    assert (await _ticket(api, make_key, number))["messages"][-1]["delivery_state"] == "delivered"


@pytest.mark.parametrize("attack", [BOMB, EXTERNAL], ids=["entity-bomb", "external-entity"])
async def test_xml_attacks_are_refused_400_over_http(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, attack: bytes
) -> None:
    signed = cards_pusher().sign(attack, "plaintext", clock.now())
    response = await api.post(CARDS, params=signed.params, content=signed.body)
    assert response.status_code == 400
    encrypted = retail_pusher().sign(attack, "safe", clock.now())
    response = await api.post(RETAIL, params=encrypted.params, content=encrypted.body)
    assert response.status_code == 400
    assert await _count(hub, Envelope) == 0


async def test_oversized_chunked_body_is_refused_400(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock
) -> None:
    signed = cards_pusher().sign(b"<xml/>", "plaintext", clock.now())

    async def endless() -> AsyncIterator[bytes]:  # no content-length: read until the limit
        yield b"<xml><Content>"
        for _ in range(64):
            yield b"A" * 16384

    response = await api.post(CARDS, params=signed.params, content=endless())
    assert response.status_code == 400
    assert await _count(hub, Envelope) == 0


async def test_image_ticket_opens_at_once_and_the_picture_follows_despite_failures(
    api: httpx.AsyncClient,
    hub: Hub,
    clock: ManualClock,
    wechat_api: WeChatApiStandIn,
    make_key: MakeKey,
) -> None:
    picture = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
    wechat_api.add_media("MEDIA_PNG", picture, "image/png")
    wechat_api.fail("/cgi-bin/media/get", -1, times=2)
    wechat = retail_pusher()
    await wechat.push(
        api, RETAIL, wechat.image(OPENID, "MEDIA_PNG", 77, clock.now()), "safe", clock.now()
    )
    await drain(hub)  # first fetch fails; the ticket is open and acknowledged regardless
    [number] = await _numbers(api, make_key)
    ticket = await _ticket(api, make_key, number)
    assert ticket["messages"][0]["text"] == "[图片]"
    assert ticket["messages"][1]["delivery_state"] == "delivered"

    for _ in range(4):  # polls every 5 s; retries after 30 s, then 60 s
        clock.advance(seconds=30)
        await drain(hub)
    assert wechat_api.calls.by_path["/cgi-bin/media/get"] == 3
    async with hub.sessions() as session:
        media = (
            await session.exec(select(Envelope).where(Envelope.external_id == "retail:77:media"))
        ).one()
    assert media.body == picture
    assert media.status == EnvelopeStatus.processed


async def test_fetched_picture_is_attached_to_its_message_on_the_ticket(
    api: httpx.AsyncClient,
    hub: Hub,
    clock: ManualClock,
    wechat_api: WeChatApiStandIn,
    make_key: MakeKey,
) -> None:
    picture = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8
    wechat_api.add_media("MEDIA_JPG", picture, "image/jpeg")
    wechat = retail_pusher()
    await wechat.push(
        api, RETAIL, wechat.image(OPENID, "MEDIA_JPG", 78, clock.now()), "safe", clock.now()
    )
    await drain(hub)
    clock.advance(seconds=5)
    await drain(hub)
    [number] = await _numbers(api, make_key)
    first = (await _ticket(api, make_key, number))["messages"][0]
    assert first["text"] == "[图片]"
    [attachment] = first["attachments"]
    assert attachment == attachment | {
        "name": "image-78.jpg",
        "content_type": "image/jpeg",
        "size": len(picture),
    }
    assert len(await _inbound(hub)) == 1


async def test_a_picture_that_cannot_be_fetched_never_blocks_its_ticket(
    api: httpx.AsyncClient,
    hub: Hub,
    clock: ManualClock,
    wechat_api: WeChatApiStandIn,
    make_key: MakeKey,
) -> None:
    wechat = retail_pusher()
    await wechat.push(
        api, RETAIL, wechat.image(OPENID, "EXPIRED_MEDIA", 79, clock.now()), "safe", clock.now()
    )
    await drain(hub)
    [number] = await _numbers(api, make_key)
    messages = (await _ticket(api, make_key, number))["messages"]
    assert [(m["direction"], m["delivery_state"]) for m in messages[:2]] == [
        ("in", None),
        ("out", "delivered"),
    ]
    async with hub.sessions() as session:
        failed = (
            await session.exec(select(Envelope).where(Envelope.external_id == "retail:79:media"))
        ).one()
    assert failed.status == EnvelopeStatus.processed
    assert "40007" in failed.meta["error"]
    [note] = [m for m in messages if m["direction"] == "note"]  # agents are told why
    assert "40007" in note["text"]
