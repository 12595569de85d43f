"""The ticket model: tickets, messages, customers and their identities, attachments, audit events.

Tables are SQLModel classes so the same definitions serve SQLite and PostgreSQL; the schema
itself is owned by the Alembic migrations in ``hub/store/migrations``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes on every backend; SQLite would otherwise hand back naive ones."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(**kw: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kw)


def _json(default: Any) -> Any:
    return Field(default_factory=default, sa_type=sa.JSON)


class Kind(StrEnum):
    consultation = "consultation"
    complaint = "complaint"
    suggestion = "suggestion"


class Priority(StrEnum):
    low = "low"
    normal = "normal"
    high = "high"
    urgent = "urgent"


class Status(StrEnum):
    new = "new"
    open = "open"
    in_progress = "in_progress"
    pending_customer = "pending_customer"
    pending_internal = "pending_internal"
    under_review = "under_review"
    resolved = "resolved"
    reopened = "reopened"
    closed = "closed"


class Outcome(StrEnum):
    resolved = "resolved"
    partially_resolved = "partially_resolved"
    rejected = "rejected"
    withdrawn = "withdrawn"


class Direction(StrEnum):
    inbound = "in"
    outbound = "out"
    note = "note"


class DeliveryState(StrEnum):
    pending = "pending"
    delivered = "delivered"
    failed = "failed"


class Customer(SQLModel, table=True):
    __tablename__ = "customer"

    id: int | None = Field(default=None, primary_key=True)
    display_name: str | None = Field(default=None, max_length=200)
    phone_masked: str | None = Field(default=None, max_length=40)
    crm_ref: str | None = Field(default=None, max_length=100)
    tier: str | None = Field(default=None, max_length=40)
    tags: list[str] = _json(list)
    risk_level: str | None = Field(default=None, max_length=20)
    created_at: datetime = _ts()
    merged_into_id: int | None = Field(
        default=None,
        sa_column_args=[sa.ForeignKey("customer.id", name="fk_customer_merged_into")],
    )
    """Set while this customer is merged into another (``CustomerMerge``); its identities and
    tickets then belong to that one, and this row stays so the merge can be undone."""


class CustomerIdentity(SQLModel, table=True):
    """One way of recognising a customer on a channel, kept only as a keyed hash and a mask."""

    __tablename__ = "customer_identity"
    __table_args__ = (
        sa.Index(
            "uq_identity_verified",
            "kind",
            "value_hash",
            unique=True,
            sqlite_where=sa.text("verified"),
            postgresql_where=sa.text("verified"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    kind: str = Field(max_length=40)
    value_hash: str = Field(max_length=64, index=True)
    masked: str = Field(max_length=200)
    verified: bool = False
    created_at: datetime = _ts()


class Ticket(SQLModel, table=True):
    __tablename__ = "ticket"
    __table_args__ = (
        sa.Index("ix_ticket_status_due", "status", "resolution_due_at"),
        sa.Index("uq_ticket_source", "source_system", "source_id", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    number: str | None = Field(default=None, max_length=32, unique=True, index=True)
    kind: Kind = Field(sa_type=sa.String(20))
    category: str | None = Field(default=None, max_length=80)
    priority: Priority = Field(default=Priority.normal, sa_type=sa.String(20))
    status: Status = Field(default=Status.new, sa_type=sa.String(20), index=True)
    channel: str = Field(max_length=40)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    subject: str = Field(default="", max_length=200)
    queue: str | None = Field(default=None, max_length=80)
    assignee: str | None = Field(default=None, max_length=120)
    is_regulator_transfer: bool = False
    is_vulnerable: bool = False
    is_suspected_fraud: bool = False
    outcome: Outcome | None = Field(default=None, sa_type=sa.String(30))
    outcome_summary: str | None = None
    review_state: str | None = Field(default=None, max_length=20)
    sla_policy: str | None = Field(default=None, max_length=60)
    first_response_due_at: datetime | None = _ts(default=None)
    resolution_due_at: datetime | None = _ts(default=None)
    first_responded_at: datetime | None = _ts(default=None)
    regulator_feedback_acknowledged_at: datetime | None = _ts(default=None)
    external_refs: list[dict[str, Any]] = Field(
        default_factory=list, sa_column_kwargs={"server_default": "[]"}, sa_type=sa.JSON
    )
    clock_started_at: datetime | None = _ts(default=None)
    """When the case was first received; the policy's clocks count from here."""
    deadline_at: datetime | None = _ts(default=None)
    """A due time set by the sender (a regulator's 办理时限)."""
    category_codes: dict[str, str] = Field(
        default_factory=dict, sa_column_kwargs={"server_default": "{}"}, sa_type=sa.JSON
    )
    language: str = Field(
        default="zh-CN", max_length=10, sa_column_kwargs={"server_default": "zh-CN"}
    )
    related_ticket_id: int | None = Field(default=None, foreign_key="ticket.id")
    progress_code_hash: str | None = Field(default=None, max_length=64)
    extensions: list[dict[str, Any]] = Field(
        default_factory=list, sa_column_kwargs={"server_default": "[]"}, sa_type=sa.JSON
    )
    proposed_by: str | None = Field(default=None, max_length=120)
    review_note: str | None = None
    satisfaction: str | None = Field(default=None, max_length=20)
    escalated_at: datetime | None = _ts(default=None)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    resolved_at: datetime | None = _ts(default=None)
    closed_at: datetime | None = _ts(default=None)
    audit_head: str = Field(default="", max_length=64)
    source_system: str | None = Field(default=None, max_length=40)
    """For a ticket imported from another system (``tongdao import tickets``): that system's
    name, and ``source_id`` its id there; unique together, so a second import is harmless."""
    source_id: str | None = Field(default=None, max_length=200)


