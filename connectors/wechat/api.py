"""WeChat's HTTP API over httpx: one access token per account for every process, calls that
refresh it once when WeChat says it is stale, and media downloads that cannot flood memory.

wechatpy's own API client is synchronous (requests) and its async client does not run on
Python 3.11, so the HTTP side is here; wechatpy still does crypto and parsing.

**The token.** ``cgi-bin/stable_token`` in normal mode returns the account's current token,
and the same one to every caller while it is valid, so processes asking at once never
invalidate each other (``cgi-bin/token`` would). The token is kept in the connector's shared
state (the hub's database) until five minutes before it expires; WeChat hands out the next one
from then on and honours both during that overlap. When WeChat answers 40001/40014/42001 the
call refreshes once: first the shared copy (another process may have refreshed already), then
normal mode, and only if WeChat returns the very token it just refused, force mode (limited
by WeChat to 20 a day, 30 s apart), claimed through a 30 s lease so one process forces.

Access tokens travel in the query string, as WeChat requires; no reason or log line built
here contains one.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import httpx

from connectors.wechat.codes import Action, Verdict, classify
from connectors.wechat.config import WeChatConfig
from hub.sdk import Clock, ConnectorState

T = TypeVar("T")
REFRESH_MARGIN = timedelta(minutes=5)
FORCE_INTERVAL = timedelta(seconds=30)
_MAX_JSON = 64 * 1024


class ApiFailure(Exception):
    """A call that did not work, with what to do about it."""

    def __init__(self, verdict: Verdict, status_code: int | None = None) -> None:
        super().__init__(verdict.reason)
        self.verdict = verdict
        self.status_code = status_code


class _TokenRejected(Exception):
    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.reason)
        self.verdict = verdict


@dataclass(frozen=True, slots=True)
class Media:
    data: bytes
    content_type: str
    filename: str


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    expires_at: datetime

    def dump(self) -> str:
        return json.dumps({"token": self.value, "expires_at": self.expires_at.isoformat()})

    @classmethod
    def load(cls, raw: str | None) -> _Token | None:
        if not raw:
            return None
        try:
            data = json.loads(raw)
            return cls(str(data["token"]), datetime.fromisoformat(data["expires_at"]))
        except (ValueError, KeyError, TypeError):
            return None


class WeChatApi:
    def __init__(
        self, config: WeChatConfig, http: httpx.AsyncClient, state: ConnectorState, clock: Clock
    ) -> None:
        self._config = config
        self._http = http
        self._state = state
        self._clock = clock
        self._locks: dict[str, asyncio.Lock] = {}

    # --- tokens -------------------------------------------------------------------------

    async def access_token(self, account: str, *, stale: str | None = None) -> str:
        """The account's token; ``stale`` is one WeChat just refused, to be replaced."""
        lock = self._locks.setdefault(account, asyncio.Lock())
        async with lock:  # one fetch per account in this process; others wait and reuse it
            now = self._clock.now()
            shared = _Token.load(await self._state.get(_token_key(account)))
            fresh = shared is not None and shared.expires_at - now > REFRESH_MARGIN
            if shared is not None and fresh and shared.value != stale:
                return shared.value
            token = await self._fetch_token(account, force=False)
            if stale is not None and token.value == stale:
                if not await self._state.claim(
                    f"token-force:{account}", "1", expires_at=now + FORCE_INTERVAL
                ):
                    raise ApiFailure(
                        Verdict(
                            Action.retry,
                            "access token refused; another process is forcing a refresh",
                            FORCE_INTERVAL.total_seconds(),
                        )
                    )
                token = await self._fetch_token(account, force=True)
            await self._state.put(_token_key(account), token.dump(), expires_at=token.expires_at)
            return token.value

    async def _fetch_token(self, account: str, *, force: bool) -> _Token:
        settings = self._config.accounts[account]
        payload = {
            "grant_type": "client_credential",
            "appid": settings.app_id,
            "secret": settings.app_secret.get_secret_value(),
            "force_refresh": force,
        }
        try:
            body = await self._json(
                await self._http.post(f"{self._config.api_base}/cgi-bin/stable_token", json=payload)
            )
        except _TokenRejected as rejected:  # at the token endpoint: the credentials are wrong
            code = rejected.verdict.reason.split(":")[0]
            raise ApiFailure(
                Verdict(Action.give_up, f"{code}: the token endpoint refused the AppID/AppSecret")
            ) from None
        except httpx.HTTPError as exc:
            raise ApiFailure(_transport(exc, "token endpoint")) from None
        token, expires_in = body.get("access_token"), body.get("expires_in")
        if not isinstance(token, str) or not token or len(token) > 2048:
            raise ApiFailure(Verdict(Action.retry, "token endpoint answered without a token", 30))
        if not isinstance(expires_in, int) or not 0 < expires_in <= 86400:
            expires_in = 300
        return _Token(token, self._clock.now() + timedelta(seconds=expires_in))

    # --- calls --------------------------------------------------------------------------

    async def post(self, account: str, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST JSON with the account's token; raises ``ApiFailure``."""
        body = json.dumps(payload, ensure_ascii=False).encode()

        async def call(token: str) -> dict[str, Any]:
            try:
                response = await self._http.post(
                    f"{self._config.api_base}{path}",
                    params={"access_token": token},
                    content=body,
                    headers={"content-type": "application/json; charset=utf-8"},
                )
            except httpx.HTTPError as exc:
                raise ApiFailure(_transport(exc, path, token)) from None
            return await self._json(response)

        return await self._authorised(account, call)

    async def get(self, account: str, path: str, params: dict[str, str]) -> dict[str, Any]:
        """GET with the account's token; raises ``ApiFailure``."""

        async def call(token: str) -> dict[str, Any]:
            try:
                response = await self._http.get(
                    f"{self._config.api_base}{path}", params={"access_token": token, **params}
                )
            except httpx.HTTPError as exc:
                raise ApiFailure(_transport(exc, path, token)) from None
            return await self._json(response)

        return await self._authorised(account, call)

    async def media(self, account: str, media_id: str, limit: int) -> Media:
        """Download temporary media (``cgi-bin/media/get``) without holding more than
        ``limit`` bytes; raises ``ApiFailure`` (give up when it is larger)."""
        return await self._authorised(
            account, lambda token: self._media_once(media_id, limit, token)
        )

    async def _authorised(self, account: str, call: Callable[[str], Awaitable[T]]) -> T:
        """Make the call with the account's token; when WeChat says the token is invalid or
        expired, refresh it once and make the call again."""
        token = await self.access_token(account)
        try:
            return await call(token)
        except _TokenRejected:
            token = await self.access_token(account, stale=token)
        try:
            return await call(token)
        except _TokenRejected as again:
            raise ApiFailure(
                Verdict(Action.retry, f"{again.verdict.reason}, again after a refresh", 30)
            ) from None

    async def _media_once(self, media_id: str, limit: int, token: str) -> Media:
        url = f"{self._config.api_base}/cgi-bin/media/get"
        try:
            async with self._http.stream(
                "GET", url, params={"access_token": token, "media_id": media_id}
            ) as response:
                if response.status_code != 200:
                    raise ApiFailure(_http_verdict(response.status_code), response.status_code)
                content_type = _media_type(response.headers.get("content-type", ""))
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise ApiFailure(_too_large(limit))
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise ApiFailure(_too_large(limit))
                    chunks.append(chunk)
                data = b"".join(chunks)
                disposition = response.headers.get("content-disposition", "")
        except httpx.HTTPError as exc:
            raise ApiFailure(_transport(exc, "media/get", token)) from None
        if content_type in ("application/json", "text/plain") or data[:2] == b'{"':
            # Errors come back as JSON (typed text/plain), a stale token among them; a video
            # comes back as its URL, which is not media we keep.
            self._decode(data, 200)
            raise ApiFailure(Verdict(Action.give_up, "media/get answered JSON, not media"))
        if not data:
            raise ApiFailure(Verdict(Action.retry, "media/get answered an empty body", 60))
        return Media(data, content_type or "application/octet-stream", _filename(disposition))

    async def _json(self, response: httpx.Response) -> dict[str, Any]:
        if response.status_code != 200:
            raise ApiFailure(
                _http_verdict(response.status_code, response.headers), response.status_code
            )
        return self._decode(response.content, response.status_code)

    def _decode(self, content: bytes, status: int) -> dict[str, Any]:
        if len(content) > _MAX_JSON:
            raise ApiFailure(Verdict(Action.retry, "WeChat answered an oversized body", 60), status)
        try:
            body = json.loads(content)
        except ValueError:
            raise ApiFailure(
                Verdict(Action.retry, "WeChat answered something not JSON", 60), status
            ) from None
        if not isinstance(body, dict):
            raise ApiFailure(
                Verdict(Action.retry, "WeChat answered JSON that is not an object", 60)
            )
        errcode = body.get("errcode", 0)
        if not isinstance(errcode, int):
            raise ApiFailure(Verdict(Action.retry, "WeChat answered a non-numeric errcode", 60))
        if errcode == 0:
            return body
        verdict = classify(errcode, str(body.get("errmsg", "")), self._clock.now())
        if verdict.action is Action.refresh_token:
            raise _TokenRejected(verdict)
        raise ApiFailure(verdict, status)


def _token_key(account: str) -> str:
    return f"token:{account}"


def _transport(exc: httpx.HTTPError, what: str, token: str | None = None) -> Verdict:
    detail = str(exc)
    if token:
        detail = detail.replace(token, "***")
    detail = re.sub(r"access_token=[^&\s'\"]+", "access_token=***", detail)[:200]
    if isinstance(exc, httpx.TimeoutException):
        return Verdict(Action.retry, f"timeout calling WeChat ({what}): {type(exc).__name__}")
    return Verdict(
        Action.retry, f"cannot reach WeChat ({what}): {type(exc).__name__}: {detail}".rstrip(": ")
    )


def _http_verdict(status: int, headers: httpx.Headers | None = None) -> Verdict:
    if status == 429 or status >= 500 or status in (408, 425):
        retry_after = None
        value = headers.get("retry-after") if headers is not None else None
        if value and value.isdigit():
            retry_after = min(float(value), 86400.0)
        return Verdict(Action.retry, f"WeChat answered HTTP {status}", retry_after)
    return Verdict(Action.give_up, f"WeChat answered HTTP {status}")


def _too_large(limit: int) -> Verdict:
    return Verdict(Action.give_up, f"media larger than {limit} bytes (max_media_bytes)")


def _media_type(header: str) -> str:
    value = header.split(";")[0].strip().lower()
    return value if re.fullmatch(r"[a-z0-9.+-]+/[a-z0-9.+-]+", value) else ""


def _filename(disposition: str) -> str:
    match = re.search(r'filename="?([A-Za-z0-9._-]{1,100})"?', disposition)
    return match.group(1) if match else ""
