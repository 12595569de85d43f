"""Push to acknowledgement delivered at the customer's channel, at a fixed rate.

An open-loop generator of our own (wrk2 is not in Debian) sends signed app pushes at
``--rate`` per second for ``--seconds``, each from a new app user, so each opens a ticket whose
acknowledgement ("您的……已受理，工单号 ……") the hub delivers to the app's ``callback_url``: a
local receiver (``bench.receiver``) that records when each arrives. Latency is
delivered-at − sent-at per message, sent-at being the moment the schedule gave the push (so a
generator or hub that falls behind is charged for it, no coordinated omission).

The generator shows it kept its rate: it prints the rate it actually issued at and how late,
against its schedule, each push left (its own event loop's lag). Requests are signed before
the clock starts; aiohttp sends them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from bench.common import (
    Receiver,
    database_url,
    hub_env,
    latency_row,
    load,
    migrate,
    percentile,
    running_hub,
)
from hub.sdk import generate_secret, signed_headers

TEXT = "我的信用卡被重复扣费，请退款。"


@dataclass
class Sent:
    user_id: str
    due: float  # wall clock (time.time()) the schedule gave this push
    lag: float = 0.0  # seconds it left after ``due``
    acked: float | None = None  # seconds from due to the 2xx
    status: int = 0


def _requests(secret: str, count: int) -> list[tuple[str, bytes, dict[str, str]]]:
    now = datetime.now(UTC)
    run = uuid.uuid4().hex[:6]
    out = []
    for i in range(count):
        user_id = f"deliv-{run}-{i}"
        body = json.dumps({"user_id": user_id, "text": TEXT}, ensure_ascii=False).encode()
        headers = signed_headers(secret, f"bench_{uuid.uuid4().hex}", body, now)
        headers["content-type"] = "application/json"
        out.append((user_id, body, headers))
    return out


async def open_loop(
    base: str, requests: list[tuple[str, bytes, dict[str, str]]], rate: float, connections: int
) -> tuple[list[Sent], float]:
    """Send ``requests`` at ``rate``/s on schedule, whatever the answers; returns each push
    and the rate actually issued."""
    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=60)
    sent: list[Sent] = []
    async with aiohttp.ClientSession(base, connector=connector, timeout=timeout) as session:

        async def one(item: Sent, body: bytes, headers: dict[str, str]) -> None:
            try:
                async with session.post(
                    "/channels/app/messages", data=body, headers=headers
                ) as response:
                    await response.read()
                    item.status = response.status
            except (aiohttp.ClientError, TimeoutError):
                item.status = -1
                return
            item.acked = time.time() - item.due

        tasks = []
        start = time.time() + 0.2
        index = 0
        while index < len(requests):
            now = time.time()
            while index < len(requests) and start + index / rate <= now:
                user_id, body, headers = requests[index]
                item = Sent(user_id, start + index / rate)
                item.lag = now - item.due
                sent.append(item)
                tasks.append(asyncio.ensure_future(one(item, body, headers)))
                index += 1
            await asyncio.sleep(max(0.0, start + index / rate - time.time()))
        issued = len(sent) / max(1e-9, sent[-1].due + sent[-1].lag - start)
        await asyncio.gather(*tasks)
    return sent, issued


def scenario_delivered(db: str, args: argparse.Namespace, workdir: Path) -> None:
    receiver = Receiver(workdir)
    arrivals: list[dict[str, object]] = []
    try:
        secret = generate_secret()
        env = hub_env(
            database_url(db, workdir),
            {
                "TONGDAO_CONNECTORS__APP__SECRET": secret,
                "TONGDAO_CONNECTORS__APP__CALLBACK_URL": f"{receiver.url}/app/callback",
                **args.hub_env,
            },
        )
        migrate(env, workdir)
        count = int(args.rate * args.seconds)
        requests = _requests(secret, count)
        with running_hub(db, env, workdir, workers=args.workers) as hub:
            print(
                f"[{db}] push → acknowledgement delivered: {args.rate:g}/s for "
                f"{args.seconds:g} s, {count} pushes, each a new ticket ({load()})"
            )
            started, before = time.time(), hub.cpu()
            sent, issued = asyncio.run(open_loop(hub.base, requests, args.rate, args.connections))
            acked = sum(1 for s in sent if 200 <= s.status < 300)
            lags = [s.lag * 1000 for s in sent]
            print(
                f"[{db}] generator: issued {issued:,.0f}/s (asked {args.rate:g}/s), "
                f"lag behind schedule p50={percentile(lags, 50):.1f} ms "
                f"p99={percentile(lags, 99):.1f} ms max={max(lags):.1f} ms"
            )
            print(
                f"[{db}] pushes acked 2xx: {acked}/{count}, ack "
                + latency_row([s.acked * 1000 for s in sent if s.acked is not None])
                + f" ({load()})"
            )
            seen = receiver.wait_for(acked, within=args.drain)
            waited = time.time() - started
            print(f"[{db}] {hub.cpu_row(before, waited)} {hub.memory()}")
        arrivals = receiver.stop()
    finally:
        if not arrivals:
            receiver.stop()
    _report(db, sent, arrivals, seen, waited, args)


def _report(
    db: str,
    sent: list[Sent],
    arrivals: list[dict[str, object]],
    seen: int,
    waited: float,
    args: argparse.Namespace,
) -> None:
    due = {s.user_id: s.due for s in sent}
    first: dict[str, float] = {}
    for arrival in arrivals:
        user = arrival.get("user_id")
        if isinstance(user, str) and user in due and user not in first:
            first[user] = float(arrival["at"])  # type: ignore[arg-type]
    latencies = sorted(first[u] - due[u] for u in first)
    missing = len(sent) - len(latencies)
    # Undelivered pushes count as slower than anything delivered.
    padded = [x * 1000 for x in latencies] + [float("inf")] * missing
    if latencies:
        span = max(first.values()) - min(s.due for s in sent)
        rate = len(latencies) / span
    else:
        rate = 0.0
    print(
        f"[{db}] acknowledgements delivered: {len(latencies)}/{len(sent)} within "
        f"{waited:.0f} s ({seen} callbacks arrived), {rate:,.0f}/s; delivered-at − sent-at "
        + latency_row(padded)
        + (f"; {missing} not delivered (counted as ∞)" if missing else "")
        + f" ({load()})"
    )
