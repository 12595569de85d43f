"""The web form's defences against a hostile public: CSRF tokens, one-time codes, rate limits
shared by every process, and file types read from content.

Everything here reads time from the connector's injected clock and keeps shared values in
the connector's ``ConnectorState`` (the hub's database), so limits hold across ``tongdao
serve`` processes and tests move time instead of sleeping.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata
from datetime import datetime, timedelta

from hub.sdk import Clock, ConnectorState

CODE_DIGITS = 6


def keyed(secret: bytes, label: str, value: str) -> str:
    """A keyed hash of ``value`` for one purpose (``label``): state keys and stored codes
    never hold a phone number, an address or a code in clear."""
    return hmac.new(secret, f"{label}\x00{value}".encode(), hashlib.sha256).hexdigest()


# --- CSRF -------------------------------------------------------------------------------------


def new_browser_token() -> str:
    """The random value kept in the browser's cookie."""
    return secrets.token_urlsafe(24)


def csrf_token(secret: bytes, browser_token: str) -> str:
    """The form's hidden value: the cookie's value signed with the connector's secret. A
    cross-site page can make the browser send the cookie, but cannot read it, so it cannot
    produce this value (signed double-submit)."""
    return keyed(secret, "csrf", browser_token)


def csrf_ok(secret: bytes, browser_token: str | None, submitted: str | None) -> bool:
    if not browser_token or not submitted or len(submitted) > 128 or len(browser_token) > 128:
        return False
    return hmac.compare_digest(csrf_token(secret, browser_token), submitted)


# --- one-time codes ---------------------------------------------------------------------------


def new_code() -> str:
    """Six digits from ``secrets``: typed from an SMS on a phone, guessed at 1 in 10^6 per try
    with a handful of tries per code."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def code_digest(secret: bytes, pending_id: str, code: str) -> str:
    """Bound to the pending submission, so a code never confirms another one."""
    return keyed(secret, f"code:{pending_id}", code)


def code_ok(secret: bytes, pending_id: str, typed: str, stored: str) -> bool:
    """Compared in constant time; full-width digits and spaces from an input method are fine."""
    code = unicodedata.normalize("NFKC", typed[:32]).replace(" ", "").replace("-", "")
    candidate = code_digest(secret, pending_id, code)
    same = hmac.compare_digest(candidate, stored)
    return same and len(code) == CODE_DIGITS and code.isdigit()


# --- rate limits ------------------------------------------------------------------------------


class SharedLimit:
    """At most ``limit`` hits per key in ``window``, shared by every process.

    Each hit claims one of ``limit`` slots (a state lease that expires ``window`` after the
    hit). ``claim`` is atomic in the hub's database, so concurrent requests in different
    processes cannot take the same slot, and a key with every slot taken is refused until the
    oldest lease runs out. Keys are hashed: no address or contact is stored in clear.
    """

    def __init__(
        self,
        state: ConnectorState,
        clock: Clock,
        secret: bytes,
        name: str,
        limit: int,
        window: timedelta,
    ) -> None:
        self._state = state
        self._clock = clock
        self._secret = secret
        self.name = name
        self.limit = limit
        self.window = window

    async def hit(self, key: str) -> float:
        """Record a hit: 0 when admitted, else the seconds until one is possible again."""
        now = self._clock.now()
        until = now + self.window
        base = f"limit:{self.name}:{keyed(self._secret, self.name, key)[:32]}"
        earliest: datetime | None = None
        for slot in range(self.limit):
            slot_key = f"{base}:{slot}"
            if await self._state.claim(slot_key, until.isoformat(), expires_at=until):
                return 0.0
            held = await self._state.get(slot_key)
            if held is None:  # expired between claim and get: try it once more
                if await self._state.claim(slot_key, until.isoformat(), expires_at=until):
                    return 0.0
                continue
            ends = datetime.fromisoformat(held)
            earliest = ends if earliest is None or ends < earliest else earliest
        if earliest is None:
            return 1.0
        return max((earliest - now).total_seconds(), 1.0)


# --- file types -------------------------------------------------------------------------------

_SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"%PDF-", "application/pdf", ".pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
)


def sniff(data: bytes) -> tuple[str, str] | None:
    """``(content type, extension)`` read from the file's first bytes, or ``None`` for
    anything but PDF, PNG and JPEG. The name and the browser's declared type are ignored: both
    are the sender's to choose."""
    for magic, content_type, extension in _SIGNATURES:
        if data.startswith(magic):
            return content_type, extension
    return None
