"""A local stand-in of WeChat's API (api.weixin.qq.com), for tests, ``make run`` and sandboxes.

It speaks the same HTTP protocol as WeChat, from WeChat's documentation:

* ``POST /cgi-bin/stable_token``: normal mode returns the account's current token, and within
  its last 5 minutes a new one (the old one still honoured until it expires);
  ``force_refresh`` returns a new token and invalidates the old one at once.
* ``POST /cgi-bin/message/custom/send``: 45015 when the customer's last interaction (told
  with ``customer_wrote``) is over 48 hours old; otherwise records the message.
* ``POST /cgi-bin/message/template/send``: 47003 for a ``thing`` value over 20 characters; one
  message per openid and ``client_msg_id``; answers a ``msgid``.
* ``GET /cgi-bin/media/get``: the bytes given to ``add_media``; for anything else 40007, as
  JSON typed ``text/plain`` like WeChat's.
* ``GET /cgi-bin/get_api_domain_ip``: a list of addresses (a cheap call to check a token).

Calls with a missing token answer 41001, an unknown or force-refreshed one 40001, an expired
one 42001. ``fail(path, errcode)`` scripts failures (consumed in order); ``expire_tokens()``
makes every issued token expire now, as WeChat may; ``sent`` lists what was delivered.

Run it on its own: ``python -m hub.testing.standins.wechat_api --port 8002 --account
wx123:secret`` (no ``--account``: any AppID and secret are accepted).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

TOKEN_LIFETIME = timedelta(seconds=7200)
OVERLAP = timedelta(minutes=5)
WINDOW = timedelta(hours=48)


@dataclass(slots=True)
class _Issued:
    app_id: str
    expires_at: datetime
    revoked: bool = False


@dataclass(frozen=True, slots=True)
class ScriptedFailure:
    errcode: int
    errmsg: str = ""
    http_status: int = 200
    delay: float = 0.0


@dataclass(slots=True)
class Delivered:
    kind: str
    app_id: str
    payload: dict[str, Any]
    at: datetime


@dataclass(slots=True)
class _Calls:
    token_fetches: int = 0
    forced_refreshes: int = 0
    media_gets: int = 0
    by_path: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class WeChatApiStandIn:
    def __init__(
        self,
        accounts: dict[str, str] | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.accounts = dict(accounts or {})
        self.now = now or (lambda: datetime.now(UTC))
        self.sent: list[Delivered] = []
        self.calls = _Calls()
        self.url = ""
        self._tokens: dict[str, _Issued] = {}
        self._current: dict[str, str] = {}
        self._failures: dict[str, deque[ScriptedFailure]] = defaultdict(deque)
        self._media: dict[str, tuple[bytes, str]] = {}
        self._interactions: dict[str, datetime] = {}
        self._client_msg_ids: dict[tuple[str, str], int] = {}
        self._runner: web.AppRunner | None = None

    # --- scripting ----------------------------------------------------------------------

    def fail(
        self,
        path: str,
        errcode: int,
        *,
        times: int = 1,
        errmsg: str = "",
        http_status: int = 200,
        delay: float = 0.0,
    ) -> None:
        """The next ``times`` calls to ``path`` (e.g. ``/cgi-bin/message/custom/send``) fail."""
        for _ in range(times):
            self._failures[path].append(ScriptedFailure(errcode, errmsg, http_status, delay))

    def add_media(self, media_id: str, data: bytes, content_type: str = "image/jpeg") -> None:
        self._media[media_id] = (data, content_type)

    def customer_wrote(self, openid: str, at: datetime) -> None:
        """The customer interacted at ``at``: customer-service messages may go for 48 h."""
        self._interactions[openid] = at

    def expire_tokens(self) -> None:
        """Every token issued so far expires now (WeChat may end one early)."""
        now = self.now()
        for issued in self._tokens.values():
            issued.expires_at = min(issued.expires_at, now - timedelta(seconds=1))

    def delivered(self, kind: str | None = None) -> list[Delivered]:
        return [d for d in self.sent if kind is None or d.kind == kind]

    # --- the protocol -------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_post("/cgi-bin/stable_token", self._stable_token)
        app.router.add_post("/cgi-bin/message/custom/send", self._custom_send)
        app.router.add_post("/cgi-bin/message/template/send", self._template_send)
        app.router.add_get("/cgi-bin/media/get", self._media_get)
        app.router.add_get("/cgi-bin/get_api_domain_ip", self._domain_ip)
        return app

    async def _scripted(self, request: web.Request) -> web.Response | None:
        self.calls.by_path[request.path] += 1
        queue = self._failures.get(request.path)
        if not queue:
            return None
        failure = queue.popleft()
        if failure.delay:
            await asyncio.sleep(failure.delay)
        return _error(failure.errcode, failure.errmsg or "scripted failure", failure.http_status)

    def _check_token(self, request: web.Request) -> tuple[str | None, web.Response | None]:
        token = request.query.get("access_token")
        if not token:
            return None, _error(41001, "access_token missing")
        issued = self._tokens.get(token)
        if issued is None or issued.revoked:
            return None, _error(40001, "invalid credential, access_token is invalid or not latest")
        if issued.expires_at <= self.now():
            return None, _error(42001, "access_token expired")
        return issued.app_id, None

    async def _json(self, request: web.Request) -> dict[str, Any] | None:
        try:
            body = json.loads(await request.read())
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    async def _stable_token(self, request: web.Request) -> web.Response:
        if (scripted := await self._scripted(request)) is not None:
            return scripted
        body = await self._json(request)
        if body is None or body.get("grant_type") != "client_credential":
            return _error(40002, "invalid grant_type")
        app_id, secret = str(body.get("appid", "")), str(body.get("secret", ""))
        if self.accounts and app_id not in self.accounts:
            return _error(40013, "invalid appid")
        if self.accounts and self.accounts[app_id] != secret:
            return _error(40125, "invalid appsecret")
        self.calls.token_fetches += 1
        now = self.now()
        current = self._tokens.get(self._current.get(app_id, ""))
        if body.get("force_refresh") is True:
            self.calls.forced_refreshes += 1
            if current is not None:
                current.revoked = True
            current = None
        elif current is not None and current.expires_at - now <= OVERLAP:
            current = None  # a new token; the old one is honoured until it expires
        if current is None:
            token = "ACCESS_" + secrets.token_urlsafe(24)
            self._tokens[token] = _Issued(app_id, now + TOKEN_LIFETIME)
            self._current[app_id] = token
            current = self._tokens[token]
        token = self._current[app_id]
        remaining = int((current.expires_at - now).total_seconds())
        return web.json_response({"access_token": token, "expires_in": remaining})

    async def _custom_send(self, request: web.Request) -> web.Response:
        if (scripted := await self._scripted(request)) is not None:
            return scripted
        app_id, refused = self._check_token(request)
        if refused is not None:
            return refused
        body = await self._json(request)
        if body is None or not body.get("touser") or body.get("msgtype") != "text":
            return _error(47001, "data format error")
        content = str((body.get("text") or {}).get("content", ""))
        if not content or len(content.encode()) > 2048:
            return _error(45002, "content size out of limit")
        last = self._interactions.get(str(body["touser"]))
        if last is not None and self.now() - last > WINDOW:
            return _error(45015, "response out of time limit or subscription is canceled")
        self.sent.append(Delivered("custom", str(app_id), body, self.now()))
        return _error(0, "ok")

    async def _template_send(self, request: web.Request) -> web.Response:
        if (scripted := await self._scripted(request)) is not None:
            return scripted
        app_id, refused = self._check_token(request)
        if refused is not None:
            return refused
        body = await self._json(request)
        data = body.get("data") if body is not None else None
        if body is None or not body.get("touser") or not body.get("template_id"):
            return _error(47001, "data format error")
        if not isinstance(data, dict):
            return _error(47001, "data format error")
        for key, value in data.items():
            text = str((value or {}).get("value", "")) if isinstance(value, dict) else ""
            if key.startswith("thing") and len(text) > 20:
                return _error(47003, f"argument invalid! data.{key}.value invalid")
        client_msg_id = str(body.get("client_msg_id", ""))
        seen_key = (str(body["touser"]), client_msg_id)
        if client_msg_id and seen_key in self._client_msg_ids:
            return web.json_response(
                {"errcode": 0, "errmsg": "ok", "msgid": self._client_msg_ids[seen_key]}
            )
        msgid = 200000000 + len(self.sent)
        if client_msg_id:
            self._client_msg_ids[seen_key] = msgid
        self.sent.append(Delivered("template", str(app_id), body, self.now()))
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": msgid})

    async def _media_get(self, request: web.Request) -> web.Response:
        if (scripted := await self._scripted(request)) is not None:
            return scripted
        _, refused = self._check_token(request)
        if refused is not None:
            return refused
        self.calls.media_gets += 1
        media_id = request.query.get("media_id", "")
        if media_id not in self._media:
            return web.Response(
                text=json.dumps({"errcode": 40007, "errmsg": "invalid media_id"}),
                content_type="text/plain",
            )
        data, content_type = self._media[media_id]
        return web.Response(
            body=data,
            content_type=content_type,
            headers={"Content-disposition": f'attachment; filename="{media_id}.bin"'},
        )

    async def _domain_ip(self, request: web.Request) -> web.Response:
        if (scripted := await self._scripted(request)) is not None:
            return scripted
        _, refused = self._check_token(request)
        if refused is not None:
            return refused
        return web.json_response({"dns": ["127.0.0.1"]})

    # --- running ------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://{host}:{bound}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def _error(errcode: int, errmsg: str, status: int = 200) -> web.Response:
    return web.json_response({"errcode": errcode, "errmsg": errmsg}, status=status)


def main() -> None:
    parser = argparse.ArgumentParser(description="A local stand-in of WeChat's API")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument(
        "--account",
        action="append",
        default=[],
        metavar="APPID:SECRET",
        help="accept this AppID and secret (repeatable); none: accept any",
    )
    args = parser.parse_args()
    accounts = dict(item.split(":", 1) for item in args.account)
    stand_in = WeChatApiStandIn(accounts)

    async def serve() -> None:
        url = await stand_in.start(args.host, args.port)
        print(f"WeChat API stand-in at {url}", flush=True)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
        await stand_in.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
