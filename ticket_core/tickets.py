"""Operations on tickets: take in a customer message, add outbound messages, move the lifecycle.

Every function works inside the caller's transaction and writes an audit event for each
change, so the caller can add its own effects (outbox rows) and commit them all at once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from ticket_core import audit, clocks
from ticket_core.customers import resolve_customer
from ticket_core.errors import IllegalTransition, MessageNotFound, TicketNotFound
from ticket_core.intake import IncomingAttachment, IncomingMessage
from ticket_core.lifecycle import TransitionRequest, check_transition
from ticket_core.models import (
    AttachmentBlob,
    DeliveryState,
    Direction,
    Message,
    Status,
    Ticket,
)
from ticket_core.policies import DEFAULT_BOOK, PolicyBook
from ticket_core.survey import read_satisfaction


@dataclass(frozen=True, slots=True)
class Intake:
    """What happened to an inbound message."""

    ticket: Ticket
    message: Message
    opened: bool
    reopened: bool
    survey_answer: str | None = None
    """The satisfaction the message gave in answer to our survey, if it was one."""


def format_number(created_at: datetime, ticket_id: int) -> str:
    return f"TD-{created_at:%Y%m%d}-{ticket_id:06d}"


async def get_ticket(session: AsyncSession, number: str, *, for_update: bool = False) -> Ticket:
    query = select(Ticket).where(Ticket.number == number)
    if for_update:
        query = query.with_for_update()
    ticket = (await session.exec(query)).first()
    if ticket is None:
        raise TicketNotFound(number)
    return ticket


async def messages_of(session: AsyncSession, ticket: Ticket) -> list[Message]:
    query = select(Message).where(Message.ticket_id == ticket.id).order_by(Message.id)
    return list((await session.exec(query)).all())


async def receive(
    session: AsyncSession,
    incoming: IncomingMessage,
    *,
    identity_key: bytes,
    now: datetime,
    reopen_window: timedelta,
    book: PolicyBook = DEFAULT_BOOK,
) -> Intake:
    """Thread an inbound message onto its ticket, or open a new one.

    A message names its ticket only through ``ticket_reference``; it joins that ticket when
    the ticket belongs to the same customer and is not closed. A resolved ticket reopens when
    the customer writes within ``reopen_window``, unless the message only answers our
    satisfaction survey; later, a new ticket is opened and linked to the old one.
    """
    customer = await resolve_customer(
        session,
        identity_key,
        incoming.identities,
        display_name=incoming.display_name,
        phone_masked=incoming.phone_masked,
        now=now,
        tags=incoming.customer_tags,
    )
    ticket = None
    related: Ticket | None = None
    if incoming.ticket_reference:
        ticket = (
            await session.exec(
                select(Ticket)
                .where(Ticket.number == incoming.ticket_reference)
                .where(Ticket.customer_id == customer.id)
                .with_for_update()
            )
        ).first()
        if ticket is not None and not _accepts_followup(ticket, now, reopen_window):
            related, ticket = ticket, None

    opened = reopened = False
    if ticket is None:
        ticket = await _open_ticket(
            session,
            incoming,
            customer.id,  # type: ignore[arg-type]
            now,
            book,
            related,
        )
        opened = True

    message = Message(
        ticket_id=ticket.id,  # type: ignore[arg-type]
        direction=Direction.inbound,
        channel=incoming.channel,
        external_id=incoming.external_id,
        purpose="customer",
        author="customer",
        text=incoming.text,
        attachments=await _store_attachments(session, incoming.attachments, now),
        reply_to=incoming.reply_to,
        created_at=incoming.received_at,
    )
    session.add(message)
    await session.flush()
    audit.record(
        session,
        ticket,
        actor="customer",
        action="message.received",
        at=now,
        after={"message_id": message.id, "channel": incoming.channel},
    )

    answer = None
    if not opened:
        status = Status(ticket.status)
        answer = read_satisfaction(incoming.text) if status == Status.resolved else None
        if answer is not None:
            before = {"satisfaction": ticket.satisfaction}
            ticket.satisfaction = answer
            audit.record(
                session,
                ticket,
                actor="customer",
                action="survey.answered",
                at=now,
                before=before,
                after={"satisfaction": answer, "message_id": message.id},
            )
        elif status == Status.resolved:
            await _move(session, ticket, TransitionRequest(Status.reopened), "customer", now, book)
            reopened = True
        elif status == Status.pending_customer:
            await _move(
                session, ticket, TransitionRequest(Status.in_progress), "customer", now, book
            )
        if answer is None:
            await clocks.customer_wrote(session, ticket, book, now)
    return Intake(ticket, message, opened, reopened, answer)


def _accepts_followup(ticket: Ticket, now: datetime, reopen_window: timedelta) -> bool:
    status = Status(ticket.status)
    if status == Status.closed:
        return False
    if status == Status.resolved:
        return ticket.resolved_at is not None and now - ticket.resolved_at <= reopen_window
    return True


async def _open_ticket(
    session: AsyncSession,
    incoming: IncomingMessage,
    customer_id: int,
    now: datetime,
    book: PolicyBook,
    related: Ticket | None,
) -> Ticket:
    started = incoming.clock_started_at or incoming.received_at
    ticket = Ticket(
        kind=incoming.kind,
        category=incoming.category,
        priority=incoming.priority,
        status=Status.new,
        channel=incoming.channel,
        customer_id=customer_id,
        subject=incoming.subject[:200],
        clock_started_at=started,
        related_ticket_id=related.id if related is not None else None,
        deadline_at=incoming.deadline,
        category_codes=dict(incoming.category_codes),
        language=incoming.language,
        queue=incoming.queue,
        is_regulator_transfer="regulator_transfer" in incoming.flags,
        is_vulnerable=bool({"elderly", "disabled"} & set(incoming.customer_tags)),
        external_refs=[
            {"kind": kind, "id": value, "by": incoming.channel, "at": now.isoformat()}
            for kind, value in incoming.references
        ],
        created_at=now,
        updated_at=now,
    )
    session.add(ticket)
    await session.flush()
    assert ticket.id is not None
    ticket.number = format_number(now, ticket.id)
    await clocks.start_clocks(session, ticket, book, now, incoming.policy)
    audit.record(
        session,
        ticket,
        actor="system",
        action="ticket.created",
        at=now,
        after={
            "number": ticket.number,
            "kind": ticket.kind,
            "channel": ticket.channel,
            "priority": ticket.priority,
            "classification": incoming.classification,
            "sla_policy": ticket.sla_policy,
            "related_ticket": related.number if related is not None else None,
        },
    )
    if incoming.routing:
        audit.record(
            session,
            ticket,
            actor="system",
            action="ticket.routed",
            at=now,
            after={**incoming.routing, "sla_policy": ticket.sla_policy},
        )
    return ticket


async def _store_attachments(
    session: AsyncSession, attachments: tuple[IncomingAttachment, ...], now: datetime
) -> list[dict[str, object]]:
    stored: list[dict[str, object]] = []
    for item in attachments:
        digest = hashlib.sha256(item.data).hexdigest()
        if await session.get(AttachmentBlob, digest) is None:
            session.add(
                AttachmentBlob(
                    sha256=digest,
                    size=len(item.data),
                    content_type=item.content_type,
                    data=item.data,
                    created_at=now,
                )
            )
            await session.flush()
        stored.append(
            {
                "name": item.name,
                "content_type": item.content_type,
                "sha256": digest,
                "size": len(item.data),
            }
        )
    return stored


async def add_attachments(
    session: AsyncSession,
    *,
    channel: str,
    external_id: str,
    attachments: tuple[IncomingAttachment, ...],
    note: str | None,
    now: datetime,
) -> tuple[Ticket, Message]:
    """Attachments that arrive after their message (media a channel fetches later) are added
    to that message, stored by content hash; ``note`` (why media is missing) goes on the
    ticket as an internal note. Raises ``MessageNotFound`` while the message is not there."""
    message = (
        await session.exec(
            select(Message)
            .where(Message.channel == channel)
            .where(Message.external_id == external_id)
            .where(Message.direction == Direction.inbound)
        )
    ).first()
    if message is None:
        raise MessageNotFound(channel, external_id)
    ticket = (
        await session.exec(select(Ticket).where(Ticket.id == message.ticket_id).with_for_update())
    ).one()
    known = {str(item.get("sha256")) for item in message.attachments}
    added = [
        a for a in await _store_attachments(session, attachments, now) if a["sha256"] not in known
    ]
    if added:
        message.attachments = [*message.attachments, *added]
        session.add(message)
        ticket.updated_at = now
        audit.record(
            session,
            ticket,
            actor="customer",
            action="attachment.added",
            at=now,
            after={"message_id": message.id, "attachments": added},
        )
    if note:
        await add_note(session, ticket, text=note, author=f"channel:{channel}", now=now)
    return ticket, message


async def add_outbound(
    session: AsyncSession,
    ticket: Ticket,
    *,
    text: str,
    author: str,
    purpose: str,
    reply_to: dict[str, object],
    now: datetime,
    book: PolicyBook = DEFAULT_BOOK,
) -> Message:
    """Record a message to the customer; the caller puts it in the outbox in this transaction.

    A person's reply or progress message is a response: it stops the response clocks. The
    hub's own notices (acknowledgement, automatic progress) are not."""
    message = Message(
        ticket_id=ticket.id,  # type: ignore[arg-type]
        direction=Direction.outbound,
        channel=ticket.channel,
        purpose=purpose,
        author=author,
        text=text,
        reply_to=reply_to,
        delivery_state=DeliveryState.pending,
        created_at=now,
    )
    session.add(message)
    await session.flush()
    is_response = purpose in RESPONSES and author != "system"
    if is_response and ticket.first_responded_at is None:
        ticket.first_responded_at = now
    ticket.updated_at = now
    audit.record(
        session,
        ticket,
        actor=author,
        action=f"message.{purpose}",
        at=now,
        after={"message_id": message.id, "channel": ticket.channel},
    )
    if is_response:
        await clocks.responded(session, ticket, book, now)
    if purpose == "reply" and Status(ticket.status) in {Status.new, Status.open, Status.reopened}:
        await _move(session, ticket, TransitionRequest(Status.in_progress), author, now, book)
    return message


