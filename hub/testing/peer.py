"""A scripted HTTP peer: the stand-in a conformance test points a connector's outbound at.

It answers every request with whatever it was last told (a status, a body, a delay), and
records what it received, so the kit can watch how a connector reads success, rate limits,
server and client errors, and timeouts.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True, slots=True)
class PeerAnswer:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "application/json"})
    delay: float = 0.0


@dataclass(slots=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class ScriptedPeer:
    def __init__(self) -> None:
        self.answer = PeerAnswer()
        self.requests: list[ReceivedRequest] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(
            ReceivedRequest(
                request.method, request.path_qs, dict(request.headers), await request.read()
            )
        )
        answer = self.answer
        if answer.delay:
            await asyncio.sleep(answer.delay)
        return web.Response(status=answer.status, body=answer.body, headers=answer.headers)

    async def start(self) -> str:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
