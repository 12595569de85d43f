"""Access tokens for servers that refuse passwords (Exchange Online's IMAP and SMTP).

OAuth 2.0 client credentials (RFC 6749 4.4): the bank registers the hub as an application,
grants it the mailbox, and configures ``token_url``, ``client_id`` and ``client_secret``. A
token is fetched through the hub's HTTP client and reused until shortly before it expires, so
a poll every minute does not ask for a new one every minute.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import httpx

from connectors.email.config import OAuth2
from hub.sdk import Clock

_EARLY = timedelta(seconds=120)


class TokenError(Exception):
    """No token: the identity provider refused or could not be reached; the text says why."""


class TokenSource:
    def __init__(self, settings: OAuth2, http: httpx.AsyncClient, clock: Clock) -> None:
        self._settings = settings
        self._http = http
        self._clock = clock
        self._token: str | None = None
        self._expires_at: datetime | None = None
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        async with self._lock:
            now = self._clock.now()
            if self._token and self._expires_at and now < self._expires_at - _EARLY:
                return self._token
            self._token, self._expires_at = await self._fetch(now)
            return self._token

    def forget(self) -> None:
        """Drop the cached token (the server refused it: revoked, or rights changed)."""
        self._token = None

    async def _fetch(self, now: datetime) -> tuple[str, datetime]:
        settings = self._settings
        try:
            response = await self._http.post(
                str(settings.token_url),
                data={
                    "grant_type": "client_credentials",
                    "client_id": settings.client_id,
                    "client_secret": settings.client_secret.get_secret_value(),
                    "scope": settings.scope,
                },
            )
        except httpx.HTTPError as exc:
            raise TokenError(f"token endpoint unreachable: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise TokenError(f"token endpoint answered {response.status_code}")
        try:
            body = response.json()
            token = str(body["access_token"])
            lifetime = float(body.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError) as exc:
            raise TokenError("token endpoint answered without an access_token") from exc
        return token, now + timedelta(seconds=max(60.0, min(lifetime, 86400.0)))
