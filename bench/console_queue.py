"""The console's queue with many open tickets: how long a page of rows takes.

Loads ``--tickets`` open tickets straight in SQL (varied channels, kinds, queues and due
times), signs a supervisor in, and times ``GET /console/queue/rows`` — the fragment the
queue page refreshes — through the real app in process (httpx over ASGI, so the figure is
the hub's work: the count, the page query, the template): the first page, a page deep in,
and filtered pages. The target is "thousands of tickets with paging in well under a second".
"""

from __future__ import annotations

import asyncio
import re
import statistics
import time
from datetime import UTC, datetime

import httpx
from sqlalchemy import text

from bench.scheduler import series
from hub import logs
from hub.app import create_app
from hub.auth import Role
from hub.console.accounts import create_account
from hub.runtime import Hub
from hub.settings import Settings
from ticket_core import ManualClock

_PASSWORD = "bench-password-1234"
_PAGES = {
    "all open, first page": {"view": "all"},
    "all open, page 100": {"view": "all", "page": "100"},
    "one channel": {"view": "all", "channel": "wechat"},
    "at risk": {"view": "all", "risk": "at_risk"},
    "regulator transfers, complaints": {"view": "all", "regulator": "1", "kind": "complaint"},
    "unassigned": {"view": "unassigned"},
}


async def _fill(hub: Hub, tickets: int, now: datetime) -> None:
    dialect = hub.engine.dialect.name
    pg = dialect == "postgresql"
    stamp = now.strftime("%Y-%m-%d %H:%M:%S")
    created = "now()" if pg else f"'{stamp}'"
    # Due times from an hour ago to about two months ahead, spread over the tickets.
    due = (
        "now() + ((n % 86400) * interval '70 seconds') - interval '1 hour'"
        if pg
        else f"strftime('%Y-%m-%d %H:%M:%S', '{stamp}', '-1 hour', '+' || ((n % 86400) * 70) "
        "|| ' seconds')"
    )
    number = (
        "'TD-20261124-' || lpad(n::text, 7, '0')" if pg else "'TD-20261124-' || printf('%07d', n)"
    )
    pick = (
        "(ARRAY['wechat','email','app','web','hotline12378'])[1 + n % 5]"
        if pg
        else "CASE n % 5 WHEN 0 THEN 'wechat' WHEN 1 THEN 'email' WHEN 2 THEN 'app' "
        "WHEN 3 THEN 'web' ELSE 'hotline12378' END"
    )
    kind = "CASE n % 3 WHEN 0 THEN 'complaint' WHEN 1 THEN 'consultation' ELSE 'suggestion' END"
    queue = (
        "CASE n % 4 WHEN 0 THEN 'cards' WHEN 1 THEN 'wealth' WHEN 2 THEN 'loans' ELSE 'retail' END"
    )
    assignee = "CASE WHEN n % 3 = 0 THEN NULL ELSE 'agent' || (n % 40) END"
    async with hub.engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO customer (id, tags, created_at) VALUES (1, '[]', :at)").bindparams(
                at=now if pg else stamp
            )
        )
        await conn.execute(
            text(
                "INSERT INTO ticket (id, number, kind, priority, status, channel, customer_id, "
                "subject, queue, assignee, is_regulator_transfer, is_vulnerable, "
                "is_suspected_fraud, sla_policy, resolution_due_at, external_refs, "
                "category_codes, language, extensions, created_at, updated_at, audit_head) "
                f"SELECT n, {number}, {kind}, 'normal', 'in_progress', {pick}, 1, "
                f"'工单 ' || n, {queue}, {assignee}, "
                "n % 5 = 4, false, false, 'cn-service-24-48-72', "
                f"{due}, '[]', '{{}}', 'zh-CN', '[]', {created}, {created}, '' "
                f"FROM ({series(dialect, tickets)}) AS s"
            )
        )
        if pg:
            await conn.execute(text("SELECT setval('ticket_id_seq', :n)").bindparams(n=tickets))
        await conn.execute(text("ANALYZE"))


async def _signed_in(client: httpx.AsyncClient) -> None:
    form = await client.get("/console/login")
    token = re.search(r'name="login_token" value="([^"]+)"', form.text)
    assert token is not None
    answer = await client.post(
        "/console/login",
        data={"username": "bench", "password": _PASSWORD, "login_token": token.group(1)},
    )
    assert answer.status_code == 303, answer.text


async def run(url: str, label: str, tickets: int, rounds: int) -> None:
    logs.configure("WARNING", False)
    clock = ManualClock(datetime(2026, 11, 24, 9, 0, tzinfo=UTC))
    settings = Settings(database={"url": url}, console={"secure_cookie": False})
    hub = await Hub(settings, clock=clock).open(migrate=True)
    try:
        started = time.perf_counter()
        await _fill(hub, tickets, clock.now())
        print(f"[{label}] loaded {tickets:,} open tickets in {time.perf_counter() - started:.1f} s")
        async with hub.sessions() as session, session.begin():
            await create_account(session, "bench", _PASSWORD, Role.supervisor, clock.now())
        app = create_app(hub=hub, run_workers=False)
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
            await _signed_in(client)
            for name, params in _PAGES.items():
                times = []
                for _ in range(rounds):
                    began = time.perf_counter()
                    response = await client.get("/console/queue/rows", params=params)
                    times.append(time.perf_counter() - began)
                    assert response.status_code == 200, response.text[:300]
                total = re.search(r"(\d+) tickets|共 (\d+) 件", response.text)
                shown = next(g for g in total.groups() if g) if total else "?"
                times.sort()
                median = statistics.median(times) * 1000
                p95 = times[int(len(times) * 0.95) - 1] * 1000
                print(
                    f"[{label}] queue rows, {name}: median {median:.0f} ms, p95 {p95:.0f} ms "
                    f"({shown} matching, {rounds} requests)"
                )
    finally:
        await hub.close()


def scenario_console_queue(url: str, label: str, tickets: int, rounds: int = 20) -> None:
    asyncio.run(run(url, label, tickets, rounds))
