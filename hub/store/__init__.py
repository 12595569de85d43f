"""Storage: engine and sessions, the hub's tables, and the migrations that own the schema."""

from hub.store.engine import (
    SessionFactory,
    create_engine,
    read_session_factory,
    session_factory,
)
from hub.store.migrate import current_revision, head_revision, is_up_to_date, upgrade
from hub.store.tables import (
    ApiKey,
    ConnectorCursor,
    ConnectorStateRow,
    ConsoleSession,
    ContextProviderState,
    Envelope,
    EnvelopeStatus,
    HubSetting,
    OutboxRow,
    OutboxStatus,
    StaffAccount,
    TicketImportRun,
    WebhookAttempt,
    WebhookSubscription,
)

__all__ = [
    "ApiKey",
    "ConnectorCursor",
    "ConnectorStateRow",
    "ConsoleSession",
    "ContextProviderState",
    "Envelope",
    "EnvelopeStatus",
    "HubSetting",
    "OutboxRow",
    "OutboxStatus",
    "SessionFactory",
    "StaffAccount",
    "TicketImportRun",
    "WebhookAttempt",
    "WebhookSubscription",
    "create_engine",
    "current_revision",
    "head_revision",
    "is_up_to_date",
    "read_session_factory",
    "session_factory",
    "upgrade",
]
