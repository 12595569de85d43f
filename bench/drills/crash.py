"""The crash drill with real processes: ``tongdao serve`` and ``tongdao worker`` are started as
children, loaded with signed app pushes, killed with SIGKILL mid-load and restarted.

What it proves (the issue's words): a killed process loses no acknowledged push and makes no
ticket message twice (each acknowledged push is exactly one inbound ticket message, and the
envelope points at it); every outbox row is delivered, none dead-lettered or lost; and a row
reaches the peer a second time only when the process that held it was killed and its lease
ran out (two workers on PostgreSQL that are never killed deliver each row exactly once).
The stand-in app backend behind ``callback_url`` counts every POST it gets.

``tests/drills/test_crash.py`` runs each scenario once, small; ``python -m bench.drills crash
--long`` runs the same functions with more pushes, more kills and longer.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import signal
import sys
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web
from sqlmodel import select

from bench.drills import fail
from bench.drills.common import APP_SECRET, app_message, app_push_headers
from hub.settings import DatabaseSettings
from hub.store import (
    Envelope,
    EnvelopeStatus,
    OutboxRow,
    OutboxStatus,
    create_engine,
    session_factory,
)
from hub.testing import SignedWebhookReceiver, free_port
from ticket_core import Direction, Message, Ticket

TONGDAO = Path(sys.executable).with_name("tongdao")
_IDEMPOTENCY_KEY = re.compile(r"msg_[0-9a-f]{32}")
BATCH_SIZE = 50  # the workers' default batch: the most rows one claim can hold
SETTLE_SECONDS = 60.0
KILL_AFTER_CALLBACKS = 10
# 40 customers share the messages, so two workers meet the same new customers at once.
CUSTOMERS = 40


# --- the stand-in app backend -------------------------------------------------------------


class AppBackend(SignedWebhookReceiver):
    """The stand-in app backend, which also notes which process sent each POST (every worker
    gets its own ``?via=`` on the callback URL) and can answer after ``delay`` seconds, so
    that a worker killed at a random moment is likely caught between sending and recording."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__(secret=APP_SECRET)
        self.delay = delay
        self.senders: dict[str, Counter[str]] = defaultdict(Counter)  # process -> POSTs per id
        self.on_post: Callable[[str, str], None] | None = None  # (sender, webhook-id)

    async def _handle(self, request: web.Request) -> web.Response:
        await request.read()  # kept by aiohttp for the parent's handler
        if self.on_post is not None:
            self.on_post(request.query.get("via", "serve"), request.headers["webhook-id"])
        if self.delay:
            await asyncio.sleep(self.delay)
        response = await super()._handle(request)
        if response.status == 200:
            sender = request.query.get("via", "serve")
            self.senders[sender][request.headers["webhook-id"]] += 1
        return response


@contextlib.asynccontextmanager
async def app_backend(delay: float = 0.0) -> AsyncIterator[AppBackend]:
    receiver = AppBackend(delay)
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()


# --- child processes ----------------------------------------------------------------------


@dataclass
class Child:
    name: str
    process: asyncio.subprocess.Process
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 40) -> str:
        return f"--- {self.name} (exit {self.process.returncode}) ---\n" + "\n".join(
            self.log().splitlines()[-lines:]
        )

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flushing, no goodbye to the database."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.kill()
                await self.process.wait()


