"""A stand-in for a regulator branch's result-feedback endpoint (12378 transfers).

It is the branch's side of "Feedback to the regulator" in specs/hotline12378.md, written from
the spec rather than from our connector: it checks the Standard Webhooks signature (401 when
it does not hold), checks the record's fields (422 naming the first bad one), keeps each
record once per ``webhook-id`` (the idempotency key), and answers 200. It can be told to be
``down`` (503, as a branch's platform during maintenance) or to ``refuse`` (422 with a reason,
as a branch that rejects a decision's record), so outages and refusals can be rehearsed.

Tests start it in-process (``RegulatorStandIn``); ``make run`` and people trying the channel
out run it on its own::

    python -m hub.testing.standins.regulator --port 8002 --secret whsec_...

and steer it over HTTP while it runs (loopback only; it is a stand-in, not a service)::

    curl -X POST localhost:8002/_control -d '{"mode": "down"}'     # or "refuse", "ok"
    curl localhost:8002/_control/feedback                           # what it has received
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web

from hub.sdk import SignatureError, verify

Mode = Literal["ok", "down", "refuse"]
MODES: tuple[Mode, ...] = ("ok", "down", "refuse")
OUTCOMES = ("resolved", "partially_resolved", "rejected", "withdrawn")
SATISFACTION = ("satisfied", "unsatisfied", "unknown")
REQUIRED = ("transfer_id", "ticket_number", "decided_at", "outcome", "summary", "satisfaction")
MAX_BODY = 1024 * 1024


@dataclass(slots=True)
class Attempt:
    """One request as the stand-in answered it."""

    webhook_id: str | None
    status: int


@dataclass
class RegulatorStandIn:
    secrets: Sequence[str]
    path: str = "/feedback"
    mode: Mode = "ok"
    refuse_status: int = 422
    refuse_reason: str = "反馈内容不完整：请补充处理过程说明 (stand-in told to refuse)"
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    received: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    url: str = ""
    on_record: Callable[[dict[str, Any]], None] | None = None
    _runner: web.AppRunner | None = None

    def by_transfer(self, transfer_id: str) -> list[dict[str, Any]]:
        return [r for r in self.received if r.get("transfer_id") == transfer_id]

    async def _handle(self, request: web.Request) -> web.Response:
        webhook_id = request.headers.get("webhook-id")
        response = await self._answer(request)
        self.attempts.append(Attempt(webhook_id, response.status))
        return response

    async def _answer(self, request: web.Request) -> web.Response:
        if self.mode == "down":
            return _json({"error": "service unavailable (stand-in is down)"}, status=503)
        body = await request.read()
        try:
            msg_id = verify(list(self.secrets), request.headers, body, self.now())
        except SignatureError as exc:
            return _json({"error": f"signature: {exc}"}, status=401)
        try:
            record = json.loads(body)
        except ValueError:
            return _json({"error": "body is not JSON"}, status=400)
        problem = _problem(record)
        if problem:
            return _json({"error": problem}, status=422)
        if self.mode == "refuse":
            return _json({"error": self.refuse_reason}, status=self.refuse_status)
        if msg_id not in {r["_webhook_id"] for r in self.received}:
            self.received.append({**record, "_webhook_id": msg_id})
            if self.on_record is not None:
                self.on_record(record)
        return _json({"ok": True, "received": msg_id})

    async def _head(self, _: web.Request) -> web.Response:
        return web.Response(status=503 if self.mode == "down" else 200)

    async def _control(self, request: web.Request) -> web.Response:
        try:
            wanted = (await request.json()).get("mode")
        except (ValueError, AttributeError):
            wanted = None
        if wanted not in MODES:
            return _json({"error": f"mode is one of {', '.join(MODES)}"}, status=400)
        self.mode = wanted
        return _json({"mode": self.mode})

    async def _list(self, _: web.Request) -> web.Response:
        return _json({"mode": self.mode, "received": self.received})

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post(self.path, self._handle)
        app.router.add_route("HEAD", self.path, self._head)
        app.router.add_post("/_control", self._control)
        app.router.add_get("/_control/feedback", self._list)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://{host}:{bound}{self.path}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def _json(payload: dict[str, Any], status: int = 200) -> web.Response:
    """JSON in UTF-8 as a Chinese branch's platform writes it (not \\u escapes)."""
    return web.json_response(
        payload, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False)
    )


def _problem(record: Any) -> str | None:
    """The first thing wrong with a feedback record, as the spec lists its fields."""
    if not isinstance(record, dict):
        return "the body is not a feedback object"
    for name in REQUIRED:
        if name not in record or (name != "summary" and record[name] in (None, "")):
            return f"{name} is missing"  # an empty summary is a choice; a missing one is not
    if record["outcome"] not in OUTCOMES:
        return f"outcome must be one of {', '.join(OUTCOMES)}"
    if record["satisfaction"] not in SATISFACTION:
        return f"satisfaction must be one of {', '.join(SATISFACTION)}"
    for name in ("decided_at", "contacted_at"):
        value = record.get(name)
        if value is None:
            continue
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return f"{name} is not an RFC 3339 time"
        if moment.tzinfo is None:
            return f"{name} has no time zone"
    if not isinstance(record.get("extensions", []), list):
        return "extensions must be a list"
    return None


async def serve(
    port: int, secrets: Sequence[str], path: str = "/feedback", mode: Mode = "ok"
) -> None:
    """Run until cancelled, printing each feedback record it accepts."""

    def show(record: dict[str, Any]) -> None:
        print(
            f"feedback {record.get('transfer_id')} / {record.get('ticket_number')}: "
            f"{record.get('outcome')}, satisfaction {record.get('satisfaction')}",
            flush=True,
        )

    stand_in = RegulatorStandIn(secrets=list(secrets), path=path, mode=mode, on_record=show)
    url = await stand_in.start(port=port)
    print(f"regulator stand-in at {url} (mode {mode}); POST /_control to change", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await stand_in.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m hub.testing.standins.regulator",
        description="A stand-in for a 12378 regulator branch's result-feedback endpoint.",
    )
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument(
        "--secret", action="append", required=True, help="whsec_ secret (repeat for rotation)"
    )
    parser.add_argument("--path", default="/feedback")
    parser.add_argument("--mode", choices=MODES, default="ok")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, args.secret, args.path, args.mode))


if __name__ == "__main__":
    main()
