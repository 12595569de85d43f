"""Audit events chained by hash per ticket, so an edited, removed or reordered event shows."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from ticket_core.models import AuditEvent, Ticket

GENESIS = "0" * 64


def event_hash(
    prev_hash: str,
    *,
    ticket_id: int | None,
    actor: str,
    action: str,
    before: dict[str, Any],
    after: dict[str, Any],
    at: datetime,
) -> str:
    body = json.dumps(
        {
            "ticket_id": ticket_id,
            "actor": actor,
            "action": action,
            "before": before,
            "after": after,
            "at": at.isoformat(),
        },
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(f"{prev_hash}|{body}".encode()).hexdigest()


def record(
    session: AsyncSession,
    ticket: Ticket,
    *,
    actor: str,
    action: str,
    at: datetime,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append an event to the ticket's chain; the caller holds the ticket row for update."""
    prev = ticket.audit_head or GENESIS
    before, after = before or {}, after or {}
    digest = event_hash(
        prev, ticket_id=ticket.id, actor=actor, action=action, before=before, after=after, at=at
    )
    event = AuditEvent(
        ticket_id=ticket.id,
        actor=actor,
        action=action,
        before=before,
        after=after,
        at=at,
        prev_hash=prev,
        hash=digest,
    )
    ticket.audit_head = digest
    session.add(event)
    session.add(ticket)
    return event


def verify_chain(events: list[AuditEvent]) -> list[str]:
    """Problems found in one ticket's events, oldest first; empty when the chain holds."""
    problems: list[str] = []
    prev = GENESIS
    for event in events:
        if event.prev_hash != prev:
            problems.append(f"event {event.id}: does not follow the previous event")
        expected = event_hash(
            event.prev_hash,
            ticket_id=event.ticket_id,
            actor=event.actor,
            action=event.action,
            before=event.before,
            after=event.after,
            at=event.at,
        )
        if expected != event.hash:
            problems.append(f"event {event.id}: content does not match its hash")
        prev = event.hash
    return problems
