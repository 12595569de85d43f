"""``hub.sdk.ConnectorState`` kept in the database, so every process of an installation shares
a connector's values (one WeChat access token for all workers, leases, pending media).

Each connector gets its own instance, bound to its name: keys never cross connectors. Expiry
is read against the hub's clock, so tests move time instead of sleeping; expired rows read as
absent and are deleted whenever the connector lists its keys.

Writes that arrive together are committed together (group commit, as ``hub.ingest`` does for
envelopes): WeChat records each customer's last interaction on its push path, and one
transaction (one disk flush) per push capped WeChat's acknowledgements at the disk's flush
rate. Each ``put`` still returns only once the transaction holding it is committed.

Reads that arrive together share one query the same way: WeChat reads the customer's pending
follow-up on every push before acknowledging it, and a session, a pool checkout and the
driver's thread hops per read were most of that handler's time. A ``get`` joins the next
query to start, never one already running, so it still sees every write committed before it
was called.

``advance`` rides the same group commit as ``put``: its upsert updates the row only where the
stored value is expired or sorts before the new one, so the comparison and the write are one
statement and no read is needed on the push path. Values compare by code point on both
databases (``COLLATE "C"`` on PostgreSQL, SQLite's default ``BINARY``), as Python compares
strings, whatever the database's locale.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import ColumnElement, Table, delete, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.group_commit import GroupCommit
from hub.sdk.state import ConnectorState, check_entry
from hub.store import ConnectorStateRow, SessionFactory
from hub.store.upsert import dialect_insert
from ticket_core import Clock

# key, value, expires_at, and whether it only advances (``advance``) or always stores (``put``)
_Put = tuple[str, str, datetime | None, bool]


class DatabaseState(ConnectorState):
    MAX_BATCH = 256
    MAX_READ_BATCH = 256

    def __init__(
        self, sessions: SessionFactory, reads: SessionFactory, connector: str, clock: Clock
    ) -> None:
        self._sessions = sessions
        self._reads = reads
        self._connector = connector
        self._clock = clock
        self._writes = GroupCommit(self._commit, self.MAX_BATCH, split_on_failure=True)
        self._reads_together = GroupCommit(self._fetch, self.MAX_READ_BATCH, split_on_failure=False)

    def _unexpired(self, now: datetime) -> ColumnElement[bool]:
        return or_(
            col(ConnectorStateRow.expires_at).is_(None), col(ConnectorStateRow.expires_at) > now
        )

    async def get(self, key: str) -> str | None:
        check_entry(key)
        return await self._reads_together.submit(key)

    async def _fetch(self, keys: list[str]) -> list[str | None]:
        async with self._reads() as session:
            rows = await session.exec(
                select(
                    ConnectorStateRow.key,
                    ConnectorStateRow.value,
                    ConnectorStateRow.expires_at,
                )
                .where(col(ConnectorStateRow.connector) == self._connector)
                .where(col(ConnectorStateRow.key).in_(sorted(set(keys))))
            )
            found = rows.all()
        # Expiry is judged after the read, as a read of one key always did.
        now = self._clock.now()
        values = {
            key: value for key, value, expires_at in found if expires_at is None or expires_at > now
        }
        return [values.get(key) for key in keys]

    async def put(self, key: str, value: str, *, expires_at: datetime | None = None) -> None:
        check_entry(key, value)
        await self._write((key, value, expires_at, False))

    async def advance(self, key: str, value: str, *, expires_at: datetime | None = None) -> None:
        check_entry(key, value)
        await self._write((key, value, expires_at, True))

    async def _write(self, put: _Put) -> None:
        """Queue the write for the next group commit; return once it is committed."""
        await self._writes.submit(put)

    async def _commit(self, batch: list[_Put]) -> list[None]:
        now = self._clock.now()
        table = ConnectorStateRow.__table__
        async with self._sessions() as session, session.begin():
            insert = dialect_insert(session, table)
            new = insert.excluded
            statements = {
                only_forward: insert.on_conflict_do_update(
                    index_elements=["connector", "key"],
                    set_={
                        "value": new.value,
                        "expires_at": new.expires_at,
                        "updated_at": new.updated_at,
                    },
                    where=_moves_forward(session, table, new.value, now) if only_forward else None,
                )
                for only_forward in (False, True)
            }
            # In arrival order, so the last put of a key wins, as one by one; each run is one
            # executemany of a cached statement. A key appears once in a run: a driver that
            # sent a run as one multi-row upsert would otherwise touch a row twice, which
            # PostgreSQL refuses.
            for only_forward, rows in _runs(batch):
                params = [
                    {
                        "connector": self._connector,
                        "key": key,
                        "value": value,
                        "expires_at": expires_at,
                        "updated_at": now,
                    }
                    for key, value, expires_at in rows
                ]
                await session.exec(statements[only_forward], params=params)
        return [None] * len(batch)

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


def _moves_forward(
    session: AsyncSession, table: Table, value: ColumnElement[str], now: datetime
) -> ColumnElement[bool]:
    """The stored row may be replaced by ``advance``: it has expired (an expired value reads as
    absent) or its value sorts before the new one, by code point as Python compares."""
    stored = table.c.value
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        # A database created with a locale collation would otherwise order by that locale.
        stored = stored.collate("C")
    expired = table.c.expires_at.is_not(None) & (table.c.expires_at <= now)
    return or_(expired, stored < value)


def _runs(batch: list[_Put]) -> Iterator[tuple[bool, list[tuple[str, str, datetime | None]]]]:
    """The batch cut into runs of one kind (put or advance) with each key at most once,
    keeping the order."""
    run: list[tuple[str, str, datetime | None]] = []
    keys: set[str] = set()
    kind = False
    for key, value, expires_at, only_forward in batch:
        if run and (only_forward != kind or key in keys):
            yield kind, run
            run, keys = [], set()
        kind = only_forward
        run.append((key, value, expires_at))
        keys.add(key)
    if run:
        yield kind, run
