"""One ticket's whole history as one document, for an inspection.

An inspector (a regulator's on-site examination, the internal audit) gets everything the
hub knows of a case in one JSON document: the ticket, the customer as staff see them (masked
forms only: never identity hashes nor what they were computed from), every message including
internal notes with its delivery state, attachment metadata, the SLA clocks, and the full
audit chain with its hashes and the result of verifying it. The export is itself an audit
event on the ticket (``ticket.exported``: who, when), recorded before the document is built
so the document shows its own export and the chain it carries verifies end to end.

The document carries every input of every event hash (``ticket_id`` included, ``at`` exactly
as hashed), so it can be re-verified without access to the hub.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ticket_core import audit
from ticket_core.models import (
    AttachmentBlob,
    AuditEvent,
    Customer,
    CustomerIdentity,
    Message,
    SlaClock,
    Ticket,
)

EXPORT_FORMAT = "tongdao.ticket-export/1"
EXPORTED = "ticket.exported"


def record_export(session: AsyncSession, ticket: Ticket, *, actor: str, now: datetime) -> None:
    """Write the ``ticket.exported`` event; the caller holds the ticket row for update.

    The event names the head the export started from, so the document can be matched to
    the chain later even after more events follow.
    """
    audit.record(
        session,
        ticket,
        actor=actor,
        action=EXPORTED,
        at=now,
        before={"audit_head": ticket.audit_head},
        after={"format": EXPORT_FORMAT},
    )


async def export_document(
    session: AsyncSession, ticket: Ticket, *, exported_by: str, exported_at: datetime
) -> dict[str, Any]:
    """The inspection document of ``ticket`` as it stands in this transaction (JSON-ready)."""
    await session.flush()
    customer = await session.get(Customer, ticket.customer_id)
    identities = (
        await session.exec(
            select(CustomerIdentity)
            .where(CustomerIdentity.customer_id == ticket.customer_id)
            .order_by(col(CustomerIdentity.id))
        )
    ).all()
    messages = (
        await session.exec(
            select(Message).where(Message.ticket_id == ticket.id).order_by(col(Message.id))
        )
    ).all()
    clocks = (
        await session.exec(
            select(SlaClock).where(SlaClock.ticket_id == ticket.id).order_by(col(SlaClock.id))
        )
    ).all()
    events = (
        await session.exec(
            select(AuditEvent).where(AuditEvent.ticket_id == ticket.id).order_by(col(AuditEvent.id))
        )
    ).all()
    related = (
        await session.get(Ticket, ticket.related_ticket_id) if ticket.related_ticket_id else None
    )
    problems = audit.check_chain(
        events, head=ticket.audit_head, ticket_id=ticket.id, ticket_number=ticket.number
    )
    return {
        "format": EXPORT_FORMAT,
        "exported_at": _iso(exported_at),
        "exported_by": exported_by,
        "ticket": _ticket(ticket, related.number if related else None),
        "customer": _customer(customer, identities) if customer else None,
        "messages": [_message(m) for m in messages],
        "attachments": await _attachments(session, messages),
        "sla": {
            "policy": ticket.sla_policy,
            "clock_started_at": _iso(ticket.clock_started_at),
            "deadline_at": _iso(ticket.deadline_at),
            "first_response_due_at": _iso(ticket.first_response_due_at),
            "first_responded_at": _iso(ticket.first_responded_at),
            "resolution_due_at": _iso(ticket.resolution_due_at),
            "resolved_at": _iso(ticket.resolved_at),
            "escalated_at": _iso(ticket.escalated_at),
            "extensions": ticket.extensions,
            "clocks": [_clock(c) for c in clocks],
        },
        "audit": {
            "head": ticket.audit_head,
            "genesis": audit.GENESIS,
            "hash": (
                "sha256(prev_hash + '|' + JSON of {ticket_id, actor, action, before, after, "
                "at} with sorted keys, no ASCII escaping, separators ', ' and ': ')"
            ),
            "events": [_event(e) for e in events],
        },
        "verification": {
            "ok": not problems,
            "events_checked": len(events),
            "problems": [p.as_dict() for p in problems],
        },
    }


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def _ticket(ticket: Ticket, related_number: str | None) -> dict[str, Any]:
    # progress_code_hash is left out: it is derived from the customer's lookup code.
    return {
        "id": ticket.id,
        "number": ticket.number,
        "kind": ticket.kind,
        "category": ticket.category,
        "category_codes": ticket.category_codes,
        "priority": ticket.priority,
        "status": ticket.status,
        "channel": ticket.channel,
        "language": ticket.language,
        "subject": ticket.subject,
        "queue": ticket.queue,
        "assignee": ticket.assignee,
        "flags": {
            "regulator_transfer": ticket.is_regulator_transfer,
            "vulnerable_customer": ticket.is_vulnerable,
            "suspected_fraud": ticket.is_suspected_fraud,
        },
        "outcome": ticket.outcome,
        "outcome_summary": ticket.outcome_summary,
        "review_state": ticket.review_state,
        "proposed_by": ticket.proposed_by,
        "review_note": ticket.review_note,
        "satisfaction": ticket.satisfaction,
        "external_refs": ticket.external_refs,
        "related_ticket": related_number,
        "regulator_feedback_acknowledged_at": _iso(ticket.regulator_feedback_acknowledged_at),
        "created_at": _iso(ticket.created_at),
        "updated_at": _iso(ticket.updated_at),
        "resolved_at": _iso(ticket.resolved_at),
        "closed_at": _iso(ticket.closed_at),
    }


def _customer(customer: Customer, identities: Sequence[CustomerIdentity]) -> dict[str, Any]:
    return {
        "id": customer.id,
        "display_name": customer.display_name,
        "phone": customer.phone_masked,
        "crm_ref": customer.crm_ref,
        "tier": customer.tier,
        "tags": customer.tags,
        "risk_level": customer.risk_level,
        "created_at": _iso(customer.created_at),
        "identities": [
            {
                "kind": i.kind,
                "value": i.masked,
                "verified": i.verified,
                "created_at": _iso(i.created_at),
            }
            for i in identities
        ],
    }


def _message(message: Message) -> dict[str, Any]:
    # reply_to is left out: it holds the customer's address on the channel in clear.
    return {
        "id": message.id,
        "direction": message.direction,
        "channel": message.channel,
        "external_id": message.external_id,
        "purpose": message.purpose,
        "author": message.author,
        "text": message.text,
        "attachments": message.attachments,
        "delivery_state": message.delivery_state,
        "delivery_error": message.delivery_error,
        "created_at": _iso(message.created_at),
    }


async def _attachments(session: AsyncSession, messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Each message's attachments with whether the stored bytes are there at the size the
    message names (the bytes themselves stay in the hub)."""
    listed = [(m.id, a) for m in messages for a in m.attachments]
    digests = {str(a.get("sha256")) for _, a in listed}
    stored: dict[str, int] = {}
    if digests:
        rows = await session.exec(
            sa.select(AttachmentBlob.sha256, AttachmentBlob.size).where(
                col(AttachmentBlob.sha256).in_(digests)
            )
        )
        stored = {sha: size for sha, size in rows.all()}
    return [
        {
            "message_id": message_id,
            "name": item.get("name"),
            "content_type": item.get("content_type"),
            "sha256": item.get("sha256"),
            "size": item.get("size"),
            "stored": stored.get(str(item.get("sha256"))) == item.get("size"),
        }
        for message_id, item in listed
    ]


def _clock(clock: SlaClock) -> dict[str, Any]:
    return {
        "name": clock.name,
        "policy": clock.policy,
        "basis": clock.basis,
        "state": clock.state,
        "started_at": _iso(clock.started_at),
        "due_at": _iso(clock.due_at),
        "target_seconds": clock.target_seconds,
        "paused_at": _iso(clock.paused_at),
        "remaining_seconds": clock.remaining_seconds,
        "warnings_sent": clock.warnings_sent,
        "stopped_at": _iso(clock.stopped_at),
        "breached_at": _iso(clock.breached_at),
    }


def _event(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "ticket_id": event.ticket_id,
        "actor": event.actor,
        "action": event.action,
        "before": event.before,
        "after": event.after,
        "at": _iso(event.at),
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }
