"""A local stand-in of an HTTP SMS gateway, for tests and demos of the web channel's codes.

It speaks the protocol ``connectors.web.senders.HttpSmsSender`` uses (the example gateway's):
``POST /v1/sms`` with ``Authorization: Bearer <key>`` and ``{"to", "text", "client_ref"}``,
deduplicating on ``client_ref`` as a real gateway does; ``GET /v1/health``. ``answer`` scripts
a failure (``PeerAnswer(503)``); ``sent`` keeps every accepted message in order, so a test
reads the code a customer would have read on their phone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from hub.testing.peer import PeerAnswer


@dataclass
class SmsGatewayStandIn:
    api_key: str = "sms-test-key"
    answer: PeerAnswer = field(default_factory=lambda: PeerAnswer(200, b""))
    sent: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    on_message: Callable[[dict[str, Any]], None] | None = None
    """Called with each accepted message (``make run`` prints the codes customers would read)."""
    _refs: set[str] = field(default_factory=set, init=False, repr=False)
    _runner: web.AppRunner | None = field(default=None, init=False, repr=False)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)

    async def _sms(self, request: web.Request) -> web.Response:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return web.json_response({"code": "UNAUTHORIZED"}, status=401)
        if self.answer.delay:
            await asyncio.sleep(self.answer.delay)
        if not 200 <= self.answer.status < 300:
            return web.Response(status=self.answer.status, body=self.answer.body)
        try:
            payload = await request.json()
        except ValueError:
            return web.json_response({"code": "BAD_REQUEST"}, status=400)
        to = str(payload.get("to", ""))
        if not to.lstrip("+").isdigit() or not payload.get("text"):
            return web.json_response({"code": "INVALID_NUMBER"}, status=400)
        ref = str(payload.get("client_ref", ""))
        if ref not in self._refs:
            self._refs.add(ref)
            self.sent.append(payload)
            self._arrived.set()
            if self.on_message is not None:
                self.on_message(payload)
        return web.json_response({"id": f"sms_{ref}", "status": "accepted"})

    async def _health(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    def to(self, phone: str) -> list[str]:
        """The texts accepted for ``phone``, oldest first."""
        return [str(m["text"]) for m in self.sent if m.get("to") == phone]

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        async with asyncio.timeout(timeout):
            while len(self.sent) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.sent[:count]

    async def start(self, port: int = 0) -> str:
        app = web.Application()
        app.router.add_post("/v1/sms", self._sms)
        app.router.add_get("/v1/health", self._health)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