class ClockState(StrEnum):
    running = "running"
    paused = "paused"
    met = "met"
    breached = "breached"
    stopped = "stopped"


class SlaClock(SQLModel, table=True):
    """One of a ticket's clocks (first response, next response, resolution, review, auto-close).

    ``next_check_at`` is when the scheduler must look at the clock again (the next warning,
    the due time, or nothing once it stopped); the scheduler reads only the index on it, so a
    tick costs what is due, not what is open.
    """

    __tablename__ = "sla_clock"
    __table_args__ = (
        sa.UniqueConstraint("ticket_id", "name", name="uq_sla_clock_ticket_name"),
        sa.Index(
            "ix_sla_clock_next_check",
            "next_check_at",
            sqlite_where=sa.text("next_check_at IS NOT NULL"),
            postgresql_where=sa.text("next_check_at IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id")
    name: str = Field(max_length=30)
    policy: str = Field(max_length=60)
    basis: str = Field(max_length=20)
    started_at: datetime = _ts()
    due_at: datetime = _ts()
    target_seconds: int
    state: ClockState = Field(default=ClockState.running, sa_type=sa.String(20))
    paused_at: datetime | None = _ts(default=None)
    remaining_seconds: int | None = None
    warnings_sent: list[str] = _json(list)
    next_check_at: datetime | None = _ts(default=None)
    stopped_at: datetime | None = _ts(default=None)
    breached_at: datetime | None = _ts(default=None)


class Message(SQLModel, table=True):
    __tablename__ = "message"
    __table_args__ = (sa.UniqueConstraint("channel", "external_id", name="uq_message_external"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    direction: Direction = Field(sa_type=sa.String(8))
    channel: str = Field(max_length=40)
    external_id: str | None = Field(default=None, max_length=200)
    purpose: str = Field(default="message", max_length=30)
    author: str = Field(max_length=120)
    text: str
    attachments: list[dict[str, Any]] = _json(list)
    reply_to: dict[str, Any] = _json(dict)
    delivery_state: DeliveryState | None = Field(default=None, sa_type=sa.String(20))
    delivery_error: str | None = None
    created_at: datetime = _ts()


class AttachmentBlob(SQLModel, table=True):
    """Attachment bytes, stored once per content hash however many messages carry them."""

    __tablename__ = "attachment_blob"

    sha256: str = Field(primary_key=True, max_length=64)
    size: int
    content_type: str = Field(max_length=120)
    data: bytes = Field(sa_type=sa.LargeBinary)
    created_at: datetime = _ts()


class AuditEvent(SQLModel, table=True):
    """One change, chained to the ticket's previous event by hash so edits are detectable."""

    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id", index=True)
    actor: str = Field(max_length=120)
    action: str = Field(max_length=60)
    before: dict[str, Any] = _json(dict)
    after: dict[str, Any] = _json(dict)
    at: datetime = _ts()
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


def _fk(target: str, name: str, **kw: Any) -> Any:
    """A foreign key with a name of its own, so migrations can drop it on every backend."""
    return Field(sa_column_args=[sa.ForeignKey(target, name=name)], **kw)


class CustomerContextRecord(SQLModel, table=True):
    """What one context provider last said about a customer (its CRM profile, its risk).

    Agents read it beside the ticket; the enrichment step reuses it instead of asking the
    provider again while it is younger than the configured time to live. Personal fields are
    kept masked, as everywhere else in the model.
    """

    __tablename__ = "customer_context"
    __table_args__ = (
        sa.UniqueConstraint("customer_id", "provider", name="uq_customer_context_provider"),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = _fk("customer.id", "fk_customer_context_customer")
    provider: str = Field(max_length=40)
    found: bool = False
    customer_ref: str | None = Field(default=None, max_length=100)
    name_masked: str | None = Field(default=None, max_length=200)
    tier: str | None = Field(default=None, max_length=40)
    segments: list[str] = _json(list)
    products: list[str] = _json(list)
    relationship_manager: str | None = Field(default=None, max_length=120)
    risk_score: float | None = None
    reasons: list[str] = _json(list)
    details: dict[str, Any] = _json(dict)
    fetched_at: datetime = _ts()


class ContextState(StrEnum):
    pending = "pending"
    """Not answered yet: waiting for its first attempt, retrying, or paused by the breaker."""
    complete = "complete"
    """The provider answered (whether or not it knew the customer)."""
    unavailable = "unavailable"
    """The retries were spent while the provider was down; asked again once it recovers."""
    failed = "failed"
    """The provider refused the request; it is not asked again unless an operator replays it."""
    skipped = "skipped"
    """There was nothing to look the customer up by (no identity the channel verified)."""


CONTEXT_PENDING = (ContextState.pending, ContextState.unavailable)
"""States in which a ticket shows "context pending"."""


class TicketContext(SQLModel, table=True):
    """One provider's lookup for one ticket: scheduled when the ticket opens, after the ack.

    The ticket exists whatever happens here; this row says whether its context arrived, is
    still pending (provider slow or down) or will not come, and why.
    """

    __tablename__ = "ticket_context"
    __table_args__ = (
        sa.UniqueConstraint("ticket_id", "provider", name="uq_ticket_context_provider"),
        sa.Index("ix_ticket_context_provider_state", "provider", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = _fk("ticket.id", "fk_ticket_context_ticket")
    provider: str = Field(max_length=40)
    state: ContextState = Field(default=ContextState.pending, sa_type=sa.String(20))
    outbox_id: int | None = None
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: datetime | None = _ts(default=None)
    from_cache: bool = False
    found: bool | None = None
    risk_score: float | None = None
    reasons: list[str] = _json(list)
    requested_at: datetime = _ts()
    updated_at: datetime = _ts()
    completed_at: datetime | None = _ts(default=None)


class MergeKind(StrEnum):
    agent = "agent"
    """A supervisor decided two customers are one person."""
    crm_match = "crm_match"
    """The CRM returned the same customer number for identities each channel verified."""


class CustomerMerge(SQLModel, table=True):
    """Two customers joined into one, with the evidence, who did it, and exactly what moved.

    ``moved_identities`` and ``moved_tickets`` are the ids the merge moved from ``source`` to
    ``target``; undoing moves back those and nothing else (a ticket that arrived afterwards
    stays with the survivor). ``filled`` holds the target's empty fields the merge filled from
    the source and ``tags_added`` the tags it brought, so an undo takes back only those.
    An undone merge between two customers also stops the CRM from joining them again.
    """

    __tablename__ = "customer_merge"

    id: int | None = Field(default=None, primary_key=True)
    source_id: int = _fk("customer.id", "fk_customer_merge_source", index=True)
    target_id: int = _fk("customer.id", "fk_customer_merge_target", index=True)
    kind: MergeKind = Field(sa_type=sa.String(20))
    reason: str = Field(default="", max_length=500)
    evidence: dict[str, Any] = _json(dict)
    actor: str = Field(max_length=120)
    created_at: datetime = _ts()
    moved_identities: list[int] = _json(list)
    moved_tickets: list[int] = _json(list)
    filled: dict[str, Any] = _json(dict)
    tags_added: list[str] = _json(list)
    undone_at: datetime | None = _ts(default=None)
    undone_by: str | None = Field(default=None, max_length=120)
    undo_reason: str | None = Field(default=None, max_length=500)


class AgentRecord(SQLModel, table=True):
    """An agent of the desk as assignment sees them (``ticket_core.assignment.Agent``), with
    their presence and when they last got a ticket (round-robin and ties between equals)."""

    __tablename__ = "agent"
    __table_args__ = (sa.UniqueConstraint("name", name="uq_agent_name"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120)
    queues: list[str] = _json(list)
    skills: list[str] = _json(list)
    languages: list[str] = _json(lambda: ["zh-CN"])
    capacity: int = 10
    presence: str = Field(default="available", max_length=20)
    last_assigned_at: datetime | None = _ts(default=None)
    updated_at: datetime = _ts()
