"""Result feedback to the regulator for the complaints it transferred (12378).

When a regulator-transferred ticket reaches ``resolved`` with an outcome, the bank owes the
branch that transferred it a record of what was decided (spec: "Feedback to the regulator").
``queue_feedback``, a reaction (``hub.reactions``), writes that record as an outbound message
(purpose ``regulator_feedback``) on the ticket's channel and puts it in the outbox, in the
transaction that resolved the ticket: a decision cannot commit without its feedback. The
channel's connector signs and posts it; the outbox retries while the endpoint is down.

``delivery_recorded``, an observer of channel deliveries (``hub.outbox.ChannelDelivery``),
records the answer in the transaction that records the delivery: a 2xx sets
``regulator_feedback_acknowledged_at`` (until then the lifecycle refuses to close the ticket);
a refusal is kept in the ticket's audit trail with the status and what the endpoint said, and
the message shows it as its ``delivery_error``.

Deciding again (the ticket was reopened and resolved once more) sends a new record and clears
the acknowledgement: the ticket closes only once the regulator has the latest decision.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.logs import redact_text
from hub.outbox import enqueue_message
from hub.sdk import DeliveryResult, DeliveryStatus
from hub.store import OutboxRow, OutboxStatus
from normalizer.pii import mask_name
from ticket_core import (
    AuditEvent,
    Direction,
    Message,
    Outcome,
    Status,
    Ticket,
    add_outbound,
    latest_reply_address,
)
from ticket_core.audit import record as audit_record

FEEDBACK_PURPOSE = "regulator_feedback"
TRANSFER_REF = "hotline12378.transfer"
ACKNOWLEDGED = "regulator.feedback_acknowledged"
REFUSED = "regulator.feedback_refused"
FAILED = "regulator.feedback_failed"
QUEUED = "regulator.feedback_queued"
SATISFACTION = {
    "satisfied": "satisfied",
    "unsatisfied": "unsatisfied",
    "dissatisfied": "unsatisfied",
}
_OUTCOME_ZH = {
    Outcome.resolved: "已解决",
    Outcome.partially_resolved: "部分解决",
    Outcome.rejected: "不予支持",
    Outcome.withdrawn: "投诉人撤诉",
}
_RESPONSES = ("reply", "progress")
EXCERPT = 300


async def queue_feedback(
    session: AsyncSession, events: Sequence[AuditEvent], now: datetime
) -> None:
    """For each regulator transfer these events resolved, queue the feedback record."""
    for event in events:
        if event.action != "ticket.status_changed" or event.ticket_id is None:
            continue
        if event.after.get("status") != Status.resolved.value:
            continue
        ticket = await session.get(Ticket, event.ticket_id)
        if ticket is None or not ticket.is_regulator_transfer or ticket.outcome is None:
            continue
        await _queue(session, ticket, event, now)


async def _queue(session: AsyncSession, ticket: Ticket, event: AuditEvent, now: datetime) -> None:
    address = await latest_reply_address(session, ticket)
    transfer_id = address.get("transfer_id") or _transfer_ref(ticket)
    if transfer_id is not None:
        address["transfer_id"] = transfer_id
    outcome = Outcome(ticket.outcome)  # type: ignore[arg-type]
    record = {
        "transfer_id": transfer_id,
        "ticket_number": ticket.number,
        "contacted_at": _iso(await _contacted_at(session, ticket)),
        "decided_at": _iso(ticket.resolved_at or now),
        "outcome": outcome.value,
        "summary": ticket.outcome_summary or "",
        "extensions": [dict(e) for e in ticket.extensions or []],
        "satisfaction": SATISFACTION.get((ticket.satisfaction or "").lower(), "unknown"),
        "handler": _handler(ticket, event.actor),
    }
    text = f"监管转办结果反馈（{transfer_id}）：{_OUTCOME_ZH[outcome]}"
    if ticket.outcome_summary:
        text += f"\n{ticket.outcome_summary}"
    message = await add_outbound(
        session,
        ticket,
        text=text,
        author="system",
        purpose=FEEDBACK_PURPOSE,
        reply_to=address,
        now=now,
    )
    enqueue_message(session, ticket, message, now, metadata=record)
    before = {"acknowledged_at": _iso(ticket.regulator_feedback_acknowledged_at)}
    ticket.regulator_feedback_acknowledged_at = None
    audit_record(
        session,
        ticket,
        actor="system",
        action=QUEUED,
        at=now,
        before=before,
        after={"message_id": message.id, "outcome": outcome.value, "transfer_id": transfer_id},
    )


def _transfer_ref(ticket: Ticket) -> str | None:
    for ref in ticket.external_refs or []:
        if ref.get("kind") == TRANSFER_REF:
            return str(ref.get("id"))
    return None


async def _contacted_at(session: AsyncSession, ticket: Ticket) -> datetime | None:
    """First contact with the complainant: the recorded first response, else the first reply
    or progress message a person sent."""
    if ticket.first_responded_at is not None:
        return ticket.first_responded_at
    query = (
        select(Message.created_at)
        .where(Message.ticket_id == ticket.id)
        .where(Message.direction == Direction.outbound)
        .where(col(Message.purpose).in_(_RESPONSES))
        .where(Message.author != "system")
        .order_by(col(Message.id))
    )
    return (await session.exec(query)).first()


def _handler(ticket: Ticket, decider: str) -> str:
    """The accountable department and person, masked: the person's name is personal data and
    the regulator needs to know who is accountable, not to be able to call them."""
    department = ticket.queue or "consumer-protection"
    person = ticket.assignee or decider
    _, _, name = person.rpartition(":")
    if not name or name == "system" or person.startswith("system"):
        return department
    return f"{department} / {mask_name(name)}"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


async def delivery_recorded(
    session: AsyncSession, row: OutboxRow, result: DeliveryResult, now: datetime
) -> None:
    """Record the regulator's answer to a feedback delivery on the ticket."""
    if row.purpose != FEEDBACK_PURPOSE or row.ticket_id is None or row.message_id is None:
        return
    if row.status == OutboxStatus.pending:
        return  # retried later; the outbox row shows the last error
    ticket = (
        await session.exec(select(Ticket).where(Ticket.id == row.ticket_id).with_for_update())
    ).first()
    if ticket is None:
        return
    if row.status == OutboxStatus.delivered:
        if ticket.regulator_feedback_acknowledged_at is not None:
            return
        if row.message_id != await _latest_feedback(session, ticket):
            return  # an earlier decision's record; the latest one still needs its answer
        ticket.regulator_feedback_acknowledged_at = now
        ticket.updated_at = now
        audit_record(
            session,
            ticket,
            actor="system",
            action=ACKNOWLEDGED,
            at=now,
            after={
                "message_id": row.message_id,
                "status": result.status_code,
                "at": now.isoformat(),
            },
        )
        return
    refused = result.status == DeliveryStatus.give_up and result.status_code is not None
    after: dict[str, Any] = {
        "message_id": row.message_id,
        "status": result.status_code,
        "excerpt": redact_text(result.response_excerpt)[:EXCERPT],
        "reason": row.last_error,
    }
    ticket.updated_at = now
    audit_record(
        session, ticket, actor="system", action=REFUSED if refused else FAILED, at=now, after=after
    )


async def _latest_feedback(session: AsyncSession, ticket: Ticket) -> int | None:
    query = (
        select(Message.id)
        .where(Message.ticket_id == ticket.id)
        .where(Message.purpose == FEEDBACK_PURPOSE)
        .order_by(col(Message.id).desc())
    )
    return (await session.exec(query)).first()