async def record_contact(
    session: AsyncSession,
    ticket: Ticket,
    *,
    via: str,
    summary: str,
    actor: str,
    now: datetime,
    book: PolicyBook = DEFAULT_BOOK,
) -> None:
    """An agent reached the customer outside the ticket's channel (a phone call to a 12378
    complainant): it counts as a response and is the first contact the regulator asks about."""
    if Status(ticket.status) == Status.closed:
        raise IllegalTransition(ticket.status, ticket.status, "the ticket is closed")
    if ticket.first_responded_at is None:
        ticket.first_responded_at = now
    ticket.updated_at = now
    audit.record(
        session,
        ticket,
        actor=actor,
        action="ticket.contacted",
        at=now,
        after={"via": via, "summary": summary},
    )
    await clocks.responded(session, ticket, book, now)
    if Status(ticket.status) in {Status.new, Status.open, Status.reopened}:
        await _move(session, ticket, TransitionRequest(Status.in_progress), actor, now, book)


async def add_note(
    session: AsyncSession, ticket: Ticket, *, text: str, author: str, now: datetime
) -> Message:
    message = Message(
        ticket_id=ticket.id,  # type: ignore[arg-type]
        direction=Direction.note,
        channel="internal",
        purpose="note",
        author=author,
        text=text,
        created_at=now,
    )
    session.add(message)
    await session.flush()
    audit.record(
        session,
        ticket,
        actor=author,
        action="message.note",
        at=now,
        after={"message_id": message.id},
    )
    return message


