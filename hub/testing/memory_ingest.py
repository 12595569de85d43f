"""An in-memory ``hub.sdk.Ingest`` with the same dedupe rule as the real envelope store."""

from __future__ import annotations

import secrets

from hub.sdk import ApplyResult, InboundEnvelope, IngestResult


class InMemoryIngest:
    def __init__(self) -> None:
        self._receipts: dict[tuple[str, str], str] = {}
        self.envelopes: list[InboundEnvelope] = []

    async def accept(self, envelope: InboundEnvelope) -> IngestResult:
        key = (envelope.channel, envelope.external_id)
        if key in self._receipts:
            return IngestResult(receipt=self._receipts[key], created=False)
        receipt = "rcpt_" + secrets.token_urlsafe(12)
        self._receipts[key] = receipt
        self.envelopes.append(envelope)
        return IngestResult(receipt=receipt, created=True)

    async def apply(self, envelope: InboundEnvelope) -> ApplyResult:
        """Stores like ``accept``; there are no tickets here, so everything is applied."""
        stored = await self.accept(envelope)
        return ApplyResult(stored.receipt, stored.created, "applied")
