"""The part every context-provider stand-in shares: signed JSON in, and scriptable trouble.

A bank's CRM or anti-fraud adapter is down for maintenance, slow at month end, or answers
something odd after a bad deploy. A stand-in can be told to be each of those, over HTTP while
it runs or from a test, so the hub's behaviour in each case can be rehearsed:

=========  ==============================================================================
mode       answer
=========  ==============================================================================
ok         the scripted answer (the subclass's directory, or a fixed answer)
down       503 at once, as a gateway in front of a stopped service
slow       the answer after ``delay`` seconds
hang       nothing until ``release()`` (or a change of mode): a request that never ends
refuse     403, as a gateway that no longer accepts the hub's credentials
garbage    200 with an HTML page, as a misrouted proxy
=========  ==============================================================================

Every request is checked as the contract says (Standard Webhooks signature, the bearer
token when one is configured); ``calls`` counts every request that arrived, checked or not,
so a test can prove when the hub did not call at all.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from aiohttp import web

from hub.sdk import SignatureError, verify

Mode = Literal["ok", "down", "slow", "hang", "refuse", "garbage"]
MODES: tuple[Mode, ...] = ("ok", "down", "slow", "hang", "refuse", "garbage")
MAX_BODY = 256 * 1024


@dataclass
class ScriptableStandIn(ABC):
    secret: str
    bearer_token: str | None = None
    mode: Mode = "ok"
    delay: float = 1.0
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    fixed: tuple[int, bytes, str] | None = None
    """A raw answer (status, body, content type) for every valid request: hostile answers."""
    calls: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    route: ClassVar[str]
    _runner: web.AppRunner | None = None
    _gate: asyncio.Event | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @abstractmethod
    def answer(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The status and JSON body for a valid, signed request."""

    def set_mode(self, mode: Mode, delay: float | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"mode is one of {', '.join(MODES)}")
        self.mode = mode
        if delay is not None:
            self.delay = delay
        gate = self._gate_event()
        if mode == "hang":
            gate.clear()
        else:
            gate.set()

    def release(self) -> None:
        """Let every hanging request (and any later one) through."""
        self._gate_event().set()

    async def wait_for_calls(self, count: int, timeout: float = 10.0) -> None:
        """Return once ``count`` requests have arrived in all (a test's way to know the hub
        is inside a call, without sleeping)."""
        async with asyncio.timeout(timeout):
            while self.calls < count:
                self._arrived.clear()
                await self._arrived.wait()

    def _gate_event(self) -> asyncio.Event:
        if self._gate is None:
            self._gate = asyncio.Event()
            if self.mode != "hang":
                self._gate.set()
        return self._gate

    async def _handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        self._arrived.set()
        if self.mode == "down":
            return _json({"error": "service unavailable (stand-in is down)"}, status=503)
        if self.mode == "hang":
            await self._gate_event().wait()
        elif self.mode == "slow":
            await asyncio.sleep(self.delay)
        body = await request.read()
        try:
            verify([self.secret], request.headers, body, self.now())
        except SignatureError as exc:
            return _json({"error": f"signature: {exc}"}, status=401)
        expected = f"Bearer {self.bearer_token}" if self.bearer_token is not None else None
        if expected is not None and request.headers.get("authorization") != expected:
            return _json({"error": "bearer token missing or wrong"}, status=401)
        try:
            payload = json.loads(body)
        except ValueError:
            return _json({"error": "body is not JSON"}, status=400)
        if not isinstance(payload, dict):
            return _json({"error": "body is not a JSON object"}, status=400)
        if self.mode == "refuse":
            return _json({"error": "forbidden (stand-in told to refuse)"}, status=403)
        if self.mode == "garbage":
            return web.Response(
                status=200, text="<html><body>Gateway login</body></html>", content_type="text/html"
            )
        self.requests.append(payload)
        if self.fixed is not None:
            status, raw, media = self.fixed
            return web.Response(status=status, body=raw, headers={"content-type": media})
        status, answer = self.answer(payload)
        return _json(answer, status=status)

    async def _health(self, _: web.Request) -> web.Response:
        if self.mode in ("down", "refuse"):
            return _json({"ok": False, "mode": self.mode}, status=503)
        return _json({"ok": True, "mode": self.mode})

    async def _control(self, request: web.Request) -> web.Response:
        try:
            wanted = await request.json()
            self.set_mode(wanted.get("mode"), wanted.get("delay"))
        except (ValueError, AttributeError, TypeError) as exc:
            return _json({"error": str(exc) or 'send {"mode": ...}'}, status=400)
        return _json({"mode": self.mode, "delay": self.delay})

    async def _requests(self, _: web.Request) -> web.Response:
        return _json({"mode": self.mode, "calls": self.calls, "requests": self.requests})

    def extra_routes(self, app: web.Application) -> None:  # noqa: B027 (optional hook)
        """Subclasses add their own control routes here."""

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._gate_event()
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post(self.route, self._handle)
        app.router.add_get("/health", self._health)
        app.router.add_post("/_control", self._control)
        app.router.add_get("/_control/requests", self._requests)
        self.extra_routes(app)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://{host}:{bound}"
        return self.url

    async def stop(self) -> None:
        self.release()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def _json(payload: dict[str, Any], status: int = 200) -> web.Response:
    """JSON in UTF-8, as a Chinese bank's systems write it (not \\u escapes)."""
    return web.json_response(
        payload, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False)
    )


@dataclass(frozen=True, slots=True)
class CommandLine:
    """How ``python -m hub.testing.standins.<name>`` starts one provider's stand-in."""

    module: str
    what: str
    description: str
    port: int
    make: Callable[..., ScriptableStandIn]
    seed: Callable[[Any], None]
    no_demo: str

    def main(self, argv: Sequence[str] | None = None) -> None:
        parser = argparse.ArgumentParser(
            prog=f"python -m hub.testing.standins.{self.module}", description=self.description
        )
        parser.add_argument("--port", type=int, default=self.port)
        parser.add_argument("--secret", required=True, help="whsec_ secret the hub signs with")
        parser.add_argument("--token", default=None, help="bearer token to require, if any")
        parser.add_argument("--mode", choices=MODES, default="ok")
        parser.add_argument("--delay", type=float, default=1.0, help="seconds, in mode slow")
        parser.add_argument("--no-demo", action="store_true", help=self.no_demo)
        args = parser.parse_args(argv)

        async def serve() -> None:
            stand_in = self.make(secret=args.secret, bearer_token=args.token, delay=args.delay)
            stand_in.set_mode(args.mode)
            if not args.no_demo:
                self.seed(stand_in)
            await run_until_cancelled(stand_in, args.port, self.what)

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve())


async def run_until_cancelled(stand_in: ScriptableStandIn, port: int, what: str) -> None:
    url = await stand_in.start(port=port)
    print(f"{what} stand-in at {url} (mode {stand_in.mode}); POST /_control to change", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await stand_in.stop()
