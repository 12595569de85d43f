"""Connector state in the database (SQLite and PostgreSQL): shared values, expiry on the hub's
clock, leases that one process wins, and keys that never cross connectors."""

from __future__ import annotations

import asyncio
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


async def test_gets_arriving_together_each_get_their_own_value(
    states: States, clock: ManualClock
) -> None:
    # Concurrent gets share one query; each must still get its own key's value, expired
    # values must read as absent and a key asked twice must be answered twice.
    one, two, email = states
    for n in range(300):
        await one.put(f"k:{n:03d}", f"v{n}")
    await one.put("short", "s", expires_at=clock.now() + timedelta(minutes=1))
    await email.put("k:000", "theirs")
    clock.advance(minutes=2)
    keys = [f"k:{n:03d}" for n in range(300)] + ["short", "absent", "k:007"]
    values = await asyncio.gather(*(two.get(key) for key in keys))
    assert values == [f"v{n}" for n in range(300)] + [None, None, "v7"]


async def test_a_get_sees_every_write_committed_before_it_was_called(states: States) -> None:
    # A get that arrives while an earlier batch's query runs must wait for the next query.
    one, _, _ = states
    await one.put("counter", "0")
    first = asyncio.ensure_future(one.get("counter"))
    await asyncio.sleep(0)  # the first batch's query is under way
    await one.put("counter", "1")
    assert await one.get("counter") == "1"
    assert await first in {"0", "1"}


async def test_advance_only_moves_a_value_forward_across_processes(
    states: States, clock: ManualClock
) -> None:
    one, two, _ = states
    later = clock.now() + timedelta(hours=48)
    await one.advance("seen:x", "2026-11-24T10:00:05+00:00", expires_at=later)
    await two.advance("seen:x", "2026-11-24T10:00:01+00:00", expires_at=later)  # older: kept
    assert await two.get("seen:x") == "2026-11-24T10:00:05+00:00"
    await two.advance("seen:x", "2026-11-24T10:00:09+00:00", expires_at=later)
    assert await one.get("seen:x") == "2026-11-24T10:00:09+00:00"
    # Pushes handled out of order in one group commit keep the latest, whatever the order.
    stamps = [f"2026-11-24T11:00:{second:02d}+00:00" for second in (7, 3, 59, 12, 0)]
    await asyncio.gather(*(one.advance("seen:y", stamp, expires_at=later) for stamp in stamps))
    assert await two.get("seen:y") == "2026-11-24T11:00:59+00:00"


async def test_writes_arriving_together_end_as_if_applied_one_by_one_in_order(
    states: States,
) -> None:
    one, two, _ = states
    writes = [
        one.put("k:a", "1"),
        one.put("k:a", "2"),
        one.advance("k:b", "5"),
        one.advance("k:b", "3"),
        one.put("k:b", "1"),  # a put after the advances: stored as is
        one.put("k:c", "x"),
        one.advance("k:c", "w"),  # sorts before "x": kept out
        one.advance("k:d", "9"),
    ]
    await asyncio.gather(*writes)
    assert [await two.get(k) for k in ("k:a", "k:b", "k:c", "k:d")] == ["2", "1", "x", "9"]


async def test_advance_replaces_an_expired_value_and_compares_by_code_point(
    states: States, clock: ManualClock
) -> None:
    one, two, _ = states
    await one.advance("seen:z", "9", expires_at=clock.now() + timedelta(minutes=1))
    clock.advance(minutes=2)
    await two.advance("seen:z", "1", expires_at=clock.now() + timedelta(minutes=1))
    assert await one.get("seen:z") == "1"  # the expired "9" read as absent, so "1" is newer
    # By code point, as Python compares: "B" (66) sorts before "a" (97), where a locale
    # collation such as en_US.UTF-8 puts "a" first.
    await one.advance("case", "a")
    await one.advance("case", "B")
    assert await two.get("case") == "a"
    assert "B" < "a"
    with pytest.raises(ValueError, match="value"):
        await one.advance("k", "v" * (64 * 1024 + 1))
