"""``python -m bench``: push acknowledgement throughput and latency on SQLite and PostgreSQL.

Starts a real ``tongdao serve`` (workers in-process on SQLite, as shipped; on PostgreSQL a
``serve`` and a ``tongdao worker``), drives it with signed app pushes from our own load
generator, and prints throughput, p50/p95/p99 and the hub's peak memory (VmHWM). The
``scheduler`` scenario times the SLA tick with a million open tickets (``bench/scheduler.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

from bench import loadgen
from bench.scheduler import scenario_scheduler
from hub.sdk import generate_secret, signed_headers
from hub.testing import free_port

TONGDAO = str(Path(sys.executable).with_name("tongdao"))
PG_ADMIN = os.environ.get("TONGDAO_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def _pushes(secret: str) -> loadgen.Callable[[int, int], list[loadgen.Request]]:
    def build(process: int, count: int) -> list[loadgen.Request]:
        now = datetime.now(UTC)
        out = []
        for i in range(count):
            body = json.dumps(
                {"user_id": f"bench-{process}-{i % 500}", "text": "我的信用卡被重复扣费，请退款。"},
                ensure_ascii=False,
            ).encode()
            headers = signed_headers(secret, f"bench_{uuid.uuid4().hex}", body, now)
            out.append(
                (
                    "POST",
                    "/channels/app/messages",
                    body,
                    {**headers, "content-type": "application/json"},
                )
            )
        return out

    return build


def _wrk(base: str, secret: str, args: argparse.Namespace, workdir: Path, db: str) -> None:
    """wrk (C, from Debian) replaying pushes signed in advance; far lighter than our client."""
    threads = args.processes
    records = workdir / "pushes.tsv"
    now = datetime.now(UTC)
    with records.open("w", encoding="utf-8") as out:
        for i in range(int(args.seconds * 8000)):
            body = json.dumps(
                {"user_id": f"bench-{i % 500}", "text": "我的信用卡被重复扣费，请退款。"},
                ensure_ascii=False,
            ).encode()
            headers = signed_headers(secret, f"bench_{uuid.uuid4().hex}", body, now)
            out.write(
                "\t".join(
                    [
                        headers["webhook-id"],
                        headers["webhook-timestamp"],
                        headers["webhook-signature"],
                        body.decode(),
                    ]
                )
                + "\n"
            )
    script = Path(__file__).with_name("wrk_pushes.lua")
    for label, extra in (("GET /healthz (ceiling)", []), ("signed app pushes acknowledged", None)):
        command = ["wrk", f"-t{threads}", f"-c{args.connections}", f"-d{args.seconds:g}s"]
        if extra is None:
            command += ["-s", str(script), base, "--", str(records), str(threads)]
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            line = next(x for x in output.splitlines() if x.startswith("wrk:"))
            fields = dict(part.split("=") for part in line[5:].split())
            rate = int(fields["requests"]) / float(fields["seconds"])
            print(
                f"[{db}] wrk {label}: {rate:,.0f}/s non2xx={fields['non2xx']} "
                f"errors={fields['errors']} p50={fields['p50']} ms p95={fields['p95']} ms "
                f"p99={fields['p99']} ms"
            )
        else:
            output = subprocess.run(
                [*command, f"{base}/healthz"], capture_output=True, text=True, check=True
            ).stdout
            rate = next(x for x in output.splitlines() if x.startswith("Requests/sec"))
            print(f"[{db}] wrk {label}: {rate.split()[-1]}/s")


def _health(_: int, count: int) -> list[loadgen.Request]:
    return [("GET", "/healthz", b"", {})] * count


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _create_pg(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def _wait_ready(url: str, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not become ready")


def _database_url(db: str, workdir: Path) -> str:
    """A fresh, empty database for one scenario."""
    if db == "sqlite":
        return f"sqlite+aiosqlite:///{workdir}/bench-{uuid.uuid4().hex[:8]}.db"
    name = f"tongdao_bench_{os.getpid()}"
    asyncio.run(_create_pg(name))
    return PG_ADMIN.replace("postgresql://", "postgresql+asyncpg://").rsplit("/", 1)[0] + f"/{name}"


def scenario_app_ack(db: str, args: argparse.Namespace, workdir: Path) -> None:
    secret = generate_secret()
    port = free_port()
    url = _database_url(db, workdir)
    env = {
        **os.environ,
        "TONGDAO_DATABASE__URL": url,
        "TONGDAO_CONNECTORS__APP__SECRET": secret,
        "TONGDAO_LOG__LEVEL": "WARNING",
        "TONGDAO_DATABASE__POOL_SIZE": "20",
    }
    subprocess.run([TONGDAO, "migrate"], env=env, check=True, capture_output=True, cwd=workdir)
    children = [subprocess.Popen([TONGDAO, "serve", "--port", str(port)], env=env, cwd=workdir)]
    if db == "postgres":
        children.append(subprocess.Popen([TONGDAO, "worker"], env=env, cwd=workdir))
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base)
        if shutil.which("wrk"):
            _wrk(base, secret, args, workdir, db)
            print(f"[{db}] serve peak RSS={_peak_rss_mb(children[0].pid):.0f} MB")
            return
        per_process = int(args.seconds * 20000)
        ceiling = loadgen.run(
            base,
            _health,
            seconds=args.seconds,
            processes=args.processes,
            connections=args.connections,
            per_process=per_process,
        )
        result = loadgen.run(
            base,
            _pushes(secret),
            seconds=args.seconds,
            processes=args.processes,
            connections=args.connections,
            per_process=per_process,
        )
        rss = _peak_rss_mb(children[0].pid)
        print(f"[{db}] generator ceiling, " + ceiling.row("GET /healthz"))
        print(
            f"[{db}] "
            + result.row("signed app pushes acknowledged")
            + f" serve peak RSS={rss:.0f} MB"
        )
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--processes", type=int, default=2, help="load generator processes")
    parser.add_argument("--connections", type=int, default=32, help="per generator process")
    parser.add_argument(
        "--scenario", choices=["ack", "scheduler", "all"], default="all", help="what to measure"
    )
    parser.add_argument("--tickets", type=int, default=1_000_000, help="scheduler: open tickets")
    parser.add_argument("--due", type=int, default=100, help="scheduler: tickets due per tick")
    args = parser.parse_args()
    machine = f"{platform.platform()}, {os.cpu_count()} cores"
    print(f"machine: {machine}, Python {platform.python_version()}")
    print(
        f"load generator: wrk when installed (else bench/loadgen.py), {args.processes} "
        f"threads/processes x {args.connections} connections, requests signed in advance"
    )
    for db in ["sqlite", "postgres"] if args.db == "both" else [args.db]:
        with tempfile.TemporaryDirectory() as tmp:
            if args.scenario in ("ack", "all"):
                scenario_app_ack(db, args, Path(tmp))
            if args.scenario in ("scheduler", "all"):
                scenario_scheduler(_database_url(db, Path(tmp)), db, args.tickets, args.due)


if __name__ == "__main__":
    main()
