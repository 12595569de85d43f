"""Webhook deliveries drained by the workers to a local receiver.

Preloads ``--deliveries`` outbox rows for one webhook subscription (a core system listening
on ``bench.receiver``, ``webhooks.allow_private_targets`` on since it is local): two events per
ticket (``ticket.created``, then ``message.created``, about 1 KB each, shaped as
``hub.webhooks`` writes them), so the per-ticket order holds back the second of each pair
until the first is delivered, as in production. Then starts the hub — ``serve`` with its
in-process workers on SQLite, ``--workers`` ``tongdao worker`` processes on PostgreSQL — and
times the drain: rows delivered per second between the first and the last arrival, with the
delivery log's HTTP latency (``webhook_attempt.latency_ms``) and each process's peak memory.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, select

from bench.common import (
    Receiver,
    database_url,
    hub_env,
    latency_row,
    load,
    migrate,
    running_hub,
)
from hub.settings import DatabaseSettings
from hub.store import OutboxRow, WebhookAttempt, WebhookSubscription, create_engine
from hub.webhooks import _payload, new_subscription, target_of


def _snapshot(ticket_id: int, now: datetime, with_message: bool) -> dict[str, object]:
    at = now.isoformat()
    return {
        "ticket": {
            "number": f"TD-20261123-{ticket_id:06d}",
            "kind": "complaint",
            "category": "credit_card.billing",
            "priority": "normal",
            "status": "open",
            "channel": "app",
            "subject": "信用卡重复扣费，请求退款",
            "queue": "cards",
            "assignee": None,
            "flags": {
                "regulator_transfer": False,
                "vulnerable_customer": False,
                "suspected_fraud": False,
            },
            "outcome": None,
            "review_state": None,
            "customer": {"id": ticket_id, "display_name": "张三", "phone": "138****0000"},
            "sla": {"policy": "cn-service-24-48-72", "first_response_due_at": at},
            "created_at": at,
            "updated_at": at,
            "resolved_at": None,
            "closed_at": None,
        },
        "message": {
            "id": ticket_id,
            "direction": "inbound",
            "channel": "app",
            "purpose": "customer",
            "author": "customer",
            "text": "我的信用卡被重复扣费，请退款。卡号尾号 1234，金额 500 元。",
            "attachments": [],
            "created_at": at,
        }
        if with_message
        else None,
        "change": {"action": "ticket.created", "actor": "system", "before": {}, "after": {}},
    }


async def preload(url: str, receiver: str, deliveries: int) -> int:
    engine = create_engine(DatabaseSettings(url=url))
    now = datetime.now(UTC)
    try:
        async with engine.begin() as conn:
            subscription = new_subscription(f"{receiver}/core/events", ["*"], "bench", False, now)
            values = subscription.model_dump(exclude={"id"})
            result = await conn.execute(
                insert(WebhookSubscription).values(**values).returning(WebhookSubscription.id)
            )
            subscription_id = result.scalar_one()
            rows = []
            for i in range(deliveries):
                ticket_id = i // 2 + 1
                event = "ticket.created" if i % 2 == 0 else "message.created"
                snapshot = _snapshot(ticket_id, now, with_message=i % 2 == 1)
                rows.append(
                    {
                        "idempotency_key": f"evt_{uuid.uuid4().hex}",
                        "target": target_of(subscription_id),
                        "purpose": event,
                        "payload": _payload(event, snapshot, False, now),
                        "ticket_id": ticket_id,
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                )
            for start in range(0, len(rows), 5000):
                await conn.execute(insert(OutboxRow), rows[start : start + 5000])
        return subscription_id
    finally:
        await engine.dispose()


async def attempt_latencies(url: str) -> tuple[list[float], dict[str, int]]:
    engine = create_engine(DatabaseSettings(url=url))
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(select(WebhookAttempt.latency_ms, WebhookAttempt.result))
            ).all()
    finally:
        await engine.dispose()
    results: dict[str, int] = {}
    for _, result in rows:
        results[result] = results.get(result, 0) + 1
    return [float(r[0]) for r in rows], results


def scenario_webhooks(db: str, args: argparse.Namespace, workdir: Path) -> None:
    receiver = Receiver(workdir)
    arrivals: list[dict[str, object]] = []
    try:
        url = database_url(db, workdir)
        env = hub_env(url, {"TONGDAO_WEBHOOKS__ALLOW_PRIVATE_TARGETS": "true", **args.hub_env})
        migrate(env, workdir)
        loaded = time.perf_counter()
        asyncio.run(preload(url, receiver.url, args.deliveries))
        print(
            f"[{db}] webhook deliveries: {args.deliveries} preloaded in "
            f"{time.perf_counter() - loaded:.1f} s ({load()})"
        )
        started = time.time()
        with running_hub(db, env, workdir, workers=args.workers) as hub:
            before = hub.cpu()
            if args.profile:
                from bench.profile import recording

                pid = hub.workers[0].pid if hub.workers else hub.serve_pid
                with recording(pid, workdir, f"{db}-webhooks"):
                    seen = receiver.wait_for(args.deliveries, within=args.drain)
            else:
                seen = receiver.wait_for(args.deliveries, within=args.drain)
            drained = time.time() - started
            print(f"[{db}] {hub.cpu_row(before, drained)} {hub.memory()} ({load()})")
        arrivals = receiver.stop()
    finally:
        if not arrivals:
            receiver.stop()
    times = sorted(float(a["at"]) for a in arrivals)  # type: ignore[arg-type]
    ids = {a["id"] for a in arrivals}
    latencies, results = asyncio.run(attempt_latencies(url))
    rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
    print(
        f"[{db}] webhook deliveries drained: {len(ids)}/{args.deliveries} distinct "
        f"({seen} requests) in {drained:.1f} s from the hub's start; {rate:,.0f}/s from first "
        f"to last arrival; delivery HTTP " + latency_row(latencies) + f"; attempts {results}"
    )
