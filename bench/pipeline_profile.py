"""The pipeline alone, in process: stored envelopes → tickets, CPU per ticket.

``python -m bench.pipeline_profile [--db sqlite|postgres] [--envelopes N] [--profile FILE]``

Preloads ``--envelopes`` app pushes (each a new app user, the ``delivered`` scenario's text)
as stored envelopes in a fresh, migrated database, then runs the hub's own
``Pipeline.process_once`` rounds (``worker.batch_size`` each, as ``Hub.work_once`` does) until
none is left, and reports envelopes → tickets per second and milliseconds of this process's
CPU (``time.process_time``) per ticket — the figure that holds on a shared, loaded machine,
where wall time does not. Then it runs the outbox dispatcher until the acknowledgements are
delivered to a stand-in app backend in its own process (``bench.receiver``), and reports that
phase's CPU per delivery too. No HTTP on the way in: the pushes' signatures were checked at
the ack, which this harness leaves out.

``--profile out.prof`` runs the pipeline phase under cProfile (deterministic, so it does not
depend on getting the core) and prints the top functions by cumulative and own time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from bench.common import Receiver, database_url, load
from hub import logs
from hub.ingest import store_envelope
from hub.runtime import Hub
from hub.sdk import InboundEnvelope, generate_secret
from hub.settings import Settings
from hub.store import Envelope, EnvelopeStatus

TEXT = "我的信用卡被重复扣费，请退款。"


async def _preload(hub: Hub, count: int) -> None:
    now = datetime.now(UTC)
    run = uuid.uuid4().hex[:6]
    for start in range(0, count, 500):
        async with hub.sessions() as session, session.begin():
            for i in range(start, min(count, start + 500)):
                body = json.dumps(
                    {"user_id": f"prof-{run}-{i}", "text": TEXT}, ensure_ascii=False
                ).encode()
                await store_envelope(
                    session,
                    InboundEnvelope(
                        channel="app",
                        external_id=f"msg_{run}_{i}",
                        body=body,
                        content_type="application/json",
                        received_at=now,
                        headers={"webhook-timestamp": str(int(now.timestamp()))},
                    ),
                )


async def _count(hub: Hub, status: EnvelopeStatus) -> int:
    async with hub.sessions() as session:
        query = select(func.count()).select_from(Envelope).where(Envelope.status == status)
        return int((await session.exec(query)).one()[0])  # type: ignore[call-overload]


async def run(
    db: str, url: str, count: int, warm: int, profile: str | None, receiver: Receiver | None
) -> None:
    settings = Settings(
        database={"url": url, "pool_size": 20},
        worker={"in_process": False},
        log={"level": "WARNING"},
        connectors={
            "app": {
                "secret": generate_secret(),
                "callback_url": f"{receiver.url}/app/callback"
                if receiver
                else "http://127.0.0.1:9/",
            }
        },
    )
    logs.configure(settings.log.level, settings.log.json_format)
    hub = await Hub(settings).open(migrate=True)
    try:
        hub.warm_up()
        batch = settings.worker.batch_size
        # A few tickets first, so one-time work (first statements compiled, caches
        # filled) is not charged to the measured ones.
        await _preload(hub, warm)
        while await hub.pipeline.process_once(batch):
            pass
        await _preload(hub, count)
        print(f"[{db}] {count} envelopes preloaded; pipeline rounds of {batch} ({load()})")
        profiler = cProfile.Profile(time.thread_time) if profile else None
        wall, cpu = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        while await hub.pipeline.process_once(batch):
            pass
        if profiler:
            profiler.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        processed = await _count(hub, EnvelopeStatus.processed) - warm
        print(
            f"[{db}] pipeline: {processed}/{count} processed in {wall:.2f} s wall, "
            f"{processed / wall:,.0f} tickets/s wall, {cpu * 1000 / processed:.2f} ms CPU "
            f"per ticket ({processed / cpu:,.0f}/s per core) ({load()})"
        )
        if profiler and profile:
            profiler.dump_stats(profile)
            stats = pstats.Stats(profile)
            stats.sort_stats("cumulative").print_stats(45)
            stats.sort_stats("tottime").print_stats(30)
        if receiver:
            wall, cpu = time.perf_counter(), time.process_time()
            while await hub.dispatcher.dispatch_once(batch):
                pass
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            seen = receiver.wait_for(count + warm, within=30)
            print(
                f"[{db}] dispatcher: {seen - warm} acknowledgements delivered in "
                f"{wall:.2f} s wall, {cpu * 1000 / max(1, count):.2f} ms CPU per delivery "
                f"({load()})"
            )
    finally:
        await hub.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline_profile", description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--envelopes", type=int, default=500)
    parser.add_argument("--warm", type=int, default=20, help="tickets opened before measuring")
    parser.add_argument("--profile", help="write cProfile stats of the pipeline phase here")
    parser.add_argument("--no-deliver", action="store_true", help="skip the dispatcher phase")
    args = parser.parse_args()
    for db in ["sqlite", "postgres"] if args.db == "both" else [args.db]:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            url = database_url(db, workdir)
            receiver = None if args.no_deliver else Receiver(workdir)
            try:
                asyncio.run(run(db, url, args.envelopes, args.warm, args.profile, receiver))
            finally:
                if receiver:
                    receiver.stop()


if __name__ == "__main__":
    main()
