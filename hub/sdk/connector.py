"""The connector contract: one base class per plugin type, discovered through entry points.

A ``ChannelConnector`` carries messages in and out for one channel; a ``ContextProvider``
(``hub.sdk.context``) looks customers up. Each receives a typed, validated config and a
``ConnectorContext`` with everything it may use of the hub, and imports nothing else of it.
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
from hub.sdk.message import InboundMessage, TicketCommand
from hub.sdk.state import ConnectorState, MemoryState
from hub.sdk.version import SDK_VERSION


class ConnectorConfig(BaseModel):
    """Base for a connector's settings; unknown keys are errors so typos are caught at start."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Clock(Protocol):
    def now(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a channel can carry, shown to operators and agents (``tongdao connectors list``)."""

    inbound: bool = True
    outbound: bool = True
    message_kinds: tuple[str, ...] = ("text",)
    attachments: bool = False
    max_attachment_bytes: int = 0
    reply_window: timedelta | None = None
    rate_limit_per_second: float | None = None
    customer_messages: bool = True
    """False for a channel whose peer is not the customer (a regulator's transfer desk): the
    hub then sends acknowledgements and progress no other way than the ticket shows. (SDK 1.1)"""

    def describe(self) -> str:
        parts = [name for name, on in (("in", self.inbound), ("out", self.outbound)) if on]
        parts.append("kinds=" + "/".join(self.message_kinds))
        if self.attachments:
            parts.append(f"attachments<={self.max_attachment_bytes}B")
        if self.reply_window is not None:
            parts.append(f"reply window {self.reply_window.total_seconds() / 3600:g}h")
        if self.rate_limit_per_second is not None:
            parts.append(f"{self.rate_limit_per_second:g}/s")
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class PollResult:
    """What one poll found, and the cursor to poll from next time."""

    envelopes: tuple[InboundEnvelope, ...]
    cursor: str | None


@dataclass(frozen=True, slots=True)
class Health:
    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ConnectorContext:
    """What the hub lends a connector: where to store envelopes, an HTTP client, the time,
    and values shared with the connector's other processes (``state``, SDK 1.1; a hub that
    lends none leaves an in-process ``MemoryState``)."""

    name: str
    ingest: Ingest
    http: httpx.AsyncClient
    clock: Clock
    extra: dict[str, Any] = field(default_factory=dict)
    state: ConnectorState = field(default_factory=MemoryState)


ConfigT = TypeVar("ConfigT", bound=ConnectorConfig)


class ChannelConnector(ABC, Generic[ConfigT]):
    """A channel: inbound through HTTP routes (mounted under ``/channels/<name>``) or a poller,
    parsing of what came in, and sending to the customer."""

    name: ClassVar[str]
    sdk_version: ClassVar[str] = SDK_VERSION
    Config: ClassVar[type[ConnectorConfig]]
    capabilities: ClassVar[Capabilities] = Capabilities()
    poll_interval: ClassVar[float | None] = None
    """Seconds between polls; set it (and override ``poll``) for a channel the hub must fetch."""

    def __init__(self, config: ConfigT, context: ConnectorContext) -> None:
        self.config = config
        self.context = context

    def router(self) -> APIRouter | None:
        """Routes the peer calls; ``None`` for a connector that only polls or only sends."""
        return None

    @abstractmethod
    def parse(self, envelope: InboundEnvelope) -> InboundMessage | TicketCommand:
        """Turn a stored envelope into a channel-neutral message. Must be pure and repeatable:
        the hub may parse the same envelope again after a crash."""

    @abstractmethod
    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """Deliver one message. Never raise for the peer's behaviour: say delivered, retry or
        give up, and why."""

    async def poll(self, cursor: str | None) -> PollResult:
        """Fetch what arrived after ``cursor``. The hub stores every envelope, then the new
        cursor; after a crash it polls again from the old cursor and the unique
        ``(channel, external_id)`` key drops the repeats. Must not raise for the peer's
        behaviour being slow or down: return no envelopes and the same cursor."""
        return PollResult((), cursor)

    async def health(self) -> Health:
        return Health(ok=True, detail="no health check")

    async def start(self) -> None:
        """Called once when the hub starts, before any request."""

    async def stop(self) -> None:
        """Called once when the hub stops."""
