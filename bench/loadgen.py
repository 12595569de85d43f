"""Our own HTTP load generator: several processes, each an asyncio loop of keep-alive clients.

Requests are built (and signed) before the clock starts, so the generator spends its time on
HTTP. Its own ceiling is measured against ``/healthz`` and printed beside every result, to
show whether it, rather than the hub, was the bottleneck.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

Request = tuple[str, str, bytes, dict[str, str]]  # method, path, body, headers


@dataclass(frozen=True)
class Result:
    sent: int
    ok: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def throughput(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]

    def row(self, name: str) -> str:
        return (
            f"{name}: {self.throughput:,.0f}/s ok={self.ok} errors={self.errors} "
            f"p50={self.percentile(50):.1f} ms p95={self.percentile(95):.1f} ms "
            f"p99={self.percentile(99):.1f} ms"
        )


async def _worker_loop(
    base_url: str, requests: list[Request], seconds: float, connections: int
) -> tuple[int, int, int, list[float]]:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    sent = ok = errors = 0
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    cursor = iter(requests)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=10) as client:

        async def one() -> None:
            nonlocal sent, ok, errors
            while time.perf_counter() < deadline:
                try:
                    method, path, body, headers = next(cursor)
                except StopIteration:
                    return
                started = time.perf_counter()
                sent += 1
                try:
                    response = await client.request(method, path, content=body, headers=headers)
                except httpx.HTTPError:
                    errors += 1
                    continue
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code < 300:
                    ok += 1
                else:
                    errors += 1

        await asyncio.gather(*(one() for _ in range(connections)))
    return sent, ok, errors, latencies


def _process(args: tuple[str, list[Request], float, int]) -> tuple[int, int, int, list[float]]:
    return asyncio.run(_worker_loop(*args))


def run(
    base_url: str,
    build: Callable[[int, int], list[Request]],
    *,
    seconds: float,
    processes: int,
    connections: int,
    per_process: int,
) -> Result:
    """``build(process_index, count)`` makes each process's requests in advance."""
    batches = [build(i, per_process) for i in range(processes)]
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        parts = pool.map(_process, [(base_url, b, seconds, connections) for b in batches])
    elapsed = min(seconds, time.perf_counter() - started)
    latencies = [x for part in parts for x in part[3]]
    return Result(
        sent=sum(p[0] for p in parts),
        ok=sum(p[1] for p in parts),
        errors=sum(p[2] for p in parts),
        seconds=elapsed,
        latencies_ms=latencies,
    )


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
