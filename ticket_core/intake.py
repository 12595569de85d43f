"""What the core needs to know of an inbound message, whichever channel it came through."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ticket_core.models import Kind, Priority


@dataclass(frozen=True, slots=True)
class IdentityClaim:
    """A way the sender is known; ``verified`` only when the channel authenticated it."""

    kind: str
    value: str
    masked: str
    verified: bool


@dataclass(frozen=True, slots=True)
class IncomingAttachment:
    name: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    channel: str
    external_id: str
    received_at: datetime
    text: str
    kind: Kind
    identities: tuple[IdentityClaim, ...]
    priority: Priority = Priority.normal
    category: str | None = None
    subject: str = ""
    display_name: str | None = None
    phone_masked: str | None = None
    ticket_reference: str | None = None
    reply_to: dict[str, Any] = field(default_factory=dict)
    attachments: tuple[IncomingAttachment, ...] = ()
    classification: dict[str, Any] = field(default_factory=dict)
    clock_started_at: datetime | None = None
    """When the case was first received (a regulator's receipt time); default ``received_at``."""
    deadline: datetime | None = None
    """A due time set by the sender; the earlier of it and the policy's wins."""
    flags: frozenset[str] = frozenset()
    customer_tags: tuple[str, ...] = ()
    category_codes: dict[str, str] = field(default_factory=dict)
    references: tuple[tuple[str, str], ...] = ()
    queue: str | None = None
    language: str = "zh-CN"
    policy: str | None = None
    """An SLA policy chosen by a routing rule; used when the book knows it, else the book's
    own rules choose."""
    routing: dict[str, Any] = field(default_factory=dict)
    """The routing rule that matched and why, recorded on the ticket as ``ticket.routed``."""
