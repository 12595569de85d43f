"""A parsed inbound message in channel-neutral terms; the normalizer works from this."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Identity:
    """How the sender is known. ``verified`` means the channel authenticated it (an app's
    signed user id, a WeChat openid); something the sender merely typed is unverified."""

    kind: str
    value: str
    verified: bool


@dataclass(frozen=True, slots=True)
class Attachment:
    name: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class InboundMessage:
    text: str
    identities: tuple[Identity, ...]
    sent_at: datetime
    reply_address: dict[str, Any] = field(default_factory=dict)
    display_name: str | None = None
    subject: str = ""
    ticket_reference: str | None = None
    attachments: tuple[Attachment, ...] = ()
    kind_hint: str | None = None
    opens_ticket: bool = True


@dataclass(frozen=True, slots=True)
class TicketCommand:
    """A system's instruction about an existing ticket, as core systems send them (a refund
    posted, a card unblocked). Applied in this order: reference, note, status, message."""

    ticket_number: str
    actor: str
    reference: tuple[str, str] | None = None
    note: str | None = None
    status: str | None = None
    outcome: str | None = None
    summary: str | None = None
    customer_message: str | None = None
