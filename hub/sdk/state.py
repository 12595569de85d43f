"""Small values a connector shares with every process of the installation (SDK 1.1; ``advance``
SDK 1.2).

Some peers hand out things that must be the same everywhere: WeChat gives each account one
access token, and a process that fetches a new one can invalidate the token every other
process holds. A connector keeps such values in ``ConnectorContext.state``; the hub backs it
with its database (table ``connector_state``), so every ``tongdao serve`` and ``tongdao
worker`` of one installation sees the same values, and a restart keeps them.

Keys are namespaced by connector: two connectors never see each other's keys. A value may
carry an expiry; an expired value reads as absent and is purged later. This is a place for
a few thousand small values (tokens, leases, per-customer timestamps, pending work), not for
messages: those go through ``ingest`` so they are acknowledged durably and deduplicated.

``MemoryState`` is the same contract inside one process: the default when a hub lends none
(older hubs, the conformance kit), and handy in a connector's unit tests.

``advance`` (SDK 1.2) keeps a value that only moves forward, such as the last time a customer
wrote, in one write instead of a read and a write: the comparison happens where the value is
stored, so two processes recording at once cannot put an older value over a newer one. It is
additive: the protocol carries a default (read, then write) for a state class written against
1.1 that inherits from ``ConnectorState``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

MAX_KEY_LENGTH = 200
MAX_VALUE_LENGTH = 64 * 1024


class ConnectorState(Protocol):
    async def get(self, key: str) -> str | None:
        """The value, or ``None`` when there is none or it has expired."""
        ...

    async def put(self, key: str, value: str, *, expires_at: datetime | None = None) -> None:
        """Store (or replace) the value; ``expires_at`` makes it read as absent afterwards."""
        ...

    async def claim(self, key: str, value: str, *, expires_at: datetime) -> bool:
        """Store the value only if the key is absent or expired; ``True`` if this call stored
        it. A lease: among many processes, one wins until ``expires_at``."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the key; no error when it is absent."""
        ...

    async def keys(self, prefix: str, limit: int = 100) -> list[str]:
        """Unexpired keys starting with ``prefix``, in key order, at most ``limit``."""
        ...

    async def advance(self, key: str, value: str, *, expires_at: datetime | None = None) -> None:
        """Store the value (and ``expires_at``) unless the key holds an unexpired value that
        sorts at or after it, comparing code points (so ISO 8601 times written in one format and
        offset order as times). SDK 1.2.

        This default reads, then writes: right in one process, but two processes may both read
        before either writes. The hub's state and ``MemoryState`` compare and write in one step.
        """
        check_entry(key, value)
        known = await self.get(key)
        if known is None or known < value:
            await self.put(key, value, expires_at=expires_at)


def check_entry(key: str, value: str | None = None) -> None:
    """The limits every implementation enforces, so a connector that works against
    ``MemoryState`` in its tests also works against the hub's database."""
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"a state key is 1 to {MAX_KEY_LENGTH} characters")
    if value is not None and len(value) > MAX_VALUE_LENGTH:
        raise ValueError(f"a state value is at most {MAX_VALUE_LENGTH} characters")


@dataclass(slots=True)
class _Entry:
    value: str
    expires_at: datetime | None


class MemoryState(ConnectorState):
    """``ConnectorState`` in this process only; ``now`` is the clock expiry is read against."""

    def __init__(self, now: Callable[[], datetime] | None = None) -> None:
        self._now = now or (lambda: datetime.now(UTC))
        self._entries: dict[str, _Entry] = {}

    def _live(self, key: str) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is not None and entry.expires_at is not None and entry.expires_at <= self._now():
            del self._entries[key]
            return None
        return entry

    async def get(self, key: str) -> str | None:
        check_entry(key)
        entry = self._live(key)
        return entry.value if entry is not None else None

    async def put(self, key: str, value: str, *, expires_at: datetime | None = None) -> None:
        check_entry(key, value)
        self._entries[key] = _Entry(value, expires_at)

    async def claim(self, key: str, value: str, *, expires_at: datetime) -> bool:
        check_entry(key, value)
        if self._live(key) is not None:
            return False
        self._entries[key] = _Entry(value, expires_at)
        return True

    async def delete(self, key: str) -> None:
        check_entry(key)
        self._entries.pop(key, None)

    async def advance(self, key: str, value: str, *, expires_at: datetime | None = None) -> None:
        # No await between the read and the write: atomic within the event loop.
        check_entry(key, value)
        entry = self._live(key)
        if entry is None or entry.value < value:
            self._entries[key] = _Entry(value, expires_at)

    async def keys(self, prefix: str, limit: int = 100) -> list[str]:
        found = sorted(k for k in list(self._entries) if k.startswith(prefix) and self._live(k))
        return found[:limit]
