"""``hub.sdk``'s state contract in one process: ``MemoryState`` and the protocol's default
``advance`` (SDK 1.2), which a state class written against 1.1 inherits."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from hub.sdk import ConnectorState, MemoryState
from ticket_core import ManualClock

NOW = datetime.fromisoformat("2026-11-24T10:00:00+00:00")


class _StateOf11(ConnectorState):
    """A state written for SDK 1.1: everything but ``advance``, over a ``MemoryState``."""

    def __init__(self, inner: MemoryState) -> None:
        self._inner = inner

    async def get(self, key: str) -> str | None:
        return await self._inner.get(key)

    async def put(self, key: str, value: str, *, expires_at: datetime | None = None) -> None:
        await self._inner.put(key, value, expires_at=expires_at)

    async def claim(self, key: str, value: str, *, expires_at: datetime) -> bool:
        return await self._inner.claim(key, value, expires_at=expires_at)

    async def delete(self, key: str) -> None:
        await self._inner.delete(key)

    async def keys(self, prefix: str, limit: int = 100) -> list[str]:
        return await self._inner.keys(prefix, limit)


@pytest.mark.parametrize("wrapped", [False, True], ids=["MemoryState", "protocol default"])
async def test_advance_keeps_the_later_value_and_replaces_an_expired_one(wrapped: bool) -> None:
    clock = ManualClock(NOW)
    memory = MemoryState(clock.now)
    state: ConnectorState = _StateOf11(memory) if wrapped else memory
    soon = NOW + timedelta(minutes=1)
    await state.advance("seen", "2026-11-24T10:00:05+00:00", expires_at=soon)
    await state.advance("seen", "2026-11-24T10:00:01+00:00", expires_at=NOW + timedelta(hours=9))
    assert await state.get("seen") == "2026-11-24T10:00:05+00:00"
    await state.advance("seen", "2026-11-24T10:00:09+00:00", expires_at=soon)
    assert await state.get("seen") == "2026-11-24T10:00:09+00:00"
    clock.advance(minutes=2)  # expired: reads as absent, so an older value is stored again
    await state.advance("seen", "2026-11-24T09:00:00+00:00")
    assert await state.get("seen") == "2026-11-24T09:00:00+00:00"
    with pytest.raises(ValueError, match="key"):
        await state.advance("k" * 201, "v")
