"""The SLA scheduler's tick with many open tickets and few due.

Fills a fresh database with ``--tickets`` open tickets (one customer, one resolution clock
each, due far in the future), makes ``--due`` of them due, and times ``Scheduler.tick`` —
the real code the workers run — as it breaches and escalates them, then an idle tick with
nothing due. Rows are generated in SQL (``generate_series`` / a recursive CTE) so a million
tickets load in seconds. Prints the query plan of the due-clock lookup, which must use the
partial index on ``sla_clock.next_check_at``.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from hub import logs
from hub.runtime import Hub
from hub.settings import Settings
from ticket_core import ManualClock

_FAR = "2030-01-01 00:00:00"


def series(dialect: str, count: int) -> str:
    if dialect == "postgresql":
        return f"SELECT generate_series(1, {count}) AS n"
    return (
        f"WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {count}) "
        "SELECT n FROM s"
    )


async def _fill(hub: Hub, tickets: int, now: datetime) -> None:
    dialect = hub.engine.dialect.name
    stamp = now.strftime("%Y-%m-%d %H:%M:%S")
    async with hub.engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO customer (id, tags, created_at) VALUES (1, '[]', :at)").bindparams(
                at=now if dialect == "postgresql" else stamp
            )
        )
        created = "now()" if dialect == "postgresql" else f"'{stamp}'"
        far = f"'{_FAR}+00'" if dialect == "postgresql" else f"'{_FAR}'"
        number = (
            "'TD-20261123-' || lpad(n::text, 7, '0')"
            if dialect == "postgresql"
            else "'TD-20261123-' || printf('%07d', n)"
        )
        await conn.execute(
            text(
                "INSERT INTO ticket (id, number, kind, priority, status, channel, customer_id, "
                "subject, is_regulator_transfer, is_vulnerable, is_suspected_fraud, sla_policy, "
                "resolution_due_at, external_refs, category_codes, language, extensions, "
                "created_at, updated_at, audit_head) "
                f"SELECT n, {number}, 'complaint', 'normal', 'in_progress', 'app', 1, '', "
                "false, false, false, 'cn-service-24-48-72', "
                f"{far}, '[]', '{{}}', 'zh-CN', '[]', {created}, {created}, '' "
                f"FROM ({series(dialect, tickets)}) AS s"
            )
        )
        await conn.execute(
            text(
                "INSERT INTO sla_clock (ticket_id, name, policy, basis, started_at, due_at, "
                "target_seconds, state, warnings_sent, next_check_at) "
                "SELECT n, 'resolution', 'cn-service-24-48-72', 'calendar', "
                f"{created}, {far}, 259200, 'running', '[\"80%\", \"1h\"]', {far} "
                f"FROM ({series(dialect, tickets)}) AS s"
            )
        )
        if dialect == "postgresql":
            await conn.execute(text("SELECT setval('ticket_id_seq', :n)").bindparams(n=tickets))
            await conn.execute(text("ANALYZE"))
        else:
            await conn.execute(text("ANALYZE"))


async def _make_due(hub: Hub, tickets: int, due: int, now: datetime, round_: int) -> None:
    """``due`` tickets spread over the table: their resolution clock ran out a second ago."""
    step = max(1, tickets // due)
    ids = [1 + (i * step + round_) % tickets for i in range(due)]
    past = now - timedelta(seconds=1)
    async with hub.sessions() as session, session.begin():
        await session.exec(  # type: ignore[call-overload]
            text(
                "UPDATE sla_clock SET due_at = :past, next_check_at = :past, state = 'running', "
                "breached_at = NULL WHERE name = 'resolution' AND ticket_id IN ("
                + ",".join(str(i) for i in ids)
                + ")"
            ).bindparams(
                past=past if hub.engine.dialect.name == "postgresql" else past.replace(tzinfo=None)
            )
        )


async def _plan(hub: Hub, now: datetime) -> str:
    dialect = hub.engine.dialect.name
    explain = "EXPLAIN" if dialect == "postgresql" else "EXPLAIN QUERY PLAN"
    query = (
        f"{explain} SELECT ticket_id FROM sla_clock WHERE next_check_at IS NOT NULL "
        "AND next_check_at <= :now ORDER BY next_check_at LIMIT 200"
    )
    stamp = now if dialect == "postgresql" else now.replace(tzinfo=None)
    async with hub.engine.connect() as conn:
        rows = (await conn.execute(text(query).bindparams(now=stamp))).all()
    return " | ".join(str(row[-1]) for row in rows)


async def run(url: str, label: str, tickets: int, due: int, rounds: int) -> None:
    logs.configure("WARNING", False)
    clock = ManualClock(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))
    hub = await Hub(Settings(database={"url": url}), clock=clock).open(migrate=True)
    try:
        started = time.perf_counter()
        await _fill(hub, tickets, clock.now())
        print(f"[{label}] loaded {tickets:,} open tickets in {time.perf_counter() - started:.1f} s")
        print(f"[{label}] due-clock lookup plan: {await _plan(hub, clock.now())}")
        busy, idle = [], []
        for round_ in range(rounds):
            clock.advance(minutes=1)
            await _make_due(hub, tickets, due, clock.now(), round_)
            began = time.perf_counter()
            events = await hub.scheduler.tick()
            busy.append(time.perf_counter() - began)
            assert events == due, f"expected {due} breaches, got {events}"
            began = time.perf_counter()
            assert await hub.scheduler.tick() == 0
            idle.append(time.perf_counter() - began)
        print(
            f"[{label}] tick with {due} due of {tickets:,} open: "
            f"median {statistics.median(busy) * 1000:.0f} ms, max {max(busy) * 1000:.0f} ms "
            f"({rounds} rounds; each breach writes its audit events and escalation)"
        )
        print(f"[{label}] idle tick (nothing due): median {statistics.median(idle) * 1000:.1f} ms")
    finally:
        await hub.close()


def scenario_scheduler(url: str, label: str, tickets: int, due: int, rounds: int = 5) -> None:
    asyncio.run(run(url, label, tickets, due, rounds))
