"""Context providers: who the customer is (CRM) and how risky the case looks (anti-fraud).

Providers are looked up after the peer has been answered, never on the ack path; a provider
that is slow or down raises ``ContextUnavailable`` and the hub carries on without it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Generic

from hub.sdk.connector import ConfigT, ConnectorConfig, ConnectorContext, Health
from hub.sdk.message import Identity
from hub.sdk.version import SDK_VERSION


class ContextUnavailable(Exception):
    """The provider could not answer now (timeout, 5xx, connection refused); try later."""


@dataclass(frozen=True, slots=True)
class CustomerContext:
    source: str
    fetched_at: datetime
    found: bool
    customer_ref: str | None = None
    name: str | None = None
    tier: str | None = None
    segments: tuple[str, ...] = ()
    products: tuple[str, ...] = ()
    relationship_manager: str | None = None
    risk_score: float | None = None
    reasons: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)


class ContextProvider(ABC, Generic[ConfigT]):
    """Looks a customer up by the identities a message carried."""

    name: ClassVar[str]
    sdk_version: ClassVar[str] = SDK_VERSION
    Config: ClassVar[type[ConnectorConfig]]

    def __init__(self, config: ConfigT, context: ConnectorContext) -> None:
        self.config = config
        self.context = context

    @abstractmethod
    async def lookup(self, identities: tuple[Identity, ...]) -> CustomerContext:
        """Return what the provider knows (``found=False`` when nothing), or raise
        ``ContextUnavailable``."""

    async def health(self) -> Health:
        return Health(ok=True, detail="no health check")

    async def start(self) -> None:
        """Called once when the hub starts."""

    async def stop(self) -> None:
        """Called once when the hub stops."""
