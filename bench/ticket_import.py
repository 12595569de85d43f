"""Historical ticket import: ``tongdao import tickets`` with a million tickets.

Writes a JSON Lines file of ``--tickets`` historical tickets (each with a customer message and
the bank's reply; one in twenty still open, so it gets its SLA clocks; customers recur, so
they are found again by their identities, across batches too), then times the import — the
same ``import_tickets`` the command runs — on a fresh migrated database, and prints tickets
per second, per-batch p50/p95/p99, the peak memory of this process, and a rerun of the same
file with ``--restart`` (every ticket a duplicate).
"""

from __future__ import annotations

import asyncio
import functools
import resource
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hub import logs
from hub.policy_book import build_book
from hub.settings import DatabaseSettings, SlaSettings
from hub.store import create_engine, upgrade

_TEXTS = (
    "我的信用卡被重复扣费，请退款。",
    "手机银行转账失败但是钱已经扣了",
    "网点排队时间太长，服务态度差",
    "理财产品赎回一直没有到账",
)


def write_file(path: Path, tickets: int, customers: int | None = None) -> float:
    """A JSON Lines file of ``tickets`` tickets; returns the seconds it took."""
    began = time.perf_counter()
    customers = customers or max(1, tickets // 3)
    base = datetime(2024, 1, 1, tzinfo=UTC)
    lines = []
    with path.open("w", encoding="utf-8") as out:
        for n in range(tickets):
            created = base + timedelta(seconds=n * 29)
            at = created.strftime("%Y-%m-%dT%H:%M:%S+00:00")
            replied = (created + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
            status = "in_progress" if n % 20 == 0 else "closed"
            c = n % customers
            text = _TEXTS[n % len(_TEXTS)]
            lines.append(
                f'{{"source_id":"L{n}","number":"TD-{created:%Y%m%d}-{n:06d}",'
                f'"kind":"complaint","status":"{status}","channel":"app",'
                f'"created_at":"{at}","customer_phone":"13{c:09d}",'
                f'"customer_name":"客户{c}","category":"credit_card",'
                f'"outcome":"resolved","messages":[{{"at":"{at}","text":"{text}"}},'
                f'{{"at":"{replied}","direction":"out","author":"agent-{n % 50}",'
                f'"text":"您好，已为您处理，款项三个工作日内退回。"}}]}}\n'
            )
            if len(lines) >= 10_000:
                out.write("".join(lines))
                lines.clear()
        out.write("".join(lines))
    return time.perf_counter() - began


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _run(url: str, label: str, path: Path, tickets: int, batch: int) -> None:
    from hub.ticket_import import import_tickets

    logs.configure("WARNING", False)
    engine = create_engine(DatabaseSettings(url=url))
    try:
        await upgrade(engine)
        book = build_book(SlaSettings())
        key = b"bench-identity-key"
        batch_times: list[float] = []
        last = [time.perf_counter()]

        def progress(_done: int, _total: int) -> None:
            now = time.perf_counter()
            batch_times.append(now - last[0])
            last[0] = now

        began = time.perf_counter()
        last[0] = began
        run = functools.partial(
            import_tickets, engine, path, source="bench", identity_key=key, book=book
        )
        report = await run(now=datetime.now(UTC), batch_size=batch, progress=progress)
        seconds = time.perf_counter() - began
        assert report.loaded == tickets, report
        per_batch = sorted(batch_times[:-1]) or [seconds]
        q = statistics.quantiles(per_batch, n=100) if len(per_batch) > 1 else per_batch * 99
        print(
            f"[{label}] imported {report.loaded:,} tickets ({report.messages:,} messages, "
            f"{report.customers_created:,} customers) in {seconds:.1f} s = "
            f"{report.loaded / seconds:,.0f} tickets/s; batch of {batch:,}: "
            f"p50 {q[49] * 1000:.0f} ms, p95 {q[94] * 1000:.0f} ms, p99 {q[98] * 1000:.0f} ms; "
            f"peak RSS {_peak_mb():.0f} MB"
        )
        began = time.perf_counter()
        again = await run(now=datetime.now(UTC), batch_size=batch, restart=True)
        seconds = time.perf_counter() - began
        assert again.loaded == 0 and again.duplicate == tickets, again
        print(
            f"[{label}] rerun of the same file: {again.duplicate:,} duplicates, nothing stored, "
            f"in {seconds:.1f} s = {again.duplicate / seconds:,.0f} tickets/s"
        )
    finally:
        await engine.dispose()


def scenario_import(url: str, label: str, workdir: Path, tickets: int, batch: int) -> None:
    path = workdir / "tickets.jsonl"
    if not path.exists() or path.stat().st_size == 0:
        took = write_file(path, tickets)
        size = path.stat().st_size / (1 << 20)
        print(f"[{label}] wrote {tickets:,} tickets ({size:.0f} MiB JSON Lines) in {took:.1f} s")
    asyncio.run(_run(url, label, path, tickets, batch))