async def assign(
    session: AsyncSession,
    ticket: Ticket,
    *,
    assignee: str | None,
    queue: str | None,
    actor: str,
    now: datetime,
    reason: str | None = None,
) -> None:
    """Give the ticket to an agent and/or a queue; ``None`` leaves that part as it is.

    ``reason`` (why automatic assignment chose this agent) is kept in the audit event."""
    before = {"assignee": ticket.assignee, "queue": ticket.queue}
    if assignee is not None:
        ticket.assignee = assignee or None
    if queue is not None:
        ticket.queue = queue or None
    ticket.updated_at = now
    audit.record(
        session,
        ticket,
        actor=actor,
        action="ticket.assigned",
        at=now,
        before=before,
        after={
            "assignee": ticket.assignee,
            "queue": ticket.queue,
            **({"reason": reason} if reason else {}),
        },
    )


async def add_reference(
    session: AsyncSession, ticket: Ticket, *, kind: str, value: str, actor: str, now: datetime
) -> None:
    """Attach another system's reference (a refund id, a card case number) to the ticket."""
    ticket.external_refs = [
        *ticket.external_refs,
        {"kind": kind, "id": value, "by": actor, "at": now.isoformat()},
    ]
    ticket.updated_at = now
    audit.record(
        session,
        ticket,
        actor=actor,
        action="ticket.reference_added",
        at=now,
        after={"kind": kind, "id": value},
    )


