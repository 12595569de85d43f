"""The hub's own tables: stored envelopes, the outbox, API keys and hub-wide settings."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from ticket_core.models import UTCDateTime


class EnvelopeStatus(StrEnum):
    pending = "pending"
    processed = "processed"
    failed = "failed"
    refused = "refused"  # the ticket's rules refused it; final, the reason in last_error


class Envelope(SQLModel, table=True):
    """An inbound message as the peer sent it. Acked only once this row is committed."""

    __tablename__ = "envelope"
    __table_args__ = (
        sa.UniqueConstraint("channel", "external_id", name="uq_envelope_external"),
        sa.Index("ix_envelope_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    receipt: str = Field(max_length=40, unique=True, index=True)
    channel: str = Field(max_length=40)
    external_id: str = Field(max_length=200)
    content_type: str = Field(max_length=120)
    body: bytes = Field(sa_type=sa.LargeBinary)
    headers: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    meta: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    received_at: datetime = Field(sa_type=UTCDateTime)
    status: EnvelopeStatus = Field(default=EnvelopeStatus.pending, sa_type=sa.String(20))
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=UTCDateTime)
    last_error: str | None = None
    processed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ticket_number: str | None = Field(default=None, max_length=32)
    message_id: int | None = None


class OutboxStatus(StrEnum):
    pending = "pending"
    delivered = "delivered"
    dead = "dead"


class OutboxRow(SQLModel, table=True):
    """One outbound effect, written in the transaction that caused it."""

    __tablename__ = "outbox"
    __table_args__ = (sa.Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=80, unique=True)
    target: str = Field(max_length=80, description="'channel:<name>' for now")
    purpose: str = Field(max_length=30)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    ticket_id: int | None = Field(default=None, index=True)
    message_id: int | None = None
    status: OutboxStatus = Field(default=OutboxStatus.pending, sa_type=sa.String(20))
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=UTCDateTime)
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    claim_token: str | None = Field(default=None, max_length=40)
    last_error: str | None = None
    created_at: datetime = Field(sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120)
    role: str = Field(max_length=20)
    prefix: str = Field(max_length=16, unique=True, index=True)
    secret_hash: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class HubSetting(SQLModel, table=True):
    """Values every process must share, such as the generated identity-hashing key."""

    __tablename__ = "hub_setting"

    name: str = Field(primary_key=True, max_length=60)
    value: str


class ConnectorCursor(SQLModel, table=True):
    """How far a polling connector has read; leased so one process polls a source at a time."""

    __tablename__ = "connector_cursor"

    name: str = Field(primary_key=True, max_length=40)
    cursor: str | None = None
    next_poll_at: datetime = Field(sa_type=UTCDateTime)
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = None
    updated_at: datetime = Field(sa_type=UTCDateTime)


class ConnectorStateRow(SQLModel, table=True):
    """A value a connector shares with its other processes (``hub.sdk.ConnectorState``): an
    access token, a lease, pending work. Expired rows read as absent and are purged."""

    __tablename__ = "connector_state"

    connector: str = Field(primary_key=True, max_length=40)
    key: str = Field(primary_key=True, max_length=200)
    value: str = Field(sa_type=sa.Text)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class WebhookSubscription(SQLModel, table=True):
    """A core system's endpoint and the ticket events it wants, signed with its own secret."""

    __tablename__ = "webhook_subscription"

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(max_length=2000)
    events: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    secret: str = Field(max_length=200)
    previous_secret: str | None = Field(default=None, max_length=200)
    previous_secret_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    description: str = Field(default="", max_length=500)
    clear_text: bool = Field(default=False, description="may see message text unmasked")
    active: bool = True
    disabled_reason: str | None = None
    consecutive_failures: int = 0
    failing_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    paused_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class WebhookAttempt(SQLModel, table=True):
    """One delivery attempt, for the subscription's delivery log."""

    __tablename__ = "webhook_attempt"
    __table_args__ = (sa.Index("ix_webhook_attempt_subscription", "subscription_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    subscription_id: int
    outbox_id: int = Field(index=True)
    event_type: str = Field(max_length=60)
    attempted_at: datetime = Field(sa_type=UTCDateTime)
    result: str = Field(max_length=20)
    status_code: int | None = None
    latency_ms: int
    response_excerpt: str | None = Field(default=None, max_length=500)


class ContextProviderState(SQLModel, table=True):
    """A context provider's circuit breaker, shared by every worker process.

    After ``context.breaker_failures`` transient failures in a row the provider is left alone
    until ``open_until``: its lookups wait in the outbox instead of spending their retries
    against a system that is down. The first success closes the breaker again.
    """

    __tablename__ = "context_provider_state"

    name: str = Field(primary_key=True, max_length=40)
    consecutive_failures: int = 0
    failing_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    open_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=500)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class StaffAccount(SQLModel, table=True):
    """Someone who signs in to the console. Only an argon2 hash of the password is kept;
    repeated failures lock the account for a while (``[console]`` settings)."""

    __tablename__ = "staff_account"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=120, unique=True, index=True)
    display_name: str = Field(default="", max_length=200)
    role: str = Field(max_length=20)
    password_hash: str = Field(max_length=200)
    language: str = Field(default="zh-CN", max_length=10)
    failed_logins: int = 0
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)
    disabled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ConsoleSession(SQLModel, table=True):
    """A signed-in browser. The cookie holds a random token; only its SHA-256 is stored, so a
    copy of the database opens no session."""

    __tablename__ = "console_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    account_id: int = Field(
        sa_column_args=[sa.ForeignKey("staff_account.id", name="fk_console_session_account")],
        index=True,
    )
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=UTCDateTime)
    last_seen_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)


class TicketImportRun(SQLModel, table=True):
    """How far ``tongdao import tickets`` got with one file: written in the transaction of
    each batch, so after an interruption the same command continues after the last batch
    that was committed, and the reject file is cut back to what that batch had written."""

    __tablename__ = "ticket_import_run"
    __table_args__ = (sa.UniqueConstraint("source", "file_key", name="uq_ticket_import_run"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=40)
    file_key: str = Field(max_length=64)
    file_name: str = Field(max_length=500)
    offset: int = Field(default=0, sa_type=sa.BigInteger)
    line: int = 0
    tickets: int = 0
    loaded: int = 0
    duplicate: int = 0
    rejected: int = 0
    messages: int = 0
    rejects_bytes: int = Field(default=0, sa_type=sa.BigInteger)
    started_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
