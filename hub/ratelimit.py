"""Sliding-window rate limits kept in memory, read against the hub's injected clock.

Used where an unauthenticated caller could otherwise guess a secret (the progress lookup's
verification code). The state is per process: with several ``tongdao serve`` processes each
allows the full limit, so a deployment that needs one shared limit enforces it in front of
them as well (see docs/operators.md, "Progress lookup"). The clock is passed in on every call,
so tests move time instead of sleeping.
"""

from __future__ import annotations

import ipaddress
import math
from collections import OrderedDict, deque
from datetime import datetime, timedelta

DEFAULT_MAX_KEYS = 100_000


class SlidingWindow:
    """At most ``limit`` hits per key in any ``window``.

    Each key keeps the times of its last ``limit`` admitted hits, so memory is bounded by
    ``limit × max_keys``. Keys idle for a whole window are dropped as new hits arrive; beyond
    ``max_keys`` the least recently used key is forgotten (which only ever lets that key start
    afresh, never locks anybody out).
    """

    def __init__(self, limit: int, window: timedelta, *, max_keys: int = DEFAULT_MAX_KEYS) -> None:
        if limit < 1:
            raise ValueError("a rate limit must allow at least one hit")
        if window <= timedelta(0):
            raise ValueError("a rate-limit window must be positive")
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._hits: OrderedDict[str, deque[datetime]] = OrderedDict()

    def retry_after(self, key: str, now: datetime) -> float:
        """Seconds until ``key`` may be hit again; 0 when it may be hit now. Records nothing."""
        hits = self._hits.get(key)
        if hits is None:
            return 0.0
        self._expire(hits, now)
        if len(hits) < self.limit:
            return 0.0
        return max((hits[0] + self.window - now).total_seconds(), 0.0)

    def hit(self, key: str, now: datetime) -> None:
        """Record a hit; callers ask ``retry_after`` first (in the same step, with no await
        between, so concurrent requests cannot all pass the check before any is recorded)."""
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque(maxlen=self.limit)
        else:
            self._hits.move_to_end(key)
        self._expire(hits, now)
        hits.append(now)
        self._forget_idle(now)

    def __len__(self) -> int:
        return len(self._hits)

    def _expire(self, hits: deque[datetime], now: datetime) -> None:
        horizon = now - self.window
        while hits and hits[0] <= horizon:
            hits.popleft()

    def _forget_idle(self, now: datetime) -> None:
        horizon = now - self.window
        while self._hits:
            oldest_key, oldest = next(iter(self._hits.items()))
            if len(self._hits) > self.max_keys or not oldest or oldest[-1] <= horizon:
                del self._hits[oldest_key]
            else:
                break


def retry_after_header(seconds: float) -> str:
    """A ``Retry-After`` value: whole seconds, rounded up, at least 1."""
    return str(max(1, math.ceil(seconds)))


def client_key(host: str | None) -> str:
    """The address a per-client limit counts by: an IPv4 address, or an IPv6 address's /64
    (one subscriber commonly holds a whole /64, so counting single IPv6 addresses would give
    a guesser billions of fresh limits)."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)
