"""The outage drill: a peer goes down during load and comes back.

One hub on a manual clock serves its channels on loopback; its workers run alongside the
load. Four peers, one at a time, go down: the CRM (customer context), WeChat's API (answers
to WeChat customers), the SMTP server (answers to mail customers) and a core system taking
webhooks. "Down" is the worst kind: the peer's port accepts connections and never answers
(``BlackHole``), so anything waiting on it waits for the hub's own timeout.

What each run proves:

* no acknowledgement waits on the peer: acks are asked and answered inside one call the hub
  holds open to the hung peer; the long form also compares ack latency during the outage
  with latency before it (same load, same workers): it must stay of the same order;
* deliveries wait (their outbox rows stay pending with the error, none dead-lettered) and
  arrive once the peer is back and the clock has moved past their backoff;
* nothing is lost (every acked message is one ticket message, every row delivered) and
  nothing reaches the customer or the peer twice.

Time moves only on the ``ManualClock``: the drill never sleeps through a backoff.
``tests/drills/test_outages.py`` runs each peer small; ``python -m bench.drills outages
--long`` runs more messages and a longer outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import statistics
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
from sqlmodel import select

from bench.drills import fail
from bench.drills.common import APP_SECRET, app_message, app_push_headers, latency_summary
from hub.app import create_app
from hub.auth import Role, create_key
from hub.runtime import Hub
from hub.sdk import generate_secret
from hub.settings import Settings
from hub.store import OutboxRow, OutboxStatus
from hub.testing import SignedWebhookReceiver, free_port, serving
from hub.testing.standins.crm import CrmRecord, CrmStandIn
from hub.testing.standins.smtp import SmtpStandIn
from hub.testing.standins.wechat_api import WeChatApiStandIn
from hub.testing.standins.wechat_push import WeChatPusher
from ticket_core import Direction, ManualClock, Message

PEERS = ("crm", "wechat", "smtp", "webhook")
HUNG_CALL_WITHIN = 120.0  # seconds of real time
PEER_TIMEOUT = 1.0  # the hub's limit on one call to a peer, seconds
STEP_SECONDS = 30  # the clock moves by this much per round
CRM_SECRET = generate_secret()
WECHAT = {"token": "drillToken2026", "app_id": "wxdrill0000000001", "secret": "drill-secret"}
WECHAT_ORIGINAL_ID = "gh_drill000001"
MAILBOX = "support@bank.test"


class BlackHole:
    """A peer that is down the worst way: its port takes connections and never answers."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connections = 0
        self._held: set[int] = set()  # the numbers of the connections held now
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    @property
    def open(self) -> int:
        return len(self._held)

    def held(self) -> frozenset[int]:
        return frozenset(self._held)

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        self._held.add(number)
        self._writers.add(writer)
        try:
            while await reader.read(65536):
                pass
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._held.discard(number)
            self._writers.discard(writer)
            writer.close()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._hold, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
            self._server = None


@dataclass
class Acks:
    """Each ack's latency, and how many were asked and answered inside one call the hub
    held open to the hung peer: an ack that waited on the peer would have outlasted it."""

    latencies: list[float] = field(default_factory=list)
    inside_a_hung_call: int = 0
    failed: list[str] = field(default_factory=list)


@dataclass
class Peer:
    """One peer of the drill: how to send the hub a customer message (returns whether it was
    acked), how to take the peer down and bring it back, and what it received."""

    name: str
    port: int
    send: Callable[[int], Awaitable[bool]]
    stop: Callable[[], Awaitable[None]]
    restart: Callable[[], Awaitable[None]]
    received: Callable[[], list[str]]  # one key per item the peer accepted (repeats kept)
    targets: str  # outbox targets that go to this peer (a prefix)


def _take(numbers: Iterator[int], count: int) -> list[int]:
    return list(itertools.islice(numbers, count))


async def _timed(peer: Peer, numbers: Iterable[int], hole: BlackHole | None, acks: Acks) -> None:
    async def one(n: int) -> None:
        held = hole.held() if hole is not None else frozenset()
        started = time.perf_counter()
        ok = await peer.send(n)
        if not ok:
            acks.failed.append(str(n))
            return
        acks.latencies.append(time.perf_counter() - started)
        if hole is not None and held & hole.held():
            acks.inside_a_hung_call += 1

    pending = iter(numbers)

    async def client() -> None:
        for n in pending:
            await one(n)

    await asyncio.gather(*(client() for _ in range(4)))


