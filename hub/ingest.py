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
from collections.abc import Awaitable, Callable

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.metrics import ENVELOPES
from hub.sdk import ApplyResult, InboundEnvelope, IngestResult
from hub.store import Envelope, EnvelopeStatus, SessionFactory
from hub.store.upsert import dialect_insert


def new_receipt() -> str:
    return "rcpt_" + secrets.token_urlsafe(18)


async def store_envelope(session: AsyncSession, envelope: InboundEnvelope) -> IngestResult:
    """Insert the envelope unless its ``(channel, external_id)`` is known; in the caller's
    transaction."""
    insert = dialect_insert(session, Envelope.__table__)
    statement = (
        insert.values(
            receipt=new_receipt(),
            channel=envelope.channel,
            external_id=envelope.external_id,
            content_type=envelope.content_type,
            body=envelope.body,
            headers=dict(envelope.headers),
            meta=dict(envelope.metadata),
            received_at=envelope.received_at,
            status=EnvelopeStatus.pending.value,
            attempts=0,
            next_attempt_at=envelope.received_at,
        )
        .on_conflict_do_nothing(index_elements=["channel", "external_id"])
        .returning(Envelope.__table__.c.receipt)
    )
    stored = (await session.exec(statement)).scalar_one_or_none()
    if stored is not None:
        ENVELOPES.labels(envelope.channel, "stored").inc()
        return IngestResult(receipt=stored, created=True)
    existing = await session.exec(
        select(Envelope.receipt).where(
            Envelope.channel == envelope.channel,
            Envelope.external_id == envelope.external_id,
        )
    )
    ENVELOPES.labels(envelope.channel, "duplicate").inc()
    return IngestResult(receipt=existing.one(), created=False)


Applier = Callable[[InboundEnvelope], Awaitable[ApplyResult]]


_Waiting = tuple[InboundEnvelope, "asyncio.Future[IngestResult]"]


class EnvelopeStore:
    """Implements ``hub.sdk.Ingest``; ``wake`` tells an in-process worker there is work."""

    MAX_BATCH = 256

    def __init__(self, sessions: SessionFactory, wake: asyncio.Event | None = None) -> None:
        self._sessions = sessions
        self._wake = wake
        self._applier: Applier | None = None
        self._waiting: list[_Waiting] = []
        self._committing = False
        self._committer: asyncio.Task[None] | None = None

    def set_applier(self, applier: Applier) -> None:
        self._applier = applier

    async def accept(self, envelope: InboundEnvelope) -> IngestResult:
        future: asyncio.Future[IngestResult] = asyncio.get_running_loop().create_future()
        self._waiting.append((envelope, future))
        if not self._committing:
            self._committing = True
            self._committer = asyncio.get_running_loop().create_task(self._commit_waiting())
        result = await future
        if result.created and self._wake is not None:
            self._wake.set()
        return result

    async def _commit_waiting(self) -> None:
        """Commit what is waiting, batch after batch, until nothing is."""
        try:
            while self._waiting:
                batch = self._waiting[: self.MAX_BATCH]
                del self._waiting[: self.MAX_BATCH]
                await self._commit(batch)
        finally:
            self._committing = False

    async def _commit(self, batch: list[_Waiting]) -> None:
        try:
            async with self._sessions() as session, session.begin():
                results = [await store_envelope(session, envelope) for envelope, _ in batch]
        except Exception as exc:
            if len(batch) == 1:
                _, future = batch[0]
                if not future.done():
                    future.set_exception(exc)
                return
            # One bad envelope must not fail its neighbours: store them one by one.
            for item in batch:
                await self._commit([item])
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def apply(self, envelope: InboundEnvelope) -> ApplyResult:
        if self._applier is None:
            raise RuntimeError("the hub is not open yet")
        result = await self._applier(envelope)
        if self._wake is not None:
            self._wake.set()
        return result
