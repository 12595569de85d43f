"""What every scenario shares: a fresh database, a running hub, wrk, percentiles, memory.

The hub runs as real processes (``python -m hub.cli serve``, plus ``worker`` processes on
PostgreSQL), importing this checkout (``PYTHONPATH`` is set to it), and their peak memory is
read from ``/proc/<pid>/status`` (``VmHWM``, the resident set's high-water mark).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from hub.testing import free_port

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get("TONGDAO_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
LUA = Path(__file__).with_name("wrk_replay.lua")


def load() -> str:
    """The machine's load averages, printed beside every figure (the cores are shared)."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def latency_row(values_ms: Sequence[float]) -> str:
    """p50/p95/p99; a percentile that falls on something that never arrived reads ``never``."""

    def shown(p: float) -> str:
        value = percentile(values_ms, p)
        return "never" if value == float("inf") else f"{value:,.1f} ms"

    return f"p50={shown(50)} p95={shown(95)} p99={shown(99)}"


def peak_rss_mb(pid: int) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return float("nan")


def serving_children(parent: int) -> list[int]:
    """The processes uvicorn spawned to serve for ``tongdao serve --processes N``."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == parent and b"spawn_main" in command:
            children.append(int(entry.name))
    return sorted(children)


async def _create_pg(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def database_url(db: str, workdir: Path) -> str:
    """A fresh, empty database for one scenario."""
    if db == "sqlite":
        return f"sqlite+aiosqlite:///{workdir}/bench-{uuid.uuid4().hex[:8]}.db"
    name = f"tongdao_bench_{os.getpid()}"
    asyncio.run(_create_pg(name))
    return PG_ADMIN.replace("postgresql://", "postgresql+asyncpg://").rsplit("/", 1)[0] + f"/{name}"


def child_env() -> dict[str, str]:
    """Children import this checkout, whatever the venv has installed in editable mode."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


def hub_env(url: str, extra: dict[str, str]) -> dict[str, str]:
    return {
        **child_env(),
        "TONGDAO_DATABASE__URL": url,
        "TONGDAO_LOG__LEVEL": "WARNING",
        "TONGDAO_DATABASE__POOL_SIZE": "20",
        **extra,
    }


def tongdao(*args: str) -> list[str]:
    return [sys.executable, "-m", "hub.cli", *args]


def migrate(env: dict[str, str], workdir: Path) -> None:
    subprocess.run(tongdao("migrate"), env=env, check=True, capture_output=True, cwd=workdir)


@dataclass
class RunningHub:
    base: str
    serves: list[subprocess.Popen[bytes]]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def memory(self) -> str:
        """Peak RSS of each hub process, the figure the issue's ≤ 300 MB is about."""
        parts = [f"{name} peak RSS={peak_rss_mb(pid):.0f} MB" for name, pid in self._processes()]
        return " ".join(parts)

    def _processes(self) -> list[tuple[str, int]]:
        """Every hub process by role; a ``serve --processes N`` counts as its N servers
        (its supervisor only waits)."""
        named = []
        for serve in self.serves:
            named += [("serve", pid) for pid in serving_children(serve.pid) or [serve.pid]]
        return named + [("worker", worker.pid) for worker in self.workers]

    def cpu(self) -> dict[int, float]:
        return {pid: cpu_seconds(pid) for _, pid in self._processes()}

    def cpu_row(self, before: dict[int, float], seconds: float) -> str:
        """Each hub process's CPU use since ``before``, in % of one core (100% = saturated:
        one Python process runs on one core at a time)."""
        after = self.cpu()
        return " ".join(
            f"{name} CPU={(after[pid] - before.get(pid, 0.0)) * 100 / seconds:.0f}%"
            for name, pid in self._processes()
        )

    @property
    def serve_pid(self) -> int:
        return self.serves[0].pid


def wait_ready(url: str, process: subprocess.Popen[bytes], within: float = 60) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"tongdao serve exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not become ready")


@contextlib.contextmanager
def running_hub(
    db: str,
    env: dict[str, str],
    workdir: Path,
    *,
    serve: bool = True,
    workers: int | None = None,
    serve_args: Sequence[str] = (),
) -> Iterator[RunningHub]:
    """``serve`` (on SQLite with its workers in process, as shipped) and, on PostgreSQL,
    ``workers`` separate ``tongdao worker`` processes (default one)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    serves: list[subprocess.Popen[bytes]] = []
    others: list[subprocess.Popen[bytes]] = []
    # The hub's own log goes to a file beside the run (its warnings would bury the figures).
    log = (workdir / f"hub-{port}.log").open("ab")
    output = {"env": env, "cwd": workdir, "stdout": log, "stderr": subprocess.STDOUT}
    try:
        if serve:
            command = tongdao("serve", "--port", str(port), *serve_args)
            serves.append(subprocess.Popen(command, **output))  # type: ignore[call-overload]
        if db == "postgres" or not serve:
            for _ in range(1 if workers is None else workers):
                others.append(subprocess.Popen(tongdao("worker"), **output))  # type: ignore[call-overload]
        if serve:
            try:
                wait_ready(base, serves[0])
            except RuntimeError:
                log.flush()
                print((workdir / f"hub-{port}.log").read_text()[-3000:])
                raise
        yield RunningHub(base, serves, others)
    finally:
        log.close()
        for child in [*serves, *others]:
            child.terminate()
        for child in [*serves, *others]:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()


def write_records(path: Path, records: Sequence[tuple[str, dict[str, str], bytes]]) -> None:
    """For ``wrk_replay.lua``: one request a line, ``path \\t name: value ... \\t body``."""
    with path.open("w", encoding="utf-8") as out:
        for target, headers, body in records:
            text = body.decode()
            if "\t" in text or "\n" in text:
                raise ValueError("wrk records cannot hold tabs or newlines")
            fields = [target, *(f"{k}: {v}" for k, v in headers.items()), text]
            out.write("\t".join(fields) + "\n")


@dataclass(frozen=True)
class WrkResult:
    requests: int
    non2xx: int
    errors: int
    seconds: float
    p50: float
    p95: float
    p99: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def row(self) -> str:
        return (
            f"{self.rate:,.0f}/s non2xx={self.non2xx} errors={self.errors} "
            f"p50={self.p50:,.1f} ms p95={self.p95:,.1f} ms p99={self.p99:,.1f} ms"
        )


def wrk(base: str, records: Path, *, threads: int, connections: int, seconds: float) -> WrkResult:
    """wrk (C, from Debian) replaying ``records`` as POSTs, each thread its own slice."""
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        base,
        "--",
        str(records),
        str(threads),
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(x for x in output.splitlines() if x.startswith("wrk:"))
    fields = dict(part.split("=") for part in line[5:].split())
    return WrkResult(
        requests=int(fields["requests"]),
        non2xx=int(fields["non2xx"]),
        errors=int(fields["errors"]),
        seconds=float(fields["seconds"]),
        p50=float(fields["p50"]),
        p95=float(fields["p95"]),
        p99=float(fields["p99"]),
    )


def wrk_ceiling(base: str, *, threads: int, connections: int, seconds: float) -> float:
    """wrk against ``GET /healthz``: what the generator and the HTTP stack manage with no
    database involved, printed beside each result to show wrk is not the limit."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", f"{base}/healthz"]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(x for x in output.splitlines() if x.startswith("Requests/sec"))
    return float(line.split()[-1])


class Receiver:
    """``bench.receiver`` in its own process: where the hub's callbacks and webhooks land."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._out = workdir / f"arrivals-{self.port}.jsonl"
        out = str(self._out)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.receiver", "--port", str(self.port), "--out", out],
            env=child_env(),
            cwd=workdir,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"{self.url}/count", timeout=1)
                return
            time.sleep(0.1)
        raise RuntimeError("the receiver did not start")

    def count(self) -> int:
        return int(httpx.get(f"{self.url}/count", timeout=5).text)

    def wait_for(self, expected: int, within: float) -> int:
        """Until ``expected`` requests have arrived or ``within`` seconds pass."""
        deadline = time.monotonic() + within
        seen = self.count()
        while seen < expected and time.monotonic() < deadline:
            time.sleep(0.2)
            seen = self.count()
        return seen

    def stop(self) -> list[dict[str, object]]:
        """Stop and return the arrivals."""
        import json

        self._process.terminate()
        self._process.wait(timeout=30)
        lines = self._out.read_text().splitlines() if self._out.exists() else []
        return [json.loads(line) for line in lines]
