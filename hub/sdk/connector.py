"""The connector contract: one base class per plugin type, discovered through entry points.

A ``ChannelConnector`` carries messages in and out for one channel. It receives a typed,
validated config and a ``ConnectorContext`` with everything it may use of the hub; it never
imports anything else of the hub.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import httpx
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from hub.sdk.delivery import DeliveryResult, OutboundMessage
from hub.sdk.envelope import InboundEnvelope, Ingest
from hub.sdk.message import InboundMessage
from hub.sdk.version import SDK_VERSION


class ConnectorConfig(BaseModel):
    """Base for a connector's settings; unknown keys are errors so typos are caught at start."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Clock(Protocol):
    def now(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class Capabilities:
    inbound: bool = True
    outbound: bool = True
    message_kinds: tuple[str, ...] = ("text",)
    attachments: bool = False
    max_attachment_bytes: int = 0
    reply_window: timedelta | None = None
    rate_limit_per_second: float | None = None


@dataclass(frozen=True, slots=True)
class Health:
    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ConnectorContext:
    """What the hub lends a connector: where to store envelopes, an HTTP client, the time."""

    name: str
    ingest: Ingest
    http: httpx.AsyncClient
    clock: Clock
    extra: dict[str, Any] = field(default_factory=dict)


ConfigT = TypeVar("ConfigT", bound=ConnectorConfig)


class ChannelConnector(ABC, Generic[ConfigT]):
    """A channel: HTTP routes (mounted under ``/channels/<name>``), parsing, and sending."""

    name: ClassVar[str]
    sdk_version: ClassVar[str] = SDK_VERSION
    Config: ClassVar[type[ConnectorConfig]]
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, config: ConfigT, context: ConnectorContext) -> None:
        self.config = config
        self.context = context

    def router(self) -> APIRouter | None:
        """Routes the peer calls; ``None`` for a connector that only polls or only sends."""
        return None

    @abstractmethod
    def parse(self, envelope: InboundEnvelope) -> InboundMessage:
        """Turn a stored envelope into a channel-neutral message. Must be pure and repeatable:
        the hub may parse the same envelope again after a crash."""

    @abstractmethod
    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """Deliver one message. Never raise for the peer's behaviour: say delivered, retry or
        give up, and why."""

    async def health(self) -> Health:
        return Health(ok=True, detail="no health check")

    async def start(self) -> None:
        """Called once when the hub starts, before any request."""

    async def stop(self) -> None:
        """Called once when the hub stops."""
