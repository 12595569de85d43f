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
    received_at: datetime | None = None
    """When the case was first received, if elsewhere before us (a regulator's hotline took
    the complaint): regulatory clocks start here, not at our arrival. (SDK 1.1)"""
    deadline: datetime | None = None
    """A due time the sender set (a regulator's 办理时限); the earlier of it and the policy's
    due time wins. (SDK 1.1)"""
    flags: frozenset[str] = frozenset()
    """Facts about the case the channel vouches for: ``regulator_transfer``, ``hot_transfer``.
    (SDK 1.1)"""
    customer_tags: tuple[str, ...] = ()
    """What the channel knows of the customer: ``elderly``, ``foreign``, ``vip``. (SDK 1.1)"""
    category_codes: dict[str, str] = field(default_factory=dict)
    """JR/T 0169-2018 codes when the sender classified the case: ``channel`` (A), ``business``
    (B), ``cause`` (C). (SDK 1.1)"""
    references: tuple[tuple[str, str], ...] = ()
    """Other systems' ids for the case, kept on the ticket: ``("hotline12378.transfer", id)``.
    (SDK 1.1)"""
    language: str | None = None
    """The customer's language when the channel knows it (``zh-CN``, ``en``): a new ticket's
    notices use it. (SDK 1.1)"""
    attaches_to: str | None = None
    """The external id (same channel) of an earlier message these ``attachments`` belong to,
    for channels that deliver a message first and its media later (WeChat hands out a media
    id; the bytes are fetched afterwards). The hub adds the attachments to that message and
    opens nothing; ``text``, if any, is kept as a note on its ticket (why media is missing).
    Set ``opens_ticket=False`` too, so a hub without this field only records it. (SDK 1.1)"""
    thread_hints: tuple[str, ...] = ()
    """External ids (same channel) of earlier messages this one answers, nearest first: an
    email's In-Reply-To, then its References newest first. Stronger evidence than
    ``ticket_reference``: a hub that resolves hints threads the message onto the ticket of the
    first hint it holds a message for, and falls back to ``ticket_reference`` when it holds
    none. Leave it empty when the connector has stronger evidence of its own (a reply address
    that names the ticket). A hub without this field ignores it. (SDK 1.1)"""


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
