"""The durable envelope store behind every channel's ack.

A peer is answered only after its envelope is committed; the unique ``(channel, external_id)``
key turns the peer's retries into a lookup of the first receipt.

Envelopes that arrive together are committed together (group commit): one committer stores
whatever is waiting in one transaction, so many acks share one disk flush, and each request
is answered when the commit that holds its envelope is done.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.group_commit import GroupCommit
from hub.metrics import ENVELOPES
from hub.sdk import ApplyResult, InboundEnvelope, IngestResult
from hub.store import Envelope, EnvelopeStatus, SessionFactory
from hub.store.upsert import dialect_insert


def new_receipt() -> str:
    return "rcpt_" + secrets.token_urlsafe(18)


async def store_envelope(session: AsyncSession, envelope: InboundEnvelope) -> IngestResult:
    """Insert the envelope unless its ``(channel, external_id)`` is known; in the caller's
    transaction."""
    (result,) = await store_envelopes(session, [envelope])
    return result


async def store_envelopes(
    session: AsyncSession, envelopes: Sequence[InboundEnvelope]
) -> list[IngestResult]:
    """Insert each envelope whose ``(channel, external_id)`` is not yet known, all in one
    statement (a group commit's batch), and read the first receipt of those that are; in
    the caller's transaction. A key twice in the batch is stored once, the second a
    duplicate of the first."""
    table = Envelope.__table__
    rows = [
        {
            "receipt": new_receipt(),
            "channel": envelope.channel,
            "external_id": envelope.external_id,
            "content_type": envelope.content_type,
            "body": envelope.body,
            "headers": dict(envelope.headers),
            "meta": dict(envelope.metadata),
            "received_at": envelope.received_at,
            "status": EnvelopeStatus.pending.value,
            "attempts": 0,
            "next_attempt_at": envelope.received_at,
        }
        for envelope in envelopes
    ]
    # One row's statement, compiled once and cached, given every row ("insertmanyvalues"
    # sends them as multi-row INSERTs); a statement built with .values(rows) is compiled
    # afresh for each batch, a bind parameter per value: 10% of a busy serve's CPU.
    statement = (
        dialect_insert(session, table)
        .on_conflict_do_nothing(index_elements=["channel", "external_id"])
        .returning(table.c.channel, table.c.external_id, table.c.receipt)
    )
    # RETURNING's row order is not promised (SQLite), so rows are matched by their key.
    inserted = await session.exec(statement, params=rows)
    stored = {(c, e): r for c, e, r in inserted.all()}
    known: dict[tuple[str, str], str] = {}
    missing = {(e.channel, e.external_id) for e in envelopes} - stored.keys()
    for channel in {channel for channel, _ in missing}:
        ids = sorted(external_id for c, external_id in missing if c == channel)
        found = await session.exec(
            select(Envelope.channel, Envelope.external_id, Envelope.receipt).where(
                Envelope.channel == channel, col(Envelope.external_id).in_(ids)
            )
        )
        known.update({(c, e): r for c, e, r in found.all()})
    results = []
    for envelope in envelopes:
        key = (envelope.channel, envelope.external_id)
        if key in stored:
            results.append(IngestResult(receipt=stored.pop(key), created=True))
            known[key] = results[-1].receipt
            ENVELOPES.labels(envelope.channel, "stored").inc()
        else:
            results.append(IngestResult(receipt=known[key], created=False))
            ENVELOPES.labels(envelope.channel, "duplicate").inc()
    return results


Applier = Callable[[InboundEnvelope], Awaitable[ApplyResult]]


class EnvelopeStore:
    """Implements ``hub.sdk.Ingest``; ``wake`` tells an in-process worker there is work."""

    MAX_BATCH = 256

    def __init__(self, sessions: SessionFactory, wake: asyncio.Event | None = None) -> None:
        self._sessions = sessions
        self._wake = wake
        self._applier: Applier | None = None
        self._store = GroupCommit(self._store_batch, self.MAX_BATCH, split_on_failure=True)

    def set_applier(self, applier: Applier) -> None:
        self._applier = applier

    async def accept(self, envelope: InboundEnvelope) -> IngestResult:
        result = await self._store.submit(envelope)
        if result.created and self._wake is not None:
            self._wake.set()
        return result

    async def _store_batch(self, envelopes: list[InboundEnvelope]) -> list[IngestResult]:
        async with self._sessions() as session, session.begin():
            return await store_envelopes(session, envelopes)

    async def apply(self, envelope: InboundEnvelope) -> ApplyResult:
        if self._applier is None:
            raise RuntimeError("the hub is not open yet")
        result = await self._applier(envelope)
        if self._wake is not None:
            self._wake.set()
        return result
