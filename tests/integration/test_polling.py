"""Polling channels: the hub keeps the cursor, stores before it moves on, repeats harmlessly."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from hub.registry import Discovered
from hub.runtime import Hub
from hub.sdk import (
    ChannelConnector,
    ConnectorConfig,
    DeliveryResult,
    Identity,
    InboundEnvelope,
    InboundMessage,
    OutboundMessage,
    PollResult,
)
from hub.settings import Settings
from hub.store import ConnectorCursor, Envelope
from tests.conftest import drain
from ticket_core import ManualClock, Message

MAILBOX: list[dict[str, Any]] = []


class MailboxConfig(ConnectorConfig):
    page: int = 2


class MailboxConnector(ChannelConnector[MailboxConfig]):
    """A source the hub must fetch from: a list standing in for a mailbox, read by position."""

    name = "mailbox"
    Config = MailboxConfig
    poll_interval: ClassVar[float | None] = 30.0
    failures = 0

    async def poll(self, cursor: str | None) -> PollResult:
        if MailboxConnector.failures:
            MailboxConnector.failures -= 1
            raise ConnectionError("mailbox unreachable")
        start = int(cursor or 0)
        page = MAILBOX[start : start + self.config.page]
        envelopes = tuple(
            InboundEnvelope(
                "mailbox",
                item["id"],
                json.dumps(item).encode(),
                "application/json",
                self.context.clock.now(),
            )
            for item in page
        )
        return PollResult(envelopes, str(start + len(page)))

    def parse(self, envelope: InboundEnvelope) -> InboundMessage:
        item = json.loads(envelope.body)
        return InboundMessage(
            text=item["text"],
            identities=(Identity("mailbox_user", item["from"], verified=True),),
            sent_at=envelope.received_at,
        )

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        return DeliveryResult.delivered()


async def _hub(settings: Settings, clock: ManualClock) -> Hub:
    settings = settings.model_copy(update={"connectors": {"mailbox": {}}})
    available = {"mailbox": Discovered("mailbox", MailboxConnector, "tests", "0")}
    return await Hub(settings, clock=clock, available=available).open(migrate=True)


async def _count(hub: Hub, model: type) -> int:
    from sqlmodel import func, select

    async with hub.sessions() as session:
        return (await session.exec(select(func.count()).select_from(model))).one()


async def test_poller_reads_pages_and_keeps_its_cursor(
    settings: Settings, clock: ManualClock
) -> None:
    MAILBOX[:] = [{"id": f"m{i}", "from": f"c{i}", "text": f"问题 {i}"} for i in range(5)]
    hub = await _hub(settings, clock)
    try:
        assert await hub.pollers.poll_once() == 2
        assert await hub.pollers.poll_once() == 0  # not due before its interval
        for _ in range(3):
            clock.advance(seconds=30)
            await hub.pollers.poll_once()
        async with hub.sessions() as session:
            cursor = await session.get(ConnectorCursor, "mailbox")
        assert cursor is not None and cursor.cursor == "5"
        await drain(hub)
        assert await _count(hub, Message) == 5 * 2  # each message and its acknowledgement
    finally:
        await hub.close()


async def test_poll_repeated_from_an_old_cursor_stores_nothing_twice(
    settings: Settings, clock: ManualClock
) -> None:
    MAILBOX[:] = [{"id": f"m{i}", "from": "c", "text": "x"} for i in range(2)]
    hub = await _hub(settings, clock)
    try:
        await hub.pollers.poll_once()
        # A crash after storing but before the cursor moved: the next poll starts over.
        async with hub.sessions() as session, session.begin():
            row = await session.get(ConnectorCursor, "mailbox")
            assert row is not None
            row.cursor = None
            session.add(row)
        clock.advance(seconds=30)
        assert await hub.pollers.poll_once() == 0
        assert await _count(hub, Envelope) == 2
    finally:
        await hub.close()


async def test_failing_poll_keeps_the_cursor_and_records_the_error(
    settings: Settings, clock: ManualClock
) -> None:
    MAILBOX[:] = [{"id": "m0", "from": "c", "text": "x"}]
    hub = await _hub(settings, clock)
    MailboxConnector.failures = 1
    try:
        assert await hub.pollers.poll_once() == 0
        async with hub.sessions() as session:
            row = await session.get(ConnectorCursor, "mailbox")
        assert row is not None and row.cursor is None
        assert row.last_error == "ConnectionError: mailbox unreachable"
        clock.advance(seconds=30)
        assert await hub.pollers.poll_once() == 1
    finally:
        MailboxConnector.failures = 0
        await hub.close()
