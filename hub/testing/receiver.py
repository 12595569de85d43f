"""A receiver of signed (Standard Webhooks) requests, as a bank's system on the other end runs.

It stands in for the app backend behind a callback URL, and for any other peer that takes
signed JSON pushes: it verifies each signature, keeps what it received (once per
``webhook-id``, as a real receiver dedupes), and can be told to fail so outages can be
rehearsed. Tests, ``make run`` and integrators trying a channel out all use it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from hub.sdk import SignatureError, verify


@dataclass
class SignedWebhookReceiver:
    secret: str
    path: str = "/callback"
    fail_with: int | None = None
    hold: asyncio.Event | None = None
    """When given, each verified POST is answered only once it is set (a slow peer)."""
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    received: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    url: str = ""

    async def _handle(self, request: web.Request) -> web.Response:
        if self.fail_with is not None:
            return web.Response(status=self.fail_with, text="stand-in told to fail")
        body = await request.read()
        try:
            msg_id = verify([self.secret], request.headers, body, self.now())
        except SignatureError as exc:
            self.refused.append(str(exc))
            return web.Response(status=401, text=str(exc))
        self.ids.append(msg_id)
        if msg_id not in {r["_webhook_id"] for r in self.received}:
            self.received.append({**json.loads(body), "_webhook_id": msg_id})
        if self.hold is not None:
            await self.hold.wait()
        return web.Response(status=200, text="ok")

    async def _head(self, _: web.Request) -> web.Response:
        return web.Response(status=200 if self.fail_with is None else self.fail_with)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application(client_max_size=2 * 1024 * 1024)
        app.router.add_post(self.path, self._handle)
        app.router.add_route("HEAD", self.path, self._head)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        sockets = site._server.sockets  # type: ignore[union-attr]
        bound = sockets[0].getsockname()[1]
        self.url = f"http://{host}:{bound}{self.path}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
