"""``python -m bench.drills [crash|outages|bad-input|all] [--long] [--db sqlite|postgres|both]``

Runs the drills of ``tests/drills/`` from the same code (``bench/drills/``), by default in
their short form; ``--long`` runs more pushes, more kills, longer outages and many more
generated inputs. Prints each drill's counts; exits 1 when any drill fails. PostgreSQL is
``TONGDAO_TEST_POSTGRES_URL``'s server (default ``postgresql+asyncpg://postgres@127.0.0.1:5432/test``).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.drills import bad_input, crash, outages
from bench.drills.common import fresh_database
from hub import logs

Drill = tuple[str, str, Callable[[str, Path], Awaitable[dict[str, Any]]]]  # name, db, run


def _drills(which: str, long: bool, databases: list[str], seed: int | None) -> list[Drill]:
    chosen: list[Drill] = []
    if which in ("crash", "all"):
        sizes = crash.LONG if long else crash.SHORT
        if "sqlite" in databases:
            chosen.append(
                (
                    "crash: serve killed on SQLite",
                    "sqlite",
                    lambda url, work, sizes=sizes: crash.killed_serve_on_sqlite(
                        url, work, **sizes["killed_serve_on_sqlite"]
                    ),
                )
            )
        if "postgres" in databases:
            chosen.append(
                (
                    "crash: workers killed on PostgreSQL",
                    "postgres",
                    lambda url, work, sizes=sizes: crash.killed_workers_on_postgres(
                        url, work, **sizes["killed_workers_on_postgres"]
                    ),
                )
            )
            chosen.append(
                (
                    "crash: two workers on PostgreSQL",
                    "postgres",
                    lambda url, work, sizes=sizes: crash.two_workers_on_postgres(
                        url, work, **sizes["two_workers_on_postgres"]
                    ),
                )
            )
    if which in ("outages", "all"):
        sizes = outages.LONG if long else outages.SHORT
        for db in databases:
            for peer in outages.PEERS:
                chosen.append(
                    (
                        f"outage: {peer} down ({db})",
                        db,
                        lambda url, work, peer=peer, sizes=sizes: outages.peer_outage(
                            peer, url, work, **sizes
                        ),
                    )
                )
    if which in ("bad-input", "all"):
        examples = 2000 if long else 80
        per_operation = 100 if long else 5

        async def fuzz(run: Callable[..., dict[str, Any]]) -> dict[str, Any]:
            return await asyncio.to_thread(run, examples, seed)

        chosen += [
            (
                "bad input: API (schemathesis)",
                "sqlite",
                lambda url, work: bad_input.openapi_answers_no_5xx(
                    url, work, examples=per_operation, seed_=seed
                ),
            ),
            ("bad input: WeChat XML", "", lambda url, work: fuzz(bad_input.wechat_xml_parser_fuzz)),
            ("bad input: MIME mail", "", lambda url, work: fuzz(bad_input.mime_parser_fuzz)),
            ("bad input: 12378 CSV", "", lambda url, work: fuzz(bad_input.hotline_csv_parser_fuzz)),
        ]
    return chosen


async def _run(drills: list[Drill]) -> int:
    failed = 0
    for name, db, run in drills:
        started = time.monotonic()
        print(f"── {name}", flush=True)
        with tempfile.TemporaryDirectory(prefix="tongdao-drill-") as tmp:
            work = Path(tmp)
            try:
                if db:
                    async with fresh_database(db, work) as url:
                        counts = await run(url, work)
                else:
                    counts = await run("", work)
            except Exception:
                failed += 1
                print(f"   FAILED after {time.monotonic() - started:.1f} s", flush=True)
                traceback.print_exc()
                continue
        for key, value in counts.items():
            print(f"   {key}: {value}")
    print(f"{len(drills) - failed} of {len(drills)} drills held")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.drills", description=__doc__)
    parser.add_argument(
        "drill", nargs="?", default="all", choices=["crash", "outages", "bad-input", "all"]
    )
    parser.add_argument("--long", action="store_true", help="the long form")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--seed", type=int, default=None, help="bad input: replay a seed (long form: random)"
    )
    args = parser.parse_args(argv)
    # The in-process hubs' warnings stay visible; their per-delivery debug lines would bury
    # the counts (the killed processes keep their own logs in the drill's directory).
    logs.configure("WARNING")
    databases = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    seed = args.seed
    if seed is None and args.long:
        seed = random.randrange(2**32)
    if seed is not None:
        print(f"bad-input seed: {seed} (replay with --seed {seed})")
    return asyncio.run(_run(_drills(args.drill, args.long, databases, seed)))


if __name__ == "__main__":
    sys.exit(main())