@contextlib.asynccontextmanager
async def _workers(hub: Hub) -> AsyncIterator[None]:
    """The hub's workers alongside the load, as ``tongdao serve`` runs them (time does not
    move: a failed delivery waits for the drill to move the clock)."""
    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            if not await hub.work_once():
                await asyncio.sleep(0.01)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        stop.set()
        await task


async def _drain(hub: Hub, rounds: int = 200) -> None:
    for _ in range(rounds):
        if not await hub.work_once():
            return
    fail(f"workers still busy after {rounds} rounds")


async def _rows(hub: Hub) -> list[OutboxRow]:
    async with hub.reads() as session:
        return list((await session.exec(select(OutboxRow))).all())


async def _inbound(hub: Hub) -> list[str | None]:
    async with hub.reads() as session:
        query = select(Message.external_id).where(Message.direction == Direction.inbound)
        return list((await session.exec(query)).all())


def _settings(
    database_url: str, app_callback: str, crm: str, wechat: str, smtp: int, intake: int
) -> Settings:
    retry = {"backoff_initial": 2, "backoff_max": STEP_SECONDS, "max_attempts": 200}
    return Settings(
        database={"url": database_url},
        worker={"in_process": False},
        outbox={**retry, "http_timeout": PEER_TIMEOUT, "lease_seconds": 3 * PEER_TIMEOUT + 1},
        webhooks={
            **retry,
            "allow_private_targets": True,
            "breaker_failures": 3,
            "breaker_pause_seconds": STEP_SECONDS,
            "disable_after_hours": 1000,
        },
        context={
            **retry,
            "call_timeout": PEER_TIMEOUT,
            "breaker_failures": 3,
            "breaker_pause_seconds": STEP_SECONDS,
            "cache_ttl_seconds": 1,
        },
        connectors={
            "app": {"secret": APP_SECRET, "callback_url": app_callback},
            "crm": {"base_url": crm, "secret": CRM_SECRET, "timeout_seconds": PEER_TIMEOUT},
            "wechat": {
                "api_base_url": wechat,
                # The account's send budget refills as the clock moves, and the drill's clock
                # stands still between steps: a real budget would refuse the sends, not the
                # hung peer, and the drill is about the peer.
                "rate_limit_per_second": 10000,
                "accounts": {
                    "drill": {
                        "token": WECHAT["token"],
                        "app_id": WECHAT["app_id"],
                        "app_secret": WECHAT["secret"],
                        "mode": "plaintext",
                        "original_id": WECHAT_ORIGINAL_ID,
                    }
                },
            },
            "email": {
                "address": MAILBOX,
                "display_name": "某某银行客服",
                "timeout_seconds": PEER_TIMEOUT,
                "idle": False,
                "smtp": {"host": "127.0.0.1", "port": smtp, "security": "none"},
                "intake": {"port": intake, "protocol": "smtp"},
            },
        },
    )


