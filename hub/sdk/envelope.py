"""What a connector hands the hub: the raw inbound message, and what the hub answers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol


@dataclass(frozen=True, slots=True)
class InboundEnvelope:
    """A message exactly as the peer sent it, with the id the peer will use again on retry.

    ``external_id`` must be stable across the peer's retries (a webhook id, a WeChat MsgId,
    a Message-ID): the hub stores one envelope per ``(channel, external_id)``.
    """

    channel: str
    external_id: str
    body: bytes
    content_type: str
    received_at: datetime
    headers: Mapping[str, str] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)


class Unreadable(Exception):
    """Raised by ``parse`` for an envelope that can never become a message (a mail with no
    sender, a MIME bomb): ``str(exc)`` is the reason, for operators, without the content.
    The envelope stays stored with its raw bytes; a hub that knows this exception keeps it as
    ``refused`` with the reason instead of retrying it, an older hub retries it as ``failed``
    (still kept, still shown). (SDK 1.1)"""


@dataclass(frozen=True, slots=True)
class IngestResult:
    """``created`` is false when the envelope was already stored: answer the peer the same way."""

    receipt: str
    created: bool


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What became of an envelope applied at once: ``applied``; ``refused`` (the ticket's
    rules forbid it; ``detail`` says why); ``not_found`` (no such ticket); or ``deferred``
    (stored, but it failed for another reason and a worker will retry it)."""

    receipt: str
    created: bool
    outcome: Literal["applied", "refused", "not_found", "deferred"]
    detail: str = ""
    ticket_number: str | None = None


class Ingest(Protocol):
    async def accept(self, envelope: InboundEnvelope) -> IngestResult:
        """Store the envelope durably; returns only after commit."""
        ...

    async def apply(self, envelope: InboundEnvelope) -> ApplyResult:
        """Store the envelope and apply it in the same transaction, for peers that must be
        told at once whether their instruction was accepted. A repeat of the same external id
        answers as the first time did."""
        ...
