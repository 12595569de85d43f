"""Webhooks to core systems: subscriptions, events, Standard Webhooks delivery, delivery log.

Every change the ticket core makes is an audit event; in the transaction that makes it,
``fan_out`` (a reaction, see ``hub.reactions``) turns the new audit events into webhook
events and writes one outbox row per matching subscription. The dispatcher delivers them
through ``WebhookDelivery``: signed (with the previous secret too while a rotation overlaps),
retried over about a day, in order per ticket and endpoint, paused by a circuit breaker while
an endpoint keeps failing, and disabled, with the reason kept, after a long failure.
"""

from __future__ import annotations

import asyncio
import fnmatch
import ipaddress
import json
import socket
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy import update
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.backoff import Backoff
from hub.logs import redact_text
from hub.outbox import Claim
from hub.sdk import (
    DeliveryResult,
    DeliveryStatus,
    classify_exception,
    classify_response,
    generate_secret,
    sign,
)
from hub.settings import WebhookSettings
from hub.store import OutboxRow, SessionFactory, WebhookAttempt, WebhookSubscription
from ticket_core import AuditEvent, Clock, Customer, Message, Ticket

log = structlog.get_logger(__name__)

PAYLOAD_VERSION = "1"
EVENT_TYPES = (
    "ticket.created",
    "ticket.updated",
    "ticket.status_changed",
    "ticket.assigned",
    "message.created",
    "sla.warning",
    "sla.breached",
    "review.requested",
    "review.decided",
)


def target_of(subscription_id: int) -> str:
    return f"webhook:{subscription_id}"


# --- events -------------------------------------------------------------------------------


_UPDATES = frozenset(
    {
        "ticket.reference_added",
        "ticket.priority_changed",
        "ticket.flagged",
        "sla.extended",
        "survey.answered",
        "ticket.contacted",
        "context.received",
    }
)


def event_types(audit: AuditEvent) -> list[str]:
    """The webhook events one audit event stands for."""
    action = audit.action
    if action == "ticket.created":
        return ["ticket.created"]
    if action == "ticket.status_changed":
        types = ["ticket.status_changed", "ticket.updated"]
        if audit.after.get("status") == "under_review":
            types.append("review.requested")
        if audit.before.get("status") == "under_review":
            types.append("review.decided")
        return types
    if action in _UPDATES:
        return ["ticket.updated"]
    if action == "ticket.escalated":
        return ["ticket.assigned", "ticket.updated"]
    if action == "ticket.assigned":
        return ["ticket.assigned", "ticket.updated"]
    if action.startswith("message.") and action != "message.note":
        return ["message.created"]
    if action in EVENT_TYPES:
        return [action]
    return []


def matches(patterns: list[str], event_type: str) -> bool:
    return any(fnmatch.fnmatchcase(event_type, pattern) for pattern in patterns)


def check_patterns(patterns: list[str]) -> list[str]:
    """Patterns that match no event at all (typos), for a clear refusal."""
    return [p for p in patterns if not any(fnmatch.fnmatchcase(t, p) for t in EVENT_TYPES)]


async def fan_out(session: AsyncSession, pending: Sequence[AuditEvent], now: datetime) -> None:
    """Write one outbox row per subscription that wants each of these audit events."""
    # Disabled subscriptions get their events too; they wait until it is re-enabled.
    subscriptions = (await session.exec(select(WebhookSubscription))).all()
    if not subscriptions:
        return
    for audit in pending:
        types = event_types(audit)
        wanted = [(t, s) for t in types for s in subscriptions if matches(s.events, t)]
        if not wanted:
            continue
        snapshot = await _snapshot(session, audit)
        for event_type, subscription in wanted:
            session.add(
                OutboxRow(
                    idempotency_key=f"evt_{uuid.uuid4().hex}",
                    target=target_of(subscription.id),  # type: ignore[arg-type]
                    purpose=event_type,
                    payload=_payload(event_type, snapshot, subscription.clear_text, now),
                    ticket_id=audit.ticket_id,
                    next_attempt_at=now,
                    created_at=now,
                )
            )