async def peer_outage(
    peer_name: str,
    database_url: str,
    workdir: Path,
    *,
    messages: int = 16,
    outage_steps: int = 2,
    judge_latency: bool = False,
) -> dict[str, Any]:
    """``messages`` customer messages with the peer up, at least ``messages`` more while it
    is down for ``outage_steps`` moves of the clock (each ``STEP_SECONDS``) or more, then it
    comes back. ``judge_latency`` also fails the drill on slowed acks (the long form)."""
    if peer_name not in PEERS:
        raise ValueError(f"peer is one of {', '.join(PEERS)}")
    started = time.monotonic()
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    app_backend = SignedWebhookReceiver(secret=APP_SECRET, now=clock.now)
    crm = CrmStandIn(secret=CRM_SECRET, now=clock.now)
    wechat_api = WeChatApiStandIn({WECHAT["app_id"]: WECHAT["secret"]}, now=clock.now)
    smtp = SmtpStandIn()
    hooks = SignedWebhookReceiver(secret=generate_secret(), path="/hooks", now=clock.now)
    ports = {"crm": free_port(), "wechat": free_port(), "webhook": free_port()}
    await app_backend.start()
    await crm.start(port=ports["crm"])
    await wechat_api.start(port=ports["wechat"])
    await smtp.start()
    await hooks.start(port=ports["webhook"])
    ports["smtp"] = smtp.port
    intake_port = free_port()
    settings_ = _settings(
        database_url, app_backend.url, crm.url, wechat_api.url, smtp.port, intake_port
    )
    hub = await Hub(settings_, clock=clock).open(migrate=True)
    pusher = WeChatPusher(WECHAT["token"], WECHAT["app_id"], None, WECHAT_ORIGINAL_ID)
    try:
        async with (
            serving(create_app(hub=hub, run_workers=False)) as base_url,
            httpx.AsyncClient(base_url=base_url, timeout=30) as client,
        ):
            async with hub.sessions() as session, session.begin():
                key = await create_key(session, "drill", Role.admin, clock.now())
            admin = {"authorization": f"Bearer {key}"}

            async def app_push(n: int) -> bool:
                user = f"u-{peer_name}-{n}"
                crm.add_customer(CrmRecord(f"C{n:06d}", tier="standard"), ("app_user", user))
                body = app_message(f"第{n}条：信用卡年费被重复扣收，要求退款", user)
                headers = app_push_headers(body, clock.now(), f"msg_{peer_name}_{n}")
                response = await client.post(
                    "/channels/app/messages", content=body, headers=headers
                )
                return response.status_code == 202

            async def wechat_push(n: int) -> bool:
                openid = f"oDrill{n:022d}"
                wechat_api.customer_wrote(openid, clock.now())
                message = pusher.text(
                    openid, f"第{n}条：我要投诉，信用卡被重复扣费", n + 1, clock.now()
                )
                response = await pusher.push(
                    client, "/channels/wechat/drill", message, "plaintext", clock.now()
                )
                return response.status_code == 200 and response.text == "success"

            async def mail(n: int) -> bool:
                raw = (
                    f"From: 客户{n} <customer{n}@qq.com>\r\nTo: {MAILBOX}\r\n"
                    f"Subject: 第{n}封：年费被扣了两次\r\nMessage-ID: <drill-{n}@qq.com>\r\n"
                    "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                    f"第{n}封：信用卡年费被重复扣收，请退还。\r\n"
                ).encode()
                try:
                    await aiosmtplib.send(
                        raw,
                        sender=f"customer{n}@qq.com",
                        recipients=[MAILBOX],
                        hostname="127.0.0.1",
                        port=intake_port,
                        timeout=30,
                    )
                except aiosmtplib.SMTPException:
                    return False
                return True

            def restarter(start: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[None]]:
                async def restart() -> None:
                    await start()

                return restart

            peers = {
                "crm": Peer(
                    "crm",
                    ports["crm"],
                    app_push,
                    crm.stop,
                    restarter(lambda: crm.start(port=ports["crm"])),
                    lambda: [str(r["request_id"]) for r in crm.requests],
                    "context:",
                ),
                "wechat": Peer(
                    "wechat",
                    ports["wechat"],
                    wechat_push,
                    wechat_api.stop,
                    restarter(lambda: wechat_api.start(port=ports["wechat"])),
                    lambda: [d.payload["text"]["content"] for d in wechat_api.delivered("custom")],
                    "channel:wechat",
                ),
                "smtp": Peer(
                    "smtp",
                    ports["smtp"],
                    mail,
                    smtp.stop,
                    restarter(smtp.start),
                    lambda: [str(m.message()["In-Reply-To"]) for m in smtp.received],
                    "channel:email",
                ),
                "webhook": Peer(
                    "webhook",
                    ports["webhook"],
                    app_push,
                    hooks.stop,
                    restarter(lambda: hooks.start(port=ports["webhook"])),
                    lambda: list(hooks.ids),
                    "webhook:",
                ),
            }
            peer = peers[peer_name]
            if peer_name == "webhook":
                response = await client.post(
                    "/api/v1/webhooks",
                    json={"url": hooks.url, "events": ["ticket.created"]},
                    headers=admin,
                )
                if response.status_code != 201:
                    fail(f"webhook subscription refused: {response.text}")
                hooks.secret = response.json()["secret"]

            # Before: the peer is up.
            before = Acks()
            async with _workers(hub):
                await _timed(peer, range(messages), None, before)
            await _drain(hub)
            delivered_before = len(peer.received())

            # The outage: the peer's port hangs every call; load goes on with the workers.
            await peer.stop()
            hole = BlackHole(peer.port)
            await hole.start()
            outage_began = clock.now()
            during = Acks()
            numbers = itertools.count(messages)
            async with _workers(hub):
                await _timed(peer, _take(numbers, messages // 2), hole, during)
                # At least one ack must be asked and answered inside one call the hub holds
                # open to the hung peer. Messages go one at a time until one is: each while a
                # call is held, or, with none held, after a step of the clock (a timed-out
                # call waits for its backoff and the peer's breaker) so that one is made. On
                # a loaded machine the pipeline may lag the acks by seconds.
                deadline = time.monotonic() + HUNG_CALL_WITHIN
                while not during.inside_a_hung_call:
                    if time.monotonic() > deadline:
                        rows = Counter(
                            (r.status, r.attempts, (r.last_error or "")[:60])
                            for r in await _rows(hub)
                            if r.target.startswith(peer.targets)
                        )
                        fail(
                            f"no ack was asked and answered inside a call to the hung peer in "
                            f"{HUNG_CALL_WITHIN} s ({hole.connections} calls; its rows: "
                            f"{dict(rows)})"
                        )
                    if not hole.open:
                        clock.advance(seconds=STEP_SECONDS)
                    await _timed(peer, _take(numbers, 1), hole, during)
                    waited = time.monotonic() + 2 * PEER_TIMEOUT
                    while not hole.open and time.monotonic() < waited:  # noqa: ASYNC110
                        await asyncio.sleep(0.01)
                sent = len(during.latencies) + len(during.failed)
                await _timed(peer, _take(numbers, max(messages - sent, 0)), hole, during)
            for _ in range(outage_steps):  # the peer stays down while time passes
                clock.advance(seconds=STEP_SECONDS)
                await _drain(hub)
            waiting = [r for r in await _rows(hub) if r.target.startswith(peer.targets)]
            pending = [r for r in waiting if r.status == OutboxStatus.pending]
            if len(peer.received()) != delivered_before:
                fail("the peer received something while it was down")
            # Rows tried carry the peer's error; the rest wait untried behind a breaker or
            # their ticket's earlier row.
            if not pending or not any(r.last_error for r in pending):
                fail(f"no delivery waited on the peer with its error: {len(pending)} pending")
            dead = [r for r in waiting if r.status == OutboxStatus.dead]
            if dead:
                fail(f"{len(dead)} rows dead-lettered during the outage: {dead[0].last_error}")
            calls_during_outage = hole.connections
            outage_seconds = (clock.now() - outage_began).total_seconds()
            await hole.stop()

            # Back: the peer answers again; the clock moves past every backoff.
            await peer.restart()
            steps_back = 0
            while steps_back < 200:
                steps_back += 1
                clock.advance(seconds=STEP_SECONDS)
                await _drain(hub)
                rows = await _rows(hub)
                if all(r.status == OutboxStatus.delivered for r in rows):
                    break
            else:
                statuses = Counter(r.status for r in rows)
                fail(f"not all delivered after {steps_back} steps back: {statuses}")

            # Nothing lost, nothing twice.
            acked = len(before.latencies) + len(during.latencies)
            if before.failed or during.failed:
                fail(f"messages not acked: before {before.failed}, during {during.failed}")
            inbound = await _inbound(hub)
            doubled = {k: n for k, n in Counter(inbound).items() if n > 1}
            if doubled or len(inbound) != acked:
                fail(f"{len(inbound)} ticket messages for {acked} acks; twice: {doubled}")
            mine = [r for r in rows if r.target.startswith(peer.targets)]
            received = peer.received()
            repeats = {k: n for k, n in Counter(received).items() if n > 1}
            if repeats:
                fail(f"the peer got {len(repeats)} items twice: {list(repeats)[:3]}")
            if len(set(received)) != len(mine) or len(mine) < acked:
                fail(f"the peer got {len(set(received))} items for {len(mine)} rows, {acked} acks")

            # No ack waited on the peer: proven above by the acks answered inside a hung
            # call; the latencies are judged in the long form only, on a quiet machine (a
            # loaded one slows acks before and during alike, and the suite shares its cores).
            p50_before = statistics.median(before.latencies)
            p50_during = statistics.median(during.latencies)
            slowest_before = max(before.latencies)
            if judge_latency and p50_during > 3 * p50_before + 0.05:
                fail(f"acks slowed: p50 {p50_before * 1000:.1f} ms -> {p50_during * 1000:.1f} ms")
            if judge_latency and max(during.latencies) >= max(PEER_TIMEOUT, 3 * slowest_before):
                fail(f"an ack waited like a call to the peer: {max(during.latencies):.2f} s")
            return {
                "peer": peer_name,
                "acked": acked,
                "acks before": latency_summary(before.latencies),
                "acks during": latency_summary(during.latencies),
                "acks asked and answered inside a hung call": during.inside_a_hung_call,
                "calls the hub made to the down peer": calls_during_outage,
                "rows waiting at the end of the outage": len(pending),
                "outage (clock seconds)": round(outage_seconds),
                "steps back until all delivered": steps_back,
                "delivered to the peer": len(set(received)),
                "seconds": round(time.monotonic() - started, 1),
            }
    finally:
        await hub.close()
        for stop in (app_backend.stop, crm.stop, wechat_api.stop, smtp.stop, hooks.stop):
            with contextlib.suppress(Exception):
                await stop()


SHORT = {"messages": 12, "outage_steps": 2}
LONG = {"messages": 100, "outage_steps": 10, "judge_latency": True}
