"""``python -m bench``: the benchmark scenarios, on SQLite and PostgreSQL.

Each starts a real hub (``serve`` with its workers in process on SQLite, as shipped; on
PostgreSQL a ``serve`` and ``--workers`` ``tongdao worker`` processes) on a fresh database
and prints throughput, p50/p95/p99 latency, the hub's peak memory (VmHWM) and the machine's
load at the time:

* ``ack``: signed app pushes acknowledged durably (wrk replaying pushes signed in advance);
* ``wechat``: WeChat safe-mode pushes acknowledged (wrk replaying pushes encrypted and
  signed in advance by ``hub.testing.standins.wechat_push``);
* ``delivered``: push → acknowledgement delivered at the app's callback, at a fixed rate
  from our own open-loop generator (``bench/delivered.py``);
* ``webhooks``: preloaded webhook deliveries drained to a local receiver;
* ``scheduler``: the SLA tick with a million open tickets (``bench/scheduler.py``);
* ``import``: ``tongdao import tickets`` of a generated million-ticket file
  (``bench/ticket_import.py``);
* ``console``: the console's queue page with 100,000 open tickets (``bench/console_queue.py``).

``--profile`` samples the ``serve`` process with py-spy during the ack and wechat runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

from bench.acks import scenario_app_ack, scenario_wechat_ack
from bench.common import database_url, load
from bench.console_queue import scenario_console_queue
from bench.delivered import scenario_delivered
from bench.scheduler import scenario_scheduler
from bench.ticket_import import scenario_import
from bench.webhook_drain import scenario_webhooks

SCENARIOS = ["ack", "wechat", "delivered", "webhooks", "scheduler", "import", "console"]


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--scenario",
        action="append",
        choices=[*SCENARIOS, "all"],
        help="what to measure (repeatable; default all)",
    )
    parser.add_argument("--seconds", type=float, default=10, help="length of each run")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=64, help="wrk/generator connections")
    parser.add_argument("--workers", type=int, default=1, help="worker processes on PostgreSQL")
    parser.add_argument("--profile", action="store_true", help="py-spy the serve process")
    parser.add_argument(
        "--serve-arg",
        dest="serve_args",
        action="append",
        default=[],
        help="passed on to `tongdao serve`",
    )
    parser.add_argument(
        "--hub-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra TONGDAO_* setting for the hub (repeatable)",
    )
    parser.add_argument("--rate", type=float, default=1000, help="delivered: pushes per second")
    parser.add_argument(
        "--drain", type=float, default=60, help="delivered/webhooks: seconds to wait for the rest"
    )
    parser.add_argument("--deliveries", type=int, default=20000, help="webhooks: rows preloaded")
    parser.add_argument(
        "--tickets", type=int, default=1_000_000, help="scheduler: open tickets; import: tickets"
    )
    parser.add_argument("--batch", type=int, default=10_000, help="import: tickets per batch")
    parser.add_argument(
        "--queue-tickets", type=int, default=100_000, help="console: open tickets in the queue"
    )
    parser.add_argument("--due", type=int, default=100, help="scheduler: tickets due per tick")
    args = parser.parse_args()
    args.hub_env = dict(item.split("=", 1) for item in args.hub_env)
    chosen = args.scenario or ["all"]
    scenarios = SCENARIOS if "all" in chosen else [s for s in SCENARIOS if s in chosen]
    if shutil.which("wrk") is None and {"ack", "wechat"} & set(scenarios):
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    cpus = os.cpu_count()
    print(f"machine: {platform.platform()}, {cpus} cores, Python {platform.python_version()}")
    print(
        f"{load()}; wrk {args.threads} threads x {args.connections} connections for ack and "
        "wechat (requests prepared in advance); our open-loop aiohttp generator for delivered"
    )
    with tempfile.TemporaryDirectory() as shared:
        for db in ["sqlite", "postgres"] if args.db == "both" else [args.db]:
            for scenario in scenarios:
                _run(scenario, db, args, Path(shared))


def _run(scenario: str, db: str, args: argparse.Namespace, shared: Path) -> None:
    """One scenario on a fresh database; ``shared`` keeps what both databases use (the
    import's generated file)."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if scenario == "ack":
            scenario_app_ack(db, args, workdir)
        elif scenario == "wechat":
            scenario_wechat_ack(db, args, workdir)
        elif scenario == "delivered":
            scenario_delivered(db, args, workdir)
        elif scenario == "webhooks":
            scenario_webhooks(db, args, workdir)
        elif scenario == "scheduler":
            scenario_scheduler(database_url(db, workdir), db, args.tickets, args.due)
        elif scenario == "import":
            scenario_import(database_url(db, workdir), db, shared, args.tickets, args.batch)
        else:
            scenario_console_queue(database_url(db, workdir), db, args.queue_tickets)


if __name__ == "__main__":
    main()
