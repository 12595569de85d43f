"""One running hub: storage, connectors, the envelope store, the pipeline and the dispatcher.

``serve`` and ``worker`` each build one; tests build one around a ``ManualClock``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
from typing import Any

import httpx
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from hub import notices, regulator_feedback, webhooks
from hub.assigning import AutoAssign
from hub.connector_state import DatabaseState
from hub.enrichment import ContextDelivery, LookupScheduler
from hub.identity_key import load_identity_key
from hub.ingest import EnvelopeStore
from hub.outbox import ChannelDelivery, Dispatcher
from hub.pipeline import Pipeline
from hub.policy_book import build_book
from hub.polling import Pollers
from hub.progress import ProgressNotices
from hub.reactions import Reactions
from hub.registry import Discovered, Registry
from hub.sdk import ConnectorContext
from hub.settings import Settings
from hub.sla import Scheduler, auto_close_after
from hub.store import (
    SessionFactory,
    create_engine,
    is_up_to_date,
    read_session_factory,
    session_factory,
    upgrade,
)
from hub.webhooks import WebhookDelivery
from ticket_core import Clock, SystemClock

log = structlog.get_logger(__name__)


class NotMigrated(Exception):
    pass


class Hub:
    """Built in two steps: the constructor wires what needs no I/O (so the app can mount the
    connectors' routes), ``open`` touches the database and starts the connectors."""

    pipeline: Pipeline
    dispatcher: Dispatcher

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        available: dict[str, Discovered] | None = None,
    ) -> None:
        self.settings = settings
        # Customer notices render with this installation's templates (a broken operator
        # template stops the start here, naming the file).
        notices.configure(settings.notices)
        self.clock: Clock = clock or SystemClock()
        self.engine: AsyncEngine = create_engine(settings.database)
        self.sessions: SessionFactory = session_factory(self.engine)
        self.reads: SessionFactory = read_session_factory(self.engine)
        self.wake = asyncio.Event()
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.outbox.http_timeout),
            verify=_trust_store(),
            headers={"user-agent": "tongdao/0.1"},
            follow_redirects=False,
        )
        self.envelopes = EnvelopeStore(self.sessions, self.wake)

        def context_for(name: str) -> ConnectorContext:
            return ConnectorContext(
                name=name,
                ingest=self.envelopes,
                http=self.http,
                clock=self.clock,
                state=DatabaseState(self.sessions, self.reads, name, self.clock),
            )

        self.registry = Registry.from_config(settings.connectors, context_for, available)
        self.assignment = AutoAssign(settings.assignment)
        self.reactions = Reactions(
            [
                # First, so the same round's notices and webhooks see the assignee.
                self.assignment,
                webhooks.fan_out,
                regulator_feedback.queue_feedback,
                ProgressNotices(self.registry, settings.tickets.reopen_window_days),
                # After the ack, never on it: lookups are outbox rows (``hub.enrichment``).
                LookupScheduler(self.registry),
            ]
        )
        self.book = build_book(settings.sla)
        self.auto_close_after = auto_close_after(settings.tickets.auto_close_days)
        self.scheduler = Scheduler(
            self.sessions, self.clock, self.book, self.reactions, settings.sla
        )
        self.pollers = Pollers(self.sessions, self.registry, self.envelopes, self.clock)
        self._opened = False

    async def open(self, *, migrate: bool | None = None) -> Hub:
        """Migrate (by default only on SQLite) or check the schema, then start the connectors."""
        if self._opened:
            return self
        if migrate if migrate is not None else self.settings.database.is_sqlite:
            await upgrade(self.engine)
        elif not await is_up_to_date(self.engine):
            raise NotMigrated("the database schema is not up to date: run `tongdao migrate`")
        identity_key = await load_identity_key(self.sessions, self.settings.security)
        await self.registry.start()
        self.pipeline = Pipeline(
            self.sessions,
            self.registry,
            self.clock,
            self.settings,
            identity_key,
            self.reactions,
            self.book,
        )
        self.envelopes.set_applier(self.pipeline.apply_now)
        self.dispatcher = Dispatcher(
            self.sessions,
            self.clock,
            self.settings.outbox,
            [
                ChannelDelivery(
                    self.registry, self.settings.outbox, [regulator_feedback.delivery_recorded]
                ),
                WebhookDelivery(self.reads, self.http, self.clock, self.settings.webhooks),
                ContextDelivery(
                    self.reads,
                    self.registry,
                    self.clock,
                    self.settings.context,
                    identity_key,
                    self.reactions,
                    self.settings.outbox.lease_seconds,
                ),
            ],
        )
        self._opened = True
        return self

    def warm_up(self) -> None:
        """One-time loading the first message would otherwise pay (the classifier's jieba
        dictionary): long-running processes call it once the hub is open."""
        self.pipeline.warm_up()

    async def close(self) -> None:
        if self._opened:
            self._opened = False
            await self.registry.stop()
        await self.http.aclose()
        await self.engine.dispose()

    async def work_once(self) -> int:
        """One round of the pollers and both workers; returns how many items were handled."""
        batch = self.settings.worker.batch_size
        polled = await self.pollers.poll_once()
        processed = await self.pipeline.process_once(batch)
        ticked = await self.scheduler.tick()
        sent = await self.dispatcher.dispatch_once(batch)
        return polled + processed + ticked + sent

    async def run_workers(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set; sleep on the wake event when there is nothing to do."""
        interval = self.settings.worker.poll_interval
        while not stop.is_set():
            try:
                busy = await self.work_once()
            except Exception:
                log.exception("worker round failed; retrying")
                busy = 0
                await _wait_for(stop, interval * 4)
                continue
            if busy:
                continue
            self.wake.clear()
            await _wait_any(stop, self.wake, interval)

    async def database_ready(self) -> bool:
        try:
            return await is_up_to_date(self.engine)
        except Exception:
            return False


async def _wait_for(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, timeout: float) -> None:
    waiters: list[asyncio.Task[Any]] = [
        asyncio.ensure_future(stop.wait()),
        asyncio.ensure_future(wake.wait()),
    ]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


@functools.cache
def _trust_store() -> ssl.SSLContext:
    """The CA bundle, loaded once per process: loading it takes tens of milliseconds, and
    the CLI and the test suite build many hubs in one process."""
    return httpx.create_ssl_context()