class Processes:
    """Every child a test starts, so that ``finally`` can end them all."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd = cwd
        self.env = env
        self.children: list[Child] = []
        self._numbers = itertools.count(1)

    async def start(self, name: str, *args: str, **env: str) -> Child:
        log_path = self.cwd / f"{name}-{next(self._numbers)}.log"
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                str(TONGDAO),
                *args,
                cwd=self.cwd,
                env={**self.env, **env},
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )
        child = Child(name, process, log_path)
        self.children.append(child)
        return child

    async def serve(self, port: int) -> Child:
        child = await self.start("serve", "serve", "--port", str(port))
        await wait_ready(child, f"http://127.0.0.1:{port}")
        return child

    async def worker(self, name: str) -> Child:
        via = f"{self.env['TONGDAO_CONNECTORS__APP__CALLBACK_URL']}?via={name}"
        child = await self.start(name, "worker", TONGDAO_CONNECTORS__APP__CALLBACK_URL=via)
        deadline = time.monotonic() + 30
        while "worker started" not in child.log():
            if child.process.returncode is not None or time.monotonic() > deadline:
                fail(f"{name} did not start\n{child.tail()}")
            await asyncio.sleep(0.05)
        return child

    def failed_attempts(self) -> set[str]:
        """Idempotency keys whose attempt a live process recorded as failed (a POST that
        timed out on the hub's side under load): sent again by design, kill or no kill."""
        return {
            key
            for child in self.children
            for line in child.log().splitlines()
            if "outbox.attempt" in line and "retry" in line
            for key in _IDEMPOTENCY_KEY.findall(line)
        }

    def tails(self) -> str:
        return "\n".join(child.tail() for child in self.children)

    async def stop_all(self) -> None:
        await asyncio.gather(*(child.stop() for child in self.children))


def hub_env(
    database_url: str, callback_url: str, *, in_process: bool, lease: float
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TONGDAO_")}
    env.update(
        TONGDAO_DATABASE__URL=database_url,
        TONGDAO_CONNECTORS__APP__SECRET=APP_SECRET,
        TONGDAO_CONNECTORS__APP__CALLBACK_URL=callback_url,
        TONGDAO_WORKER__POLL_INTERVAL="0.05",
        TONGDAO_WORKER__IN_PROCESS="true" if in_process else "false",
        TONGDAO_WORKER__BATCH_SIZE=str(BATCH_SIZE),
        # A killed process's claims on outbox rows run out after the lease; keep it short so
        # the drill finishes, yet far longer than one local delivery takes.
        TONGDAO_OUTBOX__LEASE_SECONDS=str(lease),
        TONGDAO_OUTBOX__BACKOFF_INITIAL="0.5",
        TONGDAO_OUTBOX__HTTP_TIMEOUT=str(lease / 3),  # a lease must outlast a send
        TONGDAO_LOG__LEVEL="WARNING",
    )
    return env


async def wait_ready(child: Child, base_url: str, within: float = 30) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as client:
        while True:
            if child.process.returncode is not None:
                fail(f"{child.name} exited before it was ready\n{child.tail()}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/readyz")).status_code == 200:
                    return
            if time.monotonic() > deadline:
                fail(f"{child.name} not ready after {within} s\n{child.tail()}")
            await asyncio.sleep(0.05)


# --- the peer: the app's backend pushing customer messages --------------------------------


def push_body(msg_id: str, customers: int | None) -> bytes:
    """The same body on every retry of one message; ``customers`` share the messages, or each
    message comes from its own customer."""
    number = int(msg_id.rsplit("-", 1)[1])
    user = number % customers if customers else number
    return app_message(f"第{number}条：信用卡被重复扣费了，要求退款", user_id=f"u-{user}")


@dataclass
class Load:
    acked: dict[str, tuple[int, str]] = field(default_factory=dict)  # id -> (status, receipt)
    failed: dict[str, str] = field(default_factory=dict)  # id -> what went wrong


async def push_all(
    base_url: str,
    msg_ids: list[str],
    *,
    clients: int = 20,
    on_ack: Callable[[Load], None] | None = None,
    load: Load | None = None,
    customers: int | None = CUSTOMERS,
    within: float | None = None,
) -> Load:
    """Push every id once, ``clients`` at a time, each with its own connection pool; signed
    with the real time, as a peer does on every (re)try. Outcomes go into ``load``."""
    load = load if load is not None else Load()
    pending = iter(msg_ids)

    async def client_loop() -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
            for msg_id in pending:
                body = push_body(msg_id, customers)
                headers = app_push_headers(body, datetime.now(UTC), msg_id)
                try:
                    response = await client.post(
                        "/channels/app/messages", content=body, headers=headers
                    )
                except httpx.HTTPError as exc:
                    load.failed[msg_id] = type(exc).__name__
                    continue
                if response.status_code in (200, 202):
                    load.acked[msg_id] = (response.status_code, response.json()["receipt"])
                    if on_ack is not None:
                        on_ack(load)
                else:
                    load.failed[msg_id] = f"HTTP {response.status_code}: {response.text[:200]}"

    within = within if within is not None else max(40.0, len(msg_ids) / 10)
    await asyncio.wait_for(asyncio.gather(*(client_loop() for _ in range(clients))), within)
    return load


# --- what the database says ---------------------------------------------------------------


@dataclass
class Snapshot:
    envelopes: dict[str, str]  # external id -> status
    envelope_messages: dict[str, int | None]  # external id -> message id
    inbound: list[tuple[str | None, str, int | None]]  # (external id, channel, message id)
    tickets: set[str]
    outbox: dict[str, tuple[str, int, str | None]]  # key -> (status, attempts, ticket number)
    outbox_purposes: Counter[str]

    @property
    def unfinished_envelopes(self) -> int:
        return sum(status != EnvelopeStatus.processed for status in self.envelopes.values())

    @property
    def undelivered(self) -> int:
        return sum(status != OutboxStatus.delivered for status, _, _ in self.outbox.values())

    def summary(self) -> str:
        return (
            f"envelopes={len(self.envelopes)} unfinished={self.unfinished_envelopes} "
            f"inbound={len(self.inbound)} tickets={len(self.tickets)} outbox={len(self.outbox)} "
            f"undelivered={self.undelivered} "
            f"outbox statuses={Counter(s for s, _, _ in self.outbox.values())}"
        )


class Database:
    def __init__(self, url: str) -> None:
        self.engine = create_engine(DatabaseSettings(url=url))
        self.sessions = session_factory(self.engine)

    async def snapshot(self) -> Snapshot:
        async with self.sessions() as session:
            envelopes = (await session.exec(select(Envelope))).all()
            inbound = (
                await session.exec(select(Message).where(Message.direction == Direction.inbound))
            ).all()
            tickets = (await session.exec(select(Ticket.number))).all()
            outbox = (await session.exec(select(OutboxRow))).all()
        return Snapshot(
            envelopes={e.external_id: e.status for e in envelopes},
            envelope_messages={e.external_id: e.message_id for e in envelopes},
            inbound=[(m.external_id, m.channel, m.id) for m in inbound],
            tickets={number for number in tickets if number},
            outbox={
                r.idempotency_key: (r.status, r.attempts, r.payload.get("ticket_number"))
                for r in outbox
            },
            outbox_purposes=Counter(r.purpose for r in outbox),
        )

    async def close(self) -> None:
        await self.engine.dispose()


async def settle(
    db: Database,
    receiver: SignedWebhookReceiver,
    expected: set[str],
    processes: Processes,
    within: float = SETTLE_SECONDS,
) -> Snapshot:
    """Wait until every expected envelope is processed, every outbox row delivered and the
    app backend has each row's key; fail with the processes' logs if that takes too long."""
    deadline = time.monotonic() + within
    while True:
        snap = await db.snapshot()
        dead = [key for key, (status, _, _) in snap.outbox.items() if status == OutboxStatus.dead]
        assert not dead, f"dead-lettered: {dead[:5]}\n{snap.summary()}\n{processes.tails()}"
        if (
            set(snap.envelopes) >= expected
            and snap.unfinished_envelopes == 0
            and len(snap.outbox) >= len(snap.tickets) > 0
            and snap.undelivered == 0
            and set(receiver.ids) >= set(snap.outbox)
        ):
            return snap
        if time.monotonic() > deadline:
            fail(
                f"not settled after {within} s: {snap.summary()} "
                f"receiver ids={len(set(receiver.ids))}\n{processes.tails()}"
            )
        # Each look reads every row: with thousands, look less often (on SQLite the reads
        # share the one database file with the workers).
        await asyncio.sleep(max(0.2, len(snap.envelopes) / 2000))


def assert_each_acked_push_is_one_ticket_message(snap: Snapshot, acked: set[str]) -> None:
    by_external = Counter(external_id for external_id, _, _ in snap.inbound)
    twice = {key: n for key, n in by_external.items() if n > 1}
    assert not twice, f"ticket messages made twice: {twice}"
    assert {channel for _, channel, _ in snap.inbound} == {"app"}
    missing = acked - set(by_external)
    assert not missing, f"{len(missing)} acknowledged pushes never became ticket messages"
    assert set(by_external) == acked, "ticket messages for pushes that were never acknowledged"
    assert len(snap.inbound) == len(acked)
    # The envelope points at the very message made from it.
    message_ids = {external_id: message_id for external_id, _, message_id in snap.inbound}
    assert {k: snap.envelope_messages[k] for k in acked} == {k: message_ids[k] for k in acked}
    # No push names a ticket, so each opens its own and is acknowledged once.
    assert len(snap.tickets) == len(acked)
    assert snap.outbox_purposes == Counter({"acknowledgement": len(acked)})


def assert_each_ticket_acknowledged_to_the_app(
    snap: Snapshot, receiver: SignedWebhookReceiver
) -> None:
    assert not receiver.refused, receiver.refused[:3]
    keys_by_ticket: dict[str, set[str]] = defaultdict(set)
    for callback in receiver.received:  # one entry per distinct webhook-id
        assert callback["purpose"] == "acknowledgement"
        assert callback["ticket_number"] in callback["text"]
        keys_by_ticket[callback["ticket_number"]].add(callback["_webhook_id"])
    assert set(keys_by_ticket) == snap.tickets
    assert all(len(keys) == 1 for keys in keys_by_ticket.values())
    assert set().union(*keys_by_ticket.values()) == set(snap.outbox)
    assert {ticket for _, _, ticket in snap.outbox.values()} == snap.tickets


def repeated_posts(receiver: SignedWebhookReceiver) -> dict[str, int]:
    return {key: n for key, n in Counter(receiver.ids).items() if n > 1}


def assert_repeats_only_where_a_killed_claim_ran_out(
    snap: Snapshot, receiver: SignedWebhookReceiver, failed: set[str], kills: int = 1
) -> tuple[set[str], dict[str, int]]:
    """The app backend never refuses here, so a row is claimed a second time only when the
    process holding it died and its lease ran out (at most one batch per kill), or when a
    live process recorded its attempt as failed (``failed``: the POST outlived the hub's
    timeout on a loaded machine); and a row is POSTed at most once per claim. Returns the
    rows claimed again after a kill and the ids POSTed more than once."""
    posts = Counter(receiver.ids)
    assert set(posts) == set(snap.outbox)
    assert all(posts[key] <= attempts for key, (_, attempts, _) in snap.outbox.items())
    reclaimed = {
        key for key, (_, attempts, _) in snap.outbox.items() if attempts > 1 and key not in failed
    }
    assert len(reclaimed) <= BATCH_SIZE * kills, sorted(reclaimed)
    repeats = repeated_posts(receiver)
    assert set(repeats) <= reclaimed | failed, repeats
    return reclaimed, repeats


# --- the scenarios ------------------------------------------------------------------------


async def killed_serve_on_sqlite(
    database_url: str, workdir: Path, *, pushes: int = 300, kills: int = 1, kill_after: int = 100
) -> dict[str, Any]:
    """SIGKILL ``serve`` (workers in process) ``kills`` times, each time once ``kill_after``
    pushes of that round were acked while 20 clients push concurrently; after each restart
    the peer retries what failed and a third of what was acked. In the end each acked push is
    exactly one ticket message and each ticket's acknowledgement reached the app backend."""
    started = time.monotonic()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    msg_ids = [f"msg_crash_sqlite-{i}" for i in range(pushes)]
    acked: dict[str, tuple[int, str]] = {}
    stored_unacked = retried = 0
    acked_at_kill: list[int] = []
    async with app_backend() as receiver:
        env = hub_env(database_url, receiver.url, in_process=True, lease=2)
        processes = Processes(workdir, env)
        db = Database(database_url)
        try:
            pending, last_round = list(msg_ids), list[str]()
            for round_ in range(kills + 1):
                server = await processes.serve(port)
                again = sorted(last_round)[::3]
                batch = again + sorted(pending)
                kill_at = len(again) + kill_after

                def kill_after_acks(load: Load, server: Child = server, at: int = kill_at) -> None:
                    if len(load.acked) >= at:
                        server.kill()

                killing = round_ < kills
                if killing and kill_at >= len(batch):
                    fail(f"round {round_}: {len(batch)} pushes cannot outlast {kill_at} acks")
                load = await push_all(base_url, batch, on_ack=kill_after_acks if killing else None)
                # An acked push survived the kill: its retry finds it, with the first receipt.
                for key in again:
                    if key in load.acked and load.acked[key] != (200, acked[key][1]):
                        fail(f"retry of acked {key} answered {load.acked[key]}, not the receipt")
                retried += sum(key in load.acked for key in again)
                new = {k: v for k, v in load.acked.items() if k not in acked}
                # A 200 on a push's first ack: stored before the kill, its 202 never sent.
                stored_unacked += sum(status == 200 for status, _ in new.values())
                acked.update(new)
                if len(load.acked) + len(load.failed) != len(batch):
                    fail(f"round {round_}: pushes neither acked nor failed")
                if killing:
                    if await server.process.wait() != -signal.SIGKILL:
                        fail(f"round {round_}: serve was not killed\n{processes.tails()}")
                    if not load.failed:
                        fail("the load finished before the kill; nothing was in flight")
                    acked_at_kill.append(len(new))
                elif load.failed:
                    fail(f"pushes failed with no kill: {dict(list(load.failed.items())[:5])}")
                pending = sorted(set(load.failed) - set(acked))
                last_round = list(new)
            if set(acked) != set(msg_ids):
                fail(f"{len(set(msg_ids) - set(acked))} pushes never acked")

            snap = await settle(db, receiver, set(acked), processes, within=max(60, pushes / 5))
            assert_each_acked_push_is_one_ticket_message(snap, set(acked))
            assert_each_ticket_acknowledged_to_the_app(snap, receiver)
            # Only what a killed process had claimed, sent and not yet recorded is sent again,
            # and at most once more per kill.
            failed_attempts = processes.failed_attempts()
            reclaimed, repeats = assert_repeats_only_where_a_killed_claim_ran_out(
                snap, receiver, failed_attempts, kills
            )
            assert set(repeats.values()) <= set(range(2, kills + 2)), repeats
            return {
                "pushes": pushes,
                "kills": kills,
                "acked between kills": acked_at_kill,
                "acked retries answered with the first receipt": retried,
                "stored but unacked at a kill": stored_unacked,
                "ticket messages": len(snap.inbound),
                "tickets": len(snap.tickets),
                "outbox rows delivered": len(snap.outbox),
                "POSTs": len(receiver.ids),
                "rows re-claimed after a kill": len(reclaimed),
                "ids POSTed twice or more": len(repeats),
                "attempts failed on the hub's side": len(failed_attempts),
                "seconds": round(time.monotonic() - started, 1),
            }
        finally:
            await processes.stop_all()
            await db.close()


async def killed_workers_on_postgres(
    database_url: str, workdir: Path, *, pushes: int = 300, kills: int = 1
) -> dict[str, Any]:
    """``serve`` without workers plus two ``tongdao worker``s; ``kills`` times, a worker is
    SIGKILLed while it waits on a POST to the app backend and a replacement starts. No acked
    push is lost or doubled, every outbox row is delivered, and only rows a killed worker held
    are POSTed again, each first by a killed worker."""
    started = time.monotonic()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    msg_ids = [f"msg_crash_worker-{i}" for i in range(pushes)]
    # Each kill: a chunk pushed until the victim dies, the next while its replacement starts.
    parts = 2 * kills
    chunks = [msg_ids[i * pushes // parts : (i + 1) * pushes // parts] for i in range(parts)]
    async with app_backend(delay=0.02) as receiver:
        env = hub_env(database_url, receiver.url, in_process=False, lease=6)
        processes = Processes(workdir, env)
        db = Database(database_url)
        try:
            await processes.serve(port)
            victim = await processes.worker("worker-a-0")
            survivor = await processes.worker("worker-b")
            killed: list[tuple[str, str]] = []  # (worker, the webhook-id it was waiting on)
            load = Load()

            for round_ in range(kills):
                threshold = len(receiver.ids) + KILL_AFTER_CALLBACKS

                def kill_while_it_sends(
                    sender: str, webhook_id: str, victim: Child = victim, at: int = threshold
                ) -> None:
                    # Called after the victim's POST arrived and before it is answered.
                    if sender == victim.name and len(receiver.ids) >= at:
                        victim.kill()
                        receiver.on_post = None
                        killed.append((victim.name, webhook_id))

                receiver.on_post = kill_while_it_sends

                async def victim_killed(victim: Child = victim, count: int = round_ + 1) -> None:
                    deadline = time.monotonic() + 30
                    while len(killed) < count:
                        if time.monotonic() > deadline:
                            fail(f"{victim.name} never sent\n{processes.tails()}")
                        await asyncio.sleep(0.01)
                    if await victim.process.wait() != -signal.SIGKILL:
                        fail(f"{victim.name} was not killed")

                await asyncio.gather(
                    push_all(base_url, chunks[2 * round_], load=load), victim_killed()
                )
                _, victim = await asyncio.gather(
                    push_all(base_url, chunks[2 * round_ + 1], load=load),
                    processes.worker(f"worker-a-{round_ + 1}"),
                )
            if load.failed:
                fail(f"pushes failed: {dict(list(load.failed.items())[:5])}")
            acked = set(load.acked)
            if acked != set(msg_ids):
                fail(f"{len(set(msg_ids) - acked)} pushes never acked")

            snap = await settle(db, receiver, acked, processes, within=max(60, pushes / 5))
            assert_each_acked_push_is_one_ticket_message(snap, acked)
            assert_each_ticket_acknowledged_to_the_app(snap, receiver)
            failed_attempts = processes.failed_attempts()
            reclaimed, repeats = assert_repeats_only_where_a_killed_claim_ran_out(
                snap, receiver, failed_attempts, kills
            )
            # The row whose POST a victim was waiting on reached the app once from it and,
            # after its lease ran out, again from a live worker, with the same idempotency
            # key; every other repeat was likewise first sent by a killed worker, or failed
            # on the hub's side first.
            victims = {name for name, _ in killed}
            for name, in_flight in killed:
                assert in_flight in reclaimed, (name, in_flight)
                assert 2 <= repeats.get(in_flight, 0) <= kills + 1, (in_flight, repeats)
                assert receiver.senders[name][in_flight] == 1, (name, in_flight)
            assert all(
                key in failed_attempts or any(receiver.senders[v][key] for v in victims)
                for key in repeats
            ), repeats
            assert survivor.process.returncode is None
            assert victim.process.returncode is None
            per_worker = {name: sum(c.values()) for name, c in receiver.senders.items()}
            assert per_worker.get("worker-a-0") and per_worker.get(survivor.name), per_worker
            return {
                "pushes": pushes,
                "workers killed while sending": len(killed),
                "ticket messages": len(snap.inbound),
                "outbox rows delivered": len(snap.outbox),
                "POSTs": len(receiver.ids),
                "rows re-claimed after a kill": len(reclaimed),
                "ids POSTed twice or more": len(repeats),
                "attempts failed on the hub's side": len(failed_attempts),
                "POSTs per worker": per_worker,
                "seconds": round(time.monotonic() - started, 1),
            }
        finally:
            await processes.stop_all()
            await db.close()


async def two_workers_on_postgres(
    database_url: str, workdir: Path, *, pushes: int = 240
) -> dict[str, Any]:
    """Two ``tongdao worker``s race over a backlog of half the pushes and the other half
    arriving while they work, through the pipeline and the outbox: every outbox row is
    claimed once and POSTed to the app backend exactly once, and both workers did part."""
    started = time.monotonic()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    msg_ids = [f"msg_two_workers-{i}" for i in range(pushes)]
    async with app_backend() as receiver:
        env = hub_env(database_url, receiver.url, in_process=False, lease=300)
        processes = Processes(workdir, env)
        db = Database(database_url)
        try:
            await processes.serve(port)
            half = len(msg_ids) // 2
            load = await push_all(base_url, msg_ids[:half])
            workers = await asyncio.gather(
                processes.worker("worker-a"), processes.worker("worker-b")
            )
            await push_all(base_url, msg_ids[half:], load=load)
            assert not load.failed, load.failed
            assert set(load.acked) == set(msg_ids)
            acked = set(load.acked)

            snap = await settle(db, receiver, acked, processes, within=max(60, pushes / 5))
            assert_each_acked_push_is_one_ticket_message(snap, acked)
            assert_each_ticket_acknowledged_to_the_app(snap, receiver)
            posts = Counter(receiver.ids)
            assert len(snap.outbox) == len(msg_ids)
            assert set(posts) == set(snap.outbox)
            assert repeated_posts(receiver) == {}
            assert len(receiver.ids) == len(snap.outbox)
            assert {attempts for _, attempts, _ in snap.outbox.values()} == {1}
            per_worker = {w.name: sum(receiver.senders[w.name].values()) for w in workers}
            assert sum(per_worker.values()) == len(snap.outbox), per_worker
            assert all(per_worker.values()), f"one worker did all the deliveries: {per_worker}"
            return {
                "pushes": pushes,
                "outbox rows delivered": len(snap.outbox),
                "POSTs": len(receiver.ids),
                "POSTs per worker": per_worker,
                "seconds": round(time.monotonic() - started, 1),
            }
        finally:
            await processes.stop_all()
            await db.close()


SHORT: dict[str, dict[str, Any]] = {
    "killed_serve_on_sqlite": {"pushes": 300, "kills": 1, "kill_after": 100},
    "killed_workers_on_postgres": {"pushes": 300, "kills": 1},
    "two_workers_on_postgres": {"pushes": 240},
}
LONG: dict[str, dict[str, Any]] = {
    "killed_serve_on_sqlite": {"pushes": 3000, "kills": 5, "kill_after": 300},
    "killed_workers_on_postgres": {"pushes": 3000, "kills": 4},
    "two_workers_on_postgres": {"pushes": 5000},
}