async def _snapshot(session: AsyncSession, audit: AuditEvent) -> dict[str, Any]:
    ticket = await session.get(Ticket, audit.ticket_id) if audit.ticket_id else None
    message_id = audit.after.get("message_id")
    message = await session.get(Message, message_id) if message_id else None
    customer = await session.get(Customer, ticket.customer_id) if ticket else None
    return {
        "ticket": _ticket(ticket, customer) if ticket else None,
        "message": _message(message) if message else None,
        "change": {
            "action": audit.action,
            "actor": audit.actor,
            "before": audit.before,
            "after": audit.after,
            "at": audit.at.isoformat(),
        },
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _ticket(ticket: Ticket, customer: Customer | None) -> dict[str, Any]:
    return {
        "number": ticket.number,
        "kind": ticket.kind,
        "category": ticket.category,
        "priority": ticket.priority,
        "status": ticket.status,
        "channel": ticket.channel,
        "subject": ticket.subject,
        "queue": ticket.queue,
        "assignee": ticket.assignee,
        "flags": {
            "regulator_transfer": ticket.is_regulator_transfer,
            "vulnerable_customer": ticket.is_vulnerable,
            "suspected_fraud": ticket.is_suspected_fraud,
        },
        "outcome": ticket.outcome,
        "review_state": ticket.review_state,
        "customer": {
            "id": customer.id,
            "display_name": customer.display_name,
            "phone": customer.phone_masked,
        }
        if customer
        else None,
        "sla": {
            "policy": ticket.sla_policy,
            "first_response_due_at": _iso(ticket.first_response_due_at),
            "resolution_due_at": _iso(ticket.resolution_due_at),
        },
        "created_at": _iso(ticket.created_at),
        "updated_at": _iso(ticket.updated_at),
        "resolved_at": _iso(ticket.resolved_at),
        "closed_at": _iso(ticket.closed_at),
    }


def _message(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "direction": str(message.direction),
        "channel": message.channel,
        "purpose": message.purpose,
        "author": message.author,
        "text": message.text,
        "attachments": message.attachments,
        "created_at": _iso(message.created_at),
    }


def _payload(
    event_type: str, snapshot: dict[str, Any], clear: bool, now: datetime
) -> dict[str, Any]:
    data = {"version": PAYLOAD_VERSION, **snapshot}
    if not clear:
        if data["message"] is not None:
            data["message"] = {**data["message"], "text": redact_text(data["message"]["text"])}
        if data["ticket"] is not None:
            data["ticket"] = {**data["ticket"], "subject": redact_text(data["ticket"]["subject"])}
    return {"type": event_type, "timestamp": now.isoformat(), "data": data}


# --- subscriptions ------------------------------------------------------------------------


def new_subscription(
    url: str, events: list[str], description: str, clear_text: bool, now: datetime
) -> WebhookSubscription:
    """A subscription with a freshly generated secret (API and CLI alike)."""
    return WebhookSubscription(
        url=url,
        events=events,
        description=description,
        clear_text=clear_text,
        secret=generate_secret(),
        created_at=now,
        updated_at=now,
    )


class RotationOverlap(Exception):
    pass


def rotate_secret(subscription: WebhookSubscription, now: datetime, overlap_hours: float) -> str:
    """Give a new secret; the old one keeps signing for ``overlap_hours``. Refused while an
    earlier overlap runs: receivers may still verify with the secret it would discard."""
    until = subscription.previous_secret_until
    if until and until > now:
        raise RotationOverlap(
            f"the previous rotation's overlap is still running (until {until.isoformat()}); "
            "receivers still use that secret, so rotate again after it"
        )
    subscription.previous_secret = subscription.secret
    subscription.previous_secret_until = now + timedelta(hours=overlap_hours)
    subscription.secret = generate_secret()
    subscription.updated_at = now
    return subscription.secret


# --- endpoints ----------------------------------------------------------------------------


class TargetRefused(Exception):
    pass


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether an address is not a public one, including IPv4 hidden inside IPv6 forms."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and _internal(embedded):
            return True
    return not address.is_global or address.is_multicast


async def check_target(url: str, allow_private: bool) -> None:
    """Refuse URLs a webhook must not reach: other schemes, credentials in the URL, and
    (unless allowed) any host that resolves to a private, loopback, link-local or otherwise
    internal address. The host is read as httpx will connect to it (IDNA 2008)."""
    try:
        parsed = httpx.URL(url)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise TargetRefused(f"the URL cannot be parsed: {exc}") from None
    if not 0 < port < 65536:
        raise TargetRefused(f"the URL cannot be parsed: port {port} is out of range")
    if parsed.scheme not in ("http", "https"):
        raise TargetRefused(
            f"only http and https URLs are allowed, not {parsed.scheme or 'none'!r}"
        )
    if not parsed.host:
        raise TargetRefused("the URL has no host")
    if parsed.userinfo:
        raise TargetRefused("the URL must not carry credentials")
    if allow_private:
        return
    host = parsed.raw_host.decode("ascii").strip("[]")
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise TargetRefused(f"the host {parsed.host!r} does not resolve") from None
    for info in infos:
        if _internal(ipaddress.ip_address(info[4][0])):
            # The address itself is not echoed: it would map internal names for the caller.
            raise TargetRefused(
                f"{parsed.host} resolves to a private, loopback or link-local address; set "
                "webhooks.allow_private_targets to allow it"
            )


class WebhookDelivery:
    """Delivers ``webhook:<id>`` outbox rows; keeps the delivery log and the breaker."""

    kind = "webhook"

    def __init__(
        self,
        reads: SessionFactory,
        http: httpx.AsyncClient,
        clock: Clock,
        settings: WebhookSettings,
    ) -> None:
        self._reads = reads
        self._http = http
        self._clock = clock
        self._settings = settings
        self.max_attempts = settings.max_attempts
        self.backoff = Backoff(settings.backoff_initial, settings.backoff_max)

    async def claimable(self, session: AsyncSession, now: datetime) -> list[str]:
        ids = (
            await session.exec(
                select(WebhookSubscription.id)
                .where(WebhookSubscription.active == True)  # noqa: E712
                .where(
                    or_(
                        col(WebhookSubscription.paused_until).is_(None),
                        col(WebhookSubscription.paused_until) <= now,
                    )
                )
            )
        ).all()
        return [target_of(i) for i in ids]  # type: ignore[arg-type]

    async def deliver(self, claim: Claim) -> DeliveryResult:
        async with self._reads() as session:
            subscription = await session.get(WebhookSubscription, int(claim.name))
        if subscription is None or not subscription.active:
            return DeliveryResult.give_up("the subscription was deleted or disabled")
        try:
            await check_target(subscription.url, self._settings.allow_private_targets)
        except TargetRefused as exc:
            return DeliveryResult.give_up(f"target refused: {exc}")
        now = self._clock.now()
        body = json.dumps(claim.payload, ensure_ascii=False, separators=(",", ":")).encode()
        stamp = int(now.timestamp())
        signatures = [sign(subscription.secret, claim.idempotency_key, stamp, body)]
        if subscription.previous_secret and (subscription.previous_secret_until or now) > now:
            signatures.append(
                sign(subscription.previous_secret, claim.idempotency_key, stamp, body)
            )
        headers = {
            "content-type": "application/json",
            "webhook-id": claim.idempotency_key,
            "webhook-timestamp": str(stamp),
            "webhook-signature": " ".join(signatures),
        }
        try:
            response = await self._http.post(subscription.url, content=body, headers=headers)
        except Exception as exc:
            return classify_exception(exc)
        return classify_response(response)

    async def record(
        self,
        session: AsyncSession,
        claim: Claim,
        result: DeliveryResult,
        now: datetime,
        latency: float,
    ) -> None:
        session.add(
            WebhookAttempt(
                subscription_id=int(claim.name),
                outbox_id=claim.row_id,
                event_type=claim.purpose,
                attempted_at=now,
                result=result.status.value,
                status_code=result.status_code,
                latency_ms=round(latency * 1000),
                response_excerpt=redact_text(result.response_excerpt or result.reason) or None,
            )
        )
        if result.status == DeliveryStatus.delivered:
            # Only a failing subscription is written: a healthy one's row is not locked, so
            # the concurrent results of one claim do not commit one after another behind it.
            # A failure committing at the same moment may survive this success (as if it came
            # after it); the next success resets it, and ``_trip`` disables only on a run.
            await session.exec(
                update(WebhookSubscription)
                .where(col(WebhookSubscription.id) == int(claim.name))
                .where(
                    or_(
                        col(WebhookSubscription.consecutive_failures) != 0,
                        col(WebhookSubscription.failing_since).is_not(None),
                        col(WebhookSubscription.paused_until).is_not(None),
                    )
                )
                .values(
                    consecutive_failures=0, failing_since=None, paused_until=None, updated_at=now
                )
                .execution_options(synchronize_session=False)  # no ORM bookkeeping: 13% of CPU
            )
            return
        subscription = await session.get(WebhookSubscription, int(claim.name), with_for_update=True)
        if subscription is None:
            return
        subscription.consecutive_failures += 1
        subscription.failing_since = subscription.failing_since or now
        spent = claim.attempts >= self.max_attempts
        self._trip(subscription, result, now, budget_spent=spent)
        subscription.updated_at = now
        session.add(subscription)

    def _trip(
        self,
        subscription: WebhookSubscription,
        result: DeliveryResult,
        now: datetime,
        *,
        budget_spent: bool,
    ) -> None:
        """Pause after a run of failures; disable after a long failure, or when an event could
        not be delivered within its whole retry budget."""
        settings = self._settings
        assert subscription.failing_since is not None
        # A run of failures, not one: a success that raced a failure's commit may have left
        # a failure or two of an old run counted (successes reset without locking the row).
        long_failure = (
            now - subscription.failing_since >= timedelta(hours=settings.disable_after_hours)
            and subscription.consecutive_failures >= settings.breaker_failures
        )
        if long_failure or (budget_spent and result.status == DeliveryStatus.retry):
            subscription.active = False
            subscription.disabled_reason = (
                f"disabled {now.isoformat(timespec='seconds')}: failing since "
                f"{subscription.failing_since.isoformat(timespec='seconds')}; last error: "
                f"{redact_text(result.reason)}"
            )
            log.error(
                "webhook.disabled",
                subscription=subscription.id,
                reason=subscription.disabled_reason,
            )
        elif subscription.consecutive_failures >= settings.breaker_failures:
            subscription.paused_until = now + timedelta(seconds=settings.breaker_pause_seconds)
            log.warning(
                "webhook.paused",
                subscription=subscription.id,
                failures=subscription.consecutive_failures,
                until=subscription.paused_until.isoformat(),
            )


async def requeue_since(
    session: AsyncSession, subscription_id: int, since: datetime, now: datetime
) -> int:
    """Queue again every delivery of a subscription created since ``since`` (same ids)."""
    rows = (
        await session.exec(
            select(OutboxRow)
            .where(OutboxRow.target == target_of(subscription_id))
            .where(OutboxRow.created_at >= since)
            .where(OutboxRow.status != "pending")
            .with_for_update()
        )
    ).all()
    for row in rows:
        row.status = "pending"  # type: ignore[assignment]
        row.attempts = 0
        row.next_attempt_at = now
        row.locked_until = None
        row.claim_token = None
        session.add(row)
    return len(rows)
