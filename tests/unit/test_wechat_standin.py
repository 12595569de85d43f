"""The WeChat API stand-in behaves as WeChat documents its API, since tests and ``make run``
trust it to: stable tokens, the 48-hour window, template dedupe, media errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from hub.testing.standins.wechat_api import WeChatApiStandIn
from tests.wechat_pushes import APP_ID, APP_SECRET, OPENID, wechat_api
from ticket_core import ManualClock

CREDENTIALS = {"grant_type": "client_credential", "appid": APP_ID, "secret": APP_SECRET}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))


@pytest.fixture
async def http(clock: ManualClock) -> AsyncIterator[tuple[WeChatApiStandIn, httpx.AsyncClient]]:
    async with wechat_api(clock) as stand_in, httpx.AsyncClient(base_url=stand_in.url) as client:
        yield stand_in, client


async def _token(client: httpx.AsyncClient, force: bool = False) -> dict[str, object]:
    response = await client.post(
        "/cgi-bin/stable_token", json={**CREDENTIALS, "force_refresh": force}
    )
    return response.json()


async def test_normal_mode_returns_the_same_token_until_its_last_five_minutes(
    http: tuple[WeChatApiStandIn, httpx.AsyncClient], clock: ManualClock
) -> None:
    _, client = http
    first = await _token(client)
    clock.advance(minutes=60)
    assert (await _token(client))["access_token"] == first["access_token"]
    clock.advance(minutes=56)
    renewed = await _token(client)
    assert renewed["access_token"] != first["access_token"]
    # Both are honoured until the old one expires.
    for token in (first["access_token"], renewed["access_token"]):
        answer = await client.get("/cgi-bin/get_api_domain_ip", params={"access_token": token})
        assert "dns" in answer.json()


async def test_force_refresh_invalidates_the_previous_token(
    http: tuple[WeChatApiStandIn, httpx.AsyncClient],
) -> None:
    _, client = http
    old = (await _token(client))["access_token"]
    new = (await _token(client, force=True))["access_token"]
    assert new != old
    refused = await client.get("/cgi-bin/get_api_domain_ip", params={"access_token": old})
    assert refused.json()["errcode"] == 40001


async def test_custom_send_is_refused_45015_after_48_hours(
    http: tuple[WeChatApiStandIn, httpx.AsyncClient], clock: ManualClock
) -> None:
    stand_in, client = http
    stand_in.customer_wrote(OPENID, clock.now())
    clock.advance(hours=49)
    token = (await _token(client))["access_token"]
    answer = await client.post(
        "/cgi-bin/message/custom/send",
        params={"access_token": token},
        json={"touser": OPENID, "msgtype": "text", "text": {"content": "您好"}},
    )
    assert answer.json()["errcode"] == 45015
    assert stand_in.delivered() == []


async def test_template_send_drops_a_repeat_client_msg_id_and_checks_thing_length(
    http: tuple[WeChatApiStandIn, httpx.AsyncClient],
) -> None:
    stand_in, client = http
    token = (await _token(client))["access_token"]
    message = {
        "touser": OPENID,
        "template_id": "tpl",
        "client_msg_id": "msg_1",
        "data": {"thing1": {"value": "短"}},
    }
    params = {"access_token": token}
    first = await client.post("/cgi-bin/message/template/send", params=params, json=message)
    again = await client.post("/cgi-bin/message/template/send", params=params, json=message)
    assert first.json()["msgid"] == again.json()["msgid"]
    assert len(stand_in.delivered("template")) == 1
    too_long = {**message, "client_msg_id": "msg_2", "data": {"thing1": {"value": "长" * 21}}}
    refused = await client.post("/cgi-bin/message/template/send", params=params, json=too_long)
    assert refused.json()["errcode"] == 47003


async def test_unknown_media_is_a_json_error_typed_text_plain(
    http: tuple[WeChatApiStandIn, httpx.AsyncClient],
) -> None:
    _, client = http
    token = (await _token(client))["access_token"]
    answer = await client.get(
        "/cgi-bin/media/get", params={"access_token": token, "media_id": "nope"}
    )
    assert answer.headers["content-type"].startswith("text/plain")
    assert answer.json()["errcode"] == 40007


async def test_wrong_secret_and_missing_or_expired_tokens_are_refused(
    http: tuple[WeChatApiStandIn, httpx.AsyncClient],
) -> None:
    stand_in, client = http
    wrong = await client.post("/cgi-bin/stable_token", json={**CREDENTIALS, "secret": "x"})
    assert wrong.json()["errcode"] == 40125
    missing = await client.get("/cgi-bin/get_api_domain_ip")
    assert missing.json()["errcode"] == 41001
    token = (await _token(client))["access_token"]
    stand_in.expire_tokens()
    expired = await client.get("/cgi-bin/get_api_domain_ip", params={"access_token": token})
    assert expired.json()["errcode"] == 42001
