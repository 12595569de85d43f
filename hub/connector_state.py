"""``hub.sdk.ConnectorState`` kept in the database, so every process of an installation shares
a connector's values (one WeChat access token for all workers, leases, pending media).

Each connector gets its own instance, bound to its name: keys never cross connectors. Expiry
is read against the hub's clock, so tests move time instead of sleeping; expired rows read as
absent and are deleted whenever the connector lists its keys.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, delete, or_
from sqlmodel import col, select

from hub.sdk.state import check_entry
from hub.store import ConnectorStateRow, SessionFactory
from hub.store.upsert import dialect_insert
from ticket_core import Clock


class DatabaseState:
    def __init__(
        self, sessions: SessionFactory, reads: SessionFactory, connector: str, clock: Clock
    ) -> None:
        self._sessions = sessions
        self._reads = reads
        self._connector = connector
        self._clock = clock

    def _unexpired(self, now: datetime) -> ColumnElement[bool]:
        return or_(
            col(ConnectorStateRow.expires_at).is_(None), col(ConnectorStateRow.expires_at) > now
        )

    async def get(self, key: str) -> str | None:
        check_entry(key)
        async with self._reads() as session:
            row = await session.get(ConnectorStateRow, (self._connector, key))
            if row is None:
                return None
            if row.expires_at is not None and row.expires_at <= self._clock.now():
                return None
            return row.value

    async def put(self, key: str, value: str, *, expires_at: datetime | None = None) -> None:
        check_entry(key, value)
        now = self._clock.now()
        async with self._sessions() as session, session.begin():
            insert = dialect_insert(session, ConnectorStateRow.__table__)
            await session.exec(
                insert.values(
                    connector=self._connector,
                    key=key,
                    value=value,
                    expires_at=expires_at,
                    updated_at=now,
                ).on_conflict_do_update(
                    index_elements=["connector", "key"],
                    set_={"value": value, "expires_at": expires_at, "updated_at": now},
                )
            )

    async def claim(self, key: str, value: str, *, expires_at: datetime) -> bool:
        check_entry(key, value)
        now = self._clock.now()
        table = ConnectorStateRow.__table__
        async with self._sessions() as session, session.begin():
            insert = dialect_insert(session, table)
            # Take the key when it is free or its holder's lease ran out; the WHERE makes the
            # update a no-op for a live holder, and RETURNING says whether this call won.
            statement = (
                insert.values(
                    connector=self._connector,
                    key=key,
                    value=value,
                    expires_at=expires_at,
                    updated_at=now,
                )
                .on_conflict_do_update(
                    index_elements=["connector", "key"],
                    set_={"value": value, "expires_at": expires_at, "updated_at": now},
                    where=(table.c.expires_at.is_not(None)) & (table.c.expires_at <= now),
                )
                .returning(table.c.key)
            )
            won = (await session.exec(statement)).scalar_one_or_none()
            return won is not None

    async def delete(self, key: str) -> None:
        check_entry(key)
        async with self._sessions() as session, session.begin():
            await session.exec(
                delete(ConnectorStateRow).where(
                    col(ConnectorStateRow.connector) == self._connector,
                    col(ConnectorStateRow.key) == key,
                )
            )

    async def keys(self, prefix: str, limit: int = 100) -> list[str]:
        now = self._clock.now()
        async with self._sessions() as session, session.begin():
            await session.exec(
                delete(ConnectorStateRow).where(
                    col(ConnectorStateRow.connector) == self._connector,
                    col(ConnectorStateRow.expires_at) <= now,
                )
            )
            rows = await session.exec(
                select(ConnectorStateRow.key)
                .where(col(ConnectorStateRow.connector) == self._connector)
                .where(col(ConnectorStateRow.key).startswith(prefix, autoescape=True))
                .where(self._unexpired(now))
                .order_by(col(ConnectorStateRow.key))
                .limit(limit)
            )
            return list(rows.all())
