"""Outbound delivery: what the hub asks a connector to send, and how the connector answers."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any

import httpx


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """``idempotency_key`` is the same on every attempt; peers use it to drop repeats."""

    channel: str
    idempotency_key: str
    ticket_number: str
    recipient: dict[str, Any]
    text: str
    purpose: str
    created_at: datetime
    metadata: dict[str, Any] = field(default_factory=dict)


class DeliveryStatus(StrEnum):
    delivered = "delivered"
    retry = "retry"
    give_up = "give_up"


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    status: DeliveryStatus
    reason: str = ""
    retry_after: float | None = None
    peer_reference: str | None = None
    status_code: int | None = None
    """The peer's status code when there was an answer, for delivery logs and agents: the HTTP
    status, or the SMTP reply code for mail (``550``)."""
    response_excerpt: str = ""

    @classmethod
    def delivered(cls, peer_reference: str | None = None) -> DeliveryResult:
        return cls(DeliveryStatus.delivered, "", None, peer_reference)

    @classmethod
    def retry(cls, reason: str, retry_after: float | None = None) -> DeliveryResult:
        return cls(DeliveryStatus.retry, reason, retry_after)

    @classmethod
    def give_up(cls, reason: str) -> DeliveryResult:
        return cls(DeliveryStatus.give_up, reason)


_RETRYABLE_4XX = {408, 425, 429}
MAX_RETRY_AFTER = 86400.0


def classify_response(response: httpx.Response) -> DeliveryResult:
    """The usual reading of an HTTP peer's answer: 2xx delivered; 408/429/5xx later; 4xx never."""
    code = response.status_code
    excerpt = response.text[:200].strip()
    if 200 <= code < 300:
        status, reason, retry_after = DeliveryStatus.delivered, "", None
    elif code >= 500 or code in _RETRYABLE_4XX:
        status, reason = DeliveryStatus.retry, f"HTTP {code}" + (f": {excerpt}" if excerpt else "")
        retry_after = _retry_after(response.headers.get("retry-after"))
    else:
        status, reason = (
            DeliveryStatus.give_up,
            f"HTTP {code}" + (f": {excerpt}" if excerpt else ""),
        )
        retry_after = None
    return DeliveryResult(
        status, reason, retry_after, response.headers.get("x-request-id"), code, excerpt
    )


def classify_exception(exc: Exception) -> DeliveryResult:
    """Transport failures are worth retrying; anything else is a bug and is given up on."""
    if isinstance(exc, httpx.TimeoutException):
        return DeliveryResult.retry(f"timeout: {type(exc).__name__}")
    if isinstance(exc, httpx.TransportError):
        return DeliveryResult.retry(f"connection error: {type(exc).__name__}: {exc}")
    return DeliveryResult.give_up(f"{type(exc).__name__}: {exc}")


async def post_json(
    client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]
) -> DeliveryResult:
    """POST and classify; never raises for the peer's behaviour."""
    try:
        response = await client.post(
            url, content=body, headers={"content-type": "application/json", **headers}
        )
    except Exception as exc:
        return classify_exception(exc)
    return classify_response(response)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta or HTTP-date), at most a day; None if unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # "-0000" means UTC with no zone information
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if math.isnan(seconds):
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER)
