"""The durable envelope store behind every channel's ack.

A peer is answered only after its envelope is committed; the unique ``(channel, external_id)``
key turns the peer's retries into a lookup of the first receipt.
"""

from __future__ import annotations

import asyncio
import secrets

from sqlmodel import select

from hub.metrics import ENVELOPES
from hub.sdk import InboundEnvelope, IngestResult
from hub.store import Envelope, EnvelopeStatus, SessionFactory
from hub.store.upsert import dialect_insert


def new_receipt() -> str:
    return "rcpt_" + secrets.token_urlsafe(18)


class EnvelopeStore:
    """Implements ``hub.sdk.Ingest``; ``wake`` tells an in-process worker there is work."""

    def __init__(self, sessions: SessionFactory, wake: asyncio.Event | None = None) -> None:
        self._sessions = sessions
        self._wake = wake

    async def accept(self, envelope: InboundEnvelope) -> IngestResult:
        receipt = new_receipt()
        async with self._sessions() as session, session.begin():
            insert = dialect_insert(session, Envelope.__table__)
            statement = (
                insert.values(
                    receipt=receipt,
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
            if stored is None:
                existing = await session.exec(
                    select(Envelope.receipt).where(
                        Envelope.channel == envelope.channel,
                        Envelope.external_id == envelope.external_id,
                    )
                )
                ENVELOPES.labels(envelope.channel, "duplicate").inc()
                return IngestResult(receipt=existing.one(), created=False)
        ENVELOPES.labels(envelope.channel, "stored").inc()
        if self._wake is not None:
            self._wake.set()
        return IngestResult(receipt=stored, created=True)