async def latest_reply_address(session: AsyncSession, ticket: Ticket) -> dict[str, object]:
    """Where the customer last wrote from on the ticket's channel; replies go there."""
    query = (
        select(Message)
        .where(Message.ticket_id == ticket.id)
        .where(Message.direction == Direction.inbound)
        .where(Message.channel == ticket.channel)
        .order_by(Message.id.desc())  # type: ignore[union-attr]
    )
    message = (await session.exec(query)).first()
    return dict(message.reply_to) if message is not None else {}


async def transition(
    session: AsyncSession,
    ticket: Ticket,
    request: TransitionRequest,
    *,
    actor: str,
    now: datetime,
    book: PolicyBook = DEFAULT_BOOK,
    auto_close_after: timedelta | None = None,
) -> Ticket:
    """Apply a lifecycle move, or raise ``IllegalTransition`` with the rule that forbids it.

    ``auto_close_after`` arms the automatic close when the move resolves the ticket."""
    return await _move(session, ticket, request, actor, now, book, auto_close_after)


async def _move(
    session: AsyncSession,
    ticket: Ticket,
    request: TransitionRequest,
    actor: str,
    now: datetime,
    book: PolicyBook = DEFAULT_BOOK,
    auto_close_after: timedelta | None = None,
) -> Ticket:
    check_transition(ticket, request)
    current = Status(ticket.status)
    if current == Status.under_review and actor != "system" and actor == ticket.proposed_by:
        raise IllegalTransition(
            current.value,
            request.to.value,
            "the one who proposed the outcome cannot review it; another reviewer decides",
        )
    before = {"status": ticket.status, "outcome": ticket.outcome}
    target = request.to
    if request.outcome is not None:
        ticket.outcome = request.outcome
    if request.summary is not None:
        ticket.outcome_summary = request.summary
    if target == Status.under_review:
        ticket.review_state = "requested"
        ticket.proposed_by = actor
        ticket.review_note = None
    elif current == Status.under_review:
        ticket.review_state = "approved" if target == Status.resolved else "sent_back"
        ticket.review_note = request.reason
    if target == Status.resolved:
        ticket.resolved_at = now
    elif target == Status.closed:
        ticket.closed_at = now
    ticket.status = target
    ticket.updated_at = now
    after: dict[str, object] = {"status": ticket.status, "outcome": ticket.outcome}
    if request.reason:
        after["reason"] = request.reason
    audit.record(
        session,
        ticket,
        actor=actor,
        action="ticket.status_changed",
        at=now,
        before=before,
        after=after,
    )
    await clocks.status_changed(
        session, ticket, current, target, request.reason, book, now, auto_close_after
    )
    return ticket


async def mark_delivery(
    session: AsyncSession, message_id: int, state: DeliveryState, error: str | None = None
) -> None:
    message = await session.get(Message, message_id)
    if message is None:
        return
    message.delivery_state = state
    message.delivery_error = error
    session.add(message)


RESPONSES = frozenset({"reply", "progress"})

__all__ = [
    "RESPONSES",
    "Intake",
    "add_note",
    "add_outbound",
    "add_reference",
    "assign",
    "format_number",
    "get_ticket",
    "latest_reply_address",
    "mark_delivery",
    "messages_of",
    "receive",
    "record_contact",
    "transition",
]
