"""The crash drill, short form (``bench/drills/crash.py``; ``python -m bench.drills crash
--long`` is the long one): ``tongdao serve`` and ``tongdao worker`` SIGKILLed mid-load on
SQLite and PostgreSQL; every acknowledged push is one ticket message, none twice; every
outbox row is delivered, none lost, and repeated only where a killed process held it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.drills import crash

pytestmark = pytest.mark.slow
only_postgres = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


async def test_killed_hub_on_sqlite_loses_no_acknowledged_push_and_makes_none_twice(
    sqlite_url: str, tmp_path: Path
) -> None:
    """SIGKILL ``serve`` (workers in process) after 100 of 300 concurrent pushes were acked;
    after a restart and the peer's retries, each acked push is exactly one ticket message and
    each ticket's acknowledgement reaches the app backend."""
    counts = await crash.killed_serve_on_sqlite(
        sqlite_url, tmp_path, **crash.SHORT["killed_serve_on_sqlite"]
    )
    print(f"\n[crash: sqlite serve kill] {counts}")


@pytest.mark.postgres
@only_postgres
async def test_killed_worker_on_postgres_loses_no_push_and_no_outbox_row(
    database_url: str, tmp_path: Path
) -> None:
    """Two workers; one is SIGKILLed while it delivers and a replacement starts: nothing
    acked is lost or doubled, every outbox row is delivered, and only rows the killed worker
    held are POSTed a second time."""
    counts = await crash.killed_workers_on_postgres(
        database_url, tmp_path, **crash.SHORT["killed_workers_on_postgres"]
    )
    print(f"\n[crash: postgres worker kill] {counts}")


@pytest.mark.postgres
@only_postgres
async def test_two_workers_on_postgres_never_deliver_the_same_outbox_row_twice(
    database_url: str, tmp_path: Path
) -> None:
    """Two workers race over a backlog and new pushes: every outbox row is claimed once and
    POSTed exactly once, and both workers did part of it."""
    counts = await crash.two_workers_on_postgres(
        database_url, tmp_path, **crash.SHORT["two_workers_on_postgres"]
    )
    print(f"\n[crash: postgres two workers] {counts}")
