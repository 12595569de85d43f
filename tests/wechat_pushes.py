"""Two WeChat accounts as the tests configure them, WeChat's side of the wire for each, and a
connector wired in-process (in-memory envelopes and state, a manual clock) for unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from connectors.wechat import WeChatConnector
from hub.registry import build_config
from hub.sdk import ConnectorContext, MemoryState
from hub.testing import InMemoryIngest
from hub.testing.standins.wechat_api import WeChatApiStandIn
from hub.testing.standins.wechat_push import WeChatPusher
from ticket_core import ManualClock

TOKEN = "tongdaoTestToken2026"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APP_ID = "wx5823bf96d3bd56c7"
APP_SECRET = "retail-app-secret"
ORIGINAL_ID = "gh_retail0001"

OTHER_TOKEN = "creditCardToken9"
OTHER_AES_KEY = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"
OTHER_APP_ID = "wx0000cards000001"
OTHER_SECRET = "cards-app-secret"

OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
OTHER_OPENID = "oUpF8uN95zz_otherCustomer0001"

# Hostile documents: entity expansion ("billion laughs", 10^9 copies of "lol"), an external
# entity reading a local file, and a DTD fetched from the cloud metadata address.
BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">'.encode()
        for i in range(1, 10)
    )
    + b"]><xml><ToUserName>gh</ToUserName><Content>&lol9;</Content></xml>"
)
EXTERNAL = (
    b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b"<xml><ToUserName>gh</ToUserName><Content>&xxe;</Content></xml>"
)
REMOTE_DTD = b'<?xml version="1.0"?><!DOCTYPE xml SYSTEM "http://169.254.169.254/x.dtd"><xml/>'


def retail_pusher() -> WeChatPusher:
    return WeChatPusher(TOKEN, APP_ID, AES_KEY, ORIGINAL_ID)


def cards_pusher() -> WeChatPusher:
    return WeChatPusher(OTHER_TOKEN, OTHER_APP_ID, OTHER_AES_KEY, "gh_cards00001")


def wechat_config(api_url: str, **overrides: Any) -> dict[str, Any]:
    """Two accounts: ``retail`` in safe mode with templates, ``cards`` in compatible mode
    without any."""
    config: dict[str, Any] = {
        "api_base_url": api_url,
        "accounts": {
            "retail": {
                "token": TOKEN,
                "encoding_aes_key": AES_KEY,
                "app_id": APP_ID,
                "app_secret": APP_SECRET,
                "mode": "safe",
                "original_id": ORIGINAL_ID,
                "templates": {
                    "default": {
                        "template_id": "tpl-ticket-update",
                        "url": "https://m.bank.example/tickets/{ticket_number}",
                        "data": {
                            "character_string1": "{ticket_number}",
                            "thing2": "{text}",
                            "phrase3": "{purpose}",
                            "time4": "{sent_at}",
                        },
                    }
                },
                "menu_requests": {"MENU_COMPLAINT": "我要投诉"},
            },
            "cards": {
                "token": OTHER_TOKEN,
                "encoding_aes_key": OTHER_AES_KEY,
                "app_id": OTHER_APP_ID,
                "app_secret": OTHER_SECRET,
                "mode": "compatible",
            },
        },
    }
    config.update(overrides)
    return config


def stand_in_accounts() -> dict[str, str]:
    return {APP_ID: APP_SECRET, OTHER_APP_ID: OTHER_SECRET}


@dataclass
class Wired:
    """A connector with everything it was lent, and its routes behind an ASGI client."""

    connector: WeChatConnector
    ingest: InMemoryIngest
    state: MemoryState
    clock: ManualClock
    client: httpx.AsyncClient


@asynccontextmanager
async def wired(
    api_url: str, clock: ManualClock, state: MemoryState | None = None, **overrides: Any
) -> AsyncIterator[Wired]:
    """The connector in-process; pass one ``state`` to two of them to play two processes."""
    state = state if state is not None else MemoryState(clock.now)
    ingest = InMemoryIngest()
    async with httpx.AsyncClient(timeout=2) as http:
        config = build_config("wechat", WeChatConnector, wechat_config(api_url, **overrides))
        connector = WeChatConnector(
            config,
            ConnectorContext(name="wechat", ingest=ingest, http=http, clock=clock, state=state),
        )
        app = FastAPI()
        app.include_router(connector.router(), prefix="/channels/wechat")
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://hub"
        ) as client:
            yield Wired(connector, ingest, state, clock, client)


@asynccontextmanager
async def wechat_api(clock: ManualClock) -> AsyncIterator[WeChatApiStandIn]:
    stand_in = WeChatApiStandIn(stand_in_accounts(), now=clock.now)
    await stand_in.start()
    try:
        yield stand_in
    finally:
        await stand_in.stop()
