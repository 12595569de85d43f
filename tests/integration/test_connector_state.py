"""Connector state in the database (SQLite and PostgreSQL): shared values, expiry on the hub's
clock, leases that one process wins, and keys that never cross connectors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from hub.connector_state import DatabaseState
from hub.settings import DatabaseSettings
from hub.store import create_engine, read_session_factory, session_factory
from ticket_core import ManualClock

States = tuple[DatabaseState, DatabaseState, DatabaseState]


@pytest.fixture
async def states(database_url: str, clock: ManualClock) -> AsyncIterator[States]:
    """Two processes' views of the wechat connector's state, and another connector's."""
    engine = create_engine(DatabaseSettings(url=database_url))
    other_engine = create_engine(DatabaseSettings(url=database_url))
    try:
        yield (
            DatabaseState(session_factory(engine), read_session_factory(engine), "wechat", clock),
            DatabaseState(
                session_factory(other_engine), read_session_factory(other_engine), "wechat", clock
            ),
            DatabaseState(session_factory(engine), read_session_factory(engine), "email", clock),
        )
    finally:
        await engine.dispose()
        await other_engine.dispose()


async def test_a_value_put_by_one_process_is_read_by_another(
    states: States, clock: ManualClock
) -> None:
    one, two, _ = states
    await one.put("token:retail", '{"token": "T1"}', expires_at=clock.now() + timedelta(hours=2))
    assert await two.get("token:retail") == '{"token": "T1"}'
    await two.put("token:retail", '{"token": "T2"}')
    assert await one.get("token:retail") == '{"token": "T2"}'
    await one.delete("token:retail")
    assert await two.get("token:retail") is None
    await one.delete("token:retail")  # absent: no error


async def test_expired_values_read_as_absent_and_are_purged(
    states: States, clock: ManualClock
) -> None:
    one, two, _ = states
    await one.put("seen:a", "x", expires_at=clock.now() + timedelta(minutes=1))
    await one.put("seen:b", "y")
    clock.advance(minutes=2)
    assert await two.get("seen:a") is None
    assert await two.keys("seen:") == ["seen:b"]


async def test_one_process_wins_a_claim_until_it_expires(
    states: States, clock: ManualClock
) -> None:
    one, two, _ = states
    until = clock.now() + timedelta(seconds=30)
    assert await one.claim("token-force:retail", "p1", expires_at=until)
    assert not await two.claim("token-force:retail", "p2", expires_at=until)
    assert await two.get("token-force:retail") == "p1"
    clock.advance(seconds=31)
    assert await two.claim("token-force:retail", "p2", expires_at=clock.now() + timedelta(1))
    assert await one.get("token-force:retail") == "p2"


async def test_keys_are_listed_by_prefix_in_order_and_stay_within_their_connector(
    states: States,
) -> None:
    one, _, email = states
    for key in ("media:retail:3", "media:retail:1", "media:cards:2", "token:retail", "media%x"):
        await one.put(key, "v")
    await email.put("media:retail:9", "theirs")
    assert await one.keys("media:") == ["media:cards:2", "media:retail:1", "media:retail:3"]
    assert await one.keys("media:", limit=1) == ["media:cards:2"]
    assert await one.keys("media%") == ["media%x"]  # LIKE wildcards are literal
    assert await email.keys("media:") == ["media:retail:9"]
    assert await email.get("token:retail") is None


async def test_oversized_keys_and_values_are_refused(states: States) -> None:
    one, _, _ = states
    with pytest.raises(ValueError, match="key"):
        await one.put("k" * 201, "v")
    with pytest.raises(ValueError, match="value"):
        await one.put("k", "v" * (64 * 1024 + 1))
