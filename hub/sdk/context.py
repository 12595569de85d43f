"""Context providers: who the customer is (CRM) and how risky the case looks (anti-fraud).

Providers are looked up after the peer has been answered, never on the ack path; a provider
that is slow or down raises ``ContextUnavailable`` and the hub carries on without it, asking
again later with backoff. The hub gives a provider only identities a channel verified, so
whatever it answers is about an authenticated customer.

``post_signed_json`` is the one HTTP exchange both built-in providers make (a Standard
Webhooks-signed JSON request, a size-capped JSON answer, errors sorted into "try later" and
"refused"); a provider for another system may use it or speak its own protocol.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Generic

import httpx
from pydantic import AnyHttpUrl, Field, ValidationError

from hub.sdk.connector import ConfigT, ConnectorConfig, ConnectorContext, Health
from hub.sdk.delivery import _retry_after
from hub.sdk.fields import BearerToken, WebhookSecret
from hub.sdk.http import validation_errors
from hub.sdk.message import Identity
from hub.sdk.signing import signed_headers
from hub.sdk.version import SDK_VERSION

_TRANSIENT_STATUS = frozenset({408, 425, 429})
_EXCERPT = 200


class SignedHttpConfig(ConnectorConfig):
    """What every provider that speaks signed HTTP to an adapter needs (SDK 1.1): where, the
    signing secret, an optional gateway token, and limits on the exchange."""

    base_url: AnyHttpUrl = Field(description="the adapter's address; https in production")
    secret: WebhookSecret = Field(description="whsec_ secret that signs every request")
    bearer_token: BearerToken | None = Field(
        default=None, description="also sent as Authorization: Bearer, for an API gateway"
    )
    timeout_seconds: float = Field(
        default=3.0, gt=0, le=30, description="the whole exchange, answer included"
    )
    max_response_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)


class ContextUnavailable(Exception):
    """The provider could not answer now (timeout, 5xx, connection refused, an answer it
    could not read); try later. ``retry_after`` is the peer's own hint, in seconds."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class ContextRefused(Exception):
    """The provider refused this request (400, 401, 403, 404, 422): asking again will not
    help until someone fixes the configuration or the request. (SDK 1.1)"""


@dataclass(frozen=True, slots=True)
class ContextRequest:
    """What the hub knows when it asks for context: the ticket's first message. (SDK 1.1)

    ``identities`` holds only identities the channel verified. ``request_id`` is the same on
    every retry of one lookup, so a provider's peer can recognise repeats.
    """

    request_id: str
    identities: tuple[Identity, ...]
    ticket_number: str
    channel: str
    kind: str
    text: str
    received_at: datetime
    customer_ref: str | None = None
    """The bank's customer number, when a CRM has already named it for this customer."""


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
    links_customers: ClassVar[bool] = False
    """True for the bank's system of record for customers (the CRM): its ``customer_ref`` is
    the customer number, and the hub joins two customers whose verified identities it
    answers with the same number. (SDK 1.1)"""
    message_scoped: ClassVar[bool] = False
    """True when answers depend on the message, not only on the customer (anti-fraud reads
    the complaint): the hub then never reuses a recent answer for another ticket. (SDK 1.1)"""

    def __init__(self, config: ConfigT, context: ConnectorContext) -> None:
        self.config = config
        self.context = context

    @abstractmethod
    async def lookup(self, identities: tuple[Identity, ...]) -> CustomerContext:
        """Return what the provider knows (``found=False`` when nothing), or raise
        ``ContextUnavailable``."""

    async def context_for(self, request: ContextRequest) -> CustomerContext:
        """What the hub calls. Override it to use the message too (SDK 1.1); by default it
        looks the customer up by the identities alone."""
        return await self.lookup(request.identities)

    async def health(self) -> Health:
        return Health(ok=True, detail="no health check")

    async def start(self) -> None:
        """Called once when the hub starts."""

    async def stop(self) -> None:
        """Called once when the hub stops."""


async def probe_health(http: httpx.AsyncClient, url: str, *, timeout: float, what: str) -> Health:
    """A provider's health from a GET of its adapter's health address: any 2xx is healthy."""
    try:
        response = await http.get(url, timeout=timeout)
    except Exception as exc:
        return Health(ok=False, detail=f"{what} unreachable: {type(exc).__name__}")
    ok = 200 <= response.status_code < 300
    return Health(ok=ok, detail=f"{what} answered {response.status_code}")


def answer_problems(exc: ValidationError) -> str:
    """Which fields of a peer's answer were wrong, never their values (they may be personal
    data), for ``ContextUnavailable`` reasons and logs."""
    return "; ".join(f"{e['field']}: {e['message']}" for e in validation_errors(exc))[:500]


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


async def post_signed_json(
    http: httpx.AsyncClient,
    url: str,
    payload: Mapping[str, Any],
    *,
    secret: str,
    now: datetime,
    timeout: float,
    max_bytes: int,
    request_id: str | None = None,
    bearer_token: str | None = None,
) -> Any:
    """POST ``payload`` signed with Standard Webhooks headers; return the decoded JSON answer.

    The whole exchange (connect, send, every byte of the answer) must finish within
    ``timeout`` seconds, so a peer that trickles its answer cannot hold a worker. An answer
    longer than ``max_bytes`` is dropped unread. Raises ``ContextUnavailable`` for timeouts,
    transport errors, 408/425/429/5xx and answers that are not a JSON document (worth asking
    again later), ``ContextRefused`` for any other non-2xx status (a configuration problem).
    """
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    msg_id = request_id or f"ctx_{uuid.uuid4().hex}"
    headers = {
        "content-type": "application/json",
        "accept": "application/json",
        **signed_headers(secret, msg_id, body, now),
    }
    if bearer_token:
        headers["authorization"] = f"Bearer {bearer_token}"
    try:
        async with asyncio.timeout(timeout):
            status, response_headers, raw = await _exchange(
                http, url, body, headers, timeout, max_bytes
            )
    except TimeoutError:
        raise ContextUnavailable(f"no complete answer within {timeout:g} s") from None
    except httpx.TimeoutException as exc:
        raise ContextUnavailable(f"timeout: {type(exc).__name__}") from None
    except httpx.TransportError as exc:
        raise ContextUnavailable(f"connection error: {type(exc).__name__}") from None
    if not 200 <= status < 300:
        excerpt = raw[:_EXCERPT].decode("utf-8", "replace").strip()
        reason = f"HTTP {status}" + (f": {excerpt}" if excerpt else "")
        if status >= 500 or status in _TRANSIENT_STATUS:
            raise ContextUnavailable(reason, _retry_after(response_headers.get("retry-after")))
        raise ContextRefused(reason)
    media = response_headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise ContextUnavailable(f"the answer is {media or 'untyped'}, not application/json")
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ContextUnavailable(f"the answer is not JSON: {type(exc).__name__}") from None


async def _exchange(
    http: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    max_bytes: int,
) -> tuple[int, httpx.Headers, bytes]:
    async with http.stream("POST", url, content=body, headers=headers, timeout=timeout) as answer:
        declared = answer.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise ContextUnavailable(f"the answer is larger than {max_bytes} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in answer.aiter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise ContextUnavailable(f"the answer is larger than {max_bytes} bytes")
            chunks.append(chunk)
        return answer.status_code, answer.headers, b"".join(chunks)
