"""Runs the pollers of channels the hub must fetch from (a mailbox), keeping their cursors.

Each poller's cursor row is leased while it polls, so among many workers one polls a source
at a time. Envelopes are stored before the cursor moves past them; after a crash the poll
repeats from the old cursor and the unique ``(channel, external_id)`` key drops repeats.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog
from sqlmodel import col, or_, select

from hub.ingest import EnvelopeStore
from hub.registry import Registry
from hub.store import ConnectorCursor, SessionFactory
from hub.store.upsert import dialect_insert
from ticket_core import Clock

log = structlog.get_logger(__name__)

LEASE = timedelta(minutes=10)


class Pollers:
    def __init__(
        self, sessions: SessionFactory, registry: Registry, envelopes: EnvelopeStore, clock: Clock
    ) -> None:
        self._sessions = sessions
        self._registry = registry
        self._envelopes = envelopes
        self._clock = clock

    async def poll_once(self) -> int:
        """Poll every due source once; returns how many new envelopes were stored."""
        stored = 0
        for name, connector in self._registry.pollers():
            claimed, cursor = await self._claim(name)
            if not claimed:
                continue
            interval = timedelta(seconds=connector.poll_interval or 60)
            try:
                result = await connector.poll(cursor)
                for envelope in result.envelopes:
                    stored += int((await self._envelopes.accept(envelope)).created)
            except Exception as exc:
                log.exception("poll failed", connector=name)
                await self._release(name, cursor, f"{type(exc).__name__}: {exc}", interval)
                continue
            await self._release(name, result.cursor, None, interval)
        return stored

    async def _claim(self, name: str) -> tuple[bool, str | None]:
        now = self._clock.now()
        async with self._sessions() as session, session.begin():
            insert = dialect_insert(session, ConnectorCursor.__table__)
            await session.exec(
                insert.values(
                    name=name, cursor=None, next_poll_at=now, updated_at=now
                ).on_conflict_do_nothing(index_elements=["name"])
            )
            row = (
                await session.exec(
                    select(ConnectorCursor)
                    .where(ConnectorCursor.name == name)
                    .where(ConnectorCursor.next_poll_at <= now)
                    .where(
                        or_(
                            col(ConnectorCursor.locked_until).is_(None),
                            col(ConnectorCursor.locked_until) < now,
                        )
                    )
                    .with_for_update(skip_locked=True)
                )
            ).first()
            if row is None:
                return False, None
            row.locked_until = now + LEASE
            session.add(row)
            return True, row.cursor

    async def _release(
        self, name: str, cursor: str | None, error: str | None, interval: timedelta
    ) -> None:
        now: datetime = self._clock.now()
        async with self._sessions() as session, session.begin():
            row = await session.get(ConnectorCursor, name)
            assert row is not None
            row.cursor = cursor
            row.last_error = error
            row.locked_until = None
            row.next_poll_at = now + interval
            row.updated_at = now
            session.add(row)
