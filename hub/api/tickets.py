"""Tickets: read, reply on the customer's channel, add notes, move the lifecycle."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub import ticket_actions as actions
from hub.api.dependencies import hub_of
from hub.api.schemas import (
    AssignmentIn,
    ContactIn,
    ExtensionIn,
    MessageAccepted,
    NoteIn,
    ReplyIn,
    ReviewIn,
    TicketOut,
    TicketPage,
    TicketSummary,
    TransitionIn,
)
from hub.auth import STAFF, WRITERS, Principal, Role, require
from hub.runtime import Hub
from normalizer.pii import mask_pii
from ticket_core import (
    TRANSITIONS,
    AuditEvent,
    Customer,
    CustomerIdentity,
    Status,
    Ticket,
    TransitionRequest,
    clocks_of,
    messages_of,
)
from ticket_core.models import TicketContext

router = APIRouter(prefix="/api/v1/tickets", tags=["tickets"])

Staff = Annotated[Principal, Depends(require(*STAFF))]
TicketNumber = Annotated[str, Path(pattern=r"^[A-Z]{2,6}-\d{8}-\d{6,12}$")]
Writer = Annotated[Principal, Depends(require(*WRITERS))]
UNCLEARED = (Role.auditor,)
"""Roles that read tickets without clearance for the customer's personal data."""


async def _load(session: AsyncSession, number: str) -> Ticket:
    with _refusals():
        return await actions.load(session, number)


@contextmanager
def _refusals() -> Iterator[None]:
    try:
        yield
    except actions.ActionRefused as exc:
        raise HTTPException(exc.status, exc.detail) from None


async def _read_view(request: Request, number: str) -> TicketOut:
    hub = hub_of(request)
    async with hub.reads() as session:
        return await _view(session, hub, await _load(session, number))


async def _view(session: AsyncSession, hub: Hub, ticket: Ticket) -> TicketOut:
    customer = await session.get(Customer, ticket.customer_id)
    assert customer is not None
    identities = (
        await session.exec(
            select(CustomerIdentity).where(CustomerIdentity.customer_id == customer.id)
        )
    ).all()
    related = (
        await session.get(Ticket, ticket.related_ticket_id) if ticket.related_ticket_id else None
    )
    contexts = select(TicketContext).where(TicketContext.ticket_id == ticket.id)
    return TicketOut.of(
        ticket,
        customer,
        [{"kind": i.kind, "value": i.masked, "verified": i.verified} for i in identities],
        await messages_of(session, ticket),
        sorted(s.value for s in TRANSITIONS[Status(ticket.status)]),
        hub.clock.now(),
        await clocks_of(session, ticket),
        related.number if related is not None else None,
        list((await session.exec(contexts)).all()),
    )


@router.get("", response_model=TicketPage, summary="List tickets, newest first")
async def list_tickets(
    request: Request,
    _: Staff,
    status: Annotated[Status | None, Query()] = None,
    channel: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> TicketPage:
    query = select(Ticket)
    if status is not None:
        query = query.where(Ticket.status == status)
    if channel is not None:
        query = query.where(Ticket.channel == channel)
    async with hub_of(request).reads() as session:
        total = (await session.exec(select(func.count()).select_from(query.subquery()))).one()
        rows = (
            await session.exec(query.order_by(col(Ticket.id).desc()).limit(limit).offset(offset))
        ).all()
    items = [
        TicketSummary(
            number=t.number or "",
            kind=t.kind,
            priority=t.priority,
            status=t.status,
            channel=t.channel,
            subject=t.subject,
            created_at=t.created_at,
            resolution_due_at=t.resolution_due_at,
        )
        for t in rows
    ]
    return TicketPage(items=items, total=total, limit=limit, offset=offset)


@router.get(
    "/{number}", response_model=TicketOut, summary="One ticket with its messages and clocks"
)
async def read_ticket(number: TicketNumber, request: Request, who: Staff) -> TicketOut:
    """Auditors see what happened, not the customer's personal data: phone, id, card numbers
    and emails in message texts and the subject are masked for them."""
    hub = hub_of(request)
    async with hub.reads() as session:
        view = await _view(session, hub, await _load(session, number))
    if who.role in UNCLEARED:
        view.subject = mask_pii(view.subject)
        view.messages = [m.model_copy(update={"text": mask_pii(m.text)}) for m in view.messages]
    return view


@router.get("/{number}/audit", summary="The ticket's audit trail, oldest first")
async def read_audit(number: TicketNumber, request: Request, _: Staff) -> list[dict[str, object]]:
    async with hub_of(request).reads() as session:
        ticket = await _load(session, number)
        events = (
            await session.exec(
                select(AuditEvent)
                .where(AuditEvent.ticket_id == ticket.id)
                .order_by(col(AuditEvent.id))
            )
        ).all()
    return [e.model_dump(exclude={"ticket_id"}) for e in events]


@router.post(
    "/{number}/replies",
    status_code=202,
    response_model=MessageAccepted,
    summary="Reply to the customer on the ticket's channel",
    responses={409: {"description": "the ticket is closed"}},
)
async def reply(
    number: TicketNumber, body: ReplyIn, request: Request, who: Writer
) -> MessageAccepted:
    with _refusals():
        message = await actions.reply(hub_of(request), number, body.text, who)
    return MessageAccepted(message_id=message.id or 0, delivery_state=message.delivery_state)


@router.post(
    "/{number}/notes",
    status_code=201,
    response_model=MessageAccepted,
    summary="Add an internal note; never sent to the customer",
)
async def note(
    number: TicketNumber, body: NoteIn, request: Request, who: Writer
) -> MessageAccepted:
    with _refusals():
        message = await actions.note(hub_of(request), number, body.text, who)
    return MessageAccepted(message_id=message.id or 0, delivery_state=None)


@router.post(
    "/{number}/transitions",
    response_model=TicketOut,
    summary="Move the ticket in its lifecycle",
    responses={409: {"description": "the move is not allowed; `detail` names the rule"}},
)
async def move(
    number: TicketNumber, body: TransitionIn, request: Request, who: Writer
) -> TicketOut:
    to = TransitionRequest(body.to, body.outcome, body.summary, body.approve_review, body.reason)
    with _refusals():
        await actions.move(hub_of(request), number, to, who)
    return await _read_view(request, number)


@router.post(
    "/{number}/assignment",
    response_model=TicketOut,
    summary="Give the ticket to an agent and/or a queue",
)
async def reassign(
    number: TicketNumber, body: AssignmentIn, request: Request, who: Writer
) -> TicketOut:
    with _refusals():
        await actions.reassign(
            hub_of(request), number, who, assignee=body.assignee, queue=body.queue
        )
    return await _read_view(request, number)


@router.post(
    "/{number}/extensions",
    response_model=TicketOut,
    summary="Extend the resolution clock by the policy's next step",
    responses={
        403: {"description": "this extension needs a supervisor's approval"},
        409: {"description": "the policy allows no (further) extension; `detail` says why"},
    },
)
async def extend_clock(
    number: TicketNumber, body: ExtensionIn, request: Request, who: Writer
) -> TicketOut:
    """A supervisor's request is also the approval; an agent may ask for the steps that need
    none. The customer is told of each extension (see the notices)."""
    with _refusals():
        await actions.extend_clock(hub_of(request), number, body.reason, who)
    return await _read_view(request, number)


@router.post(
    "/{number}/review",
    response_model=TicketOut,
    summary="Decide a proposed outcome under review: approve, change it, or send it back",
    responses={
        403: {"description": "only a supervisor or admin reviews"},
        409: {"description": "not under review, or the reviewer proposed it"},
    },
)
async def review(number: TicketNumber, body: ReviewIn, request: Request, who: Writer) -> TicketOut:
    decision = actions.Review(body.decision, body.reason, body.outcome, body.summary)
    with _refusals():
        await actions.review(hub_of(request), number, decision, who)
    return await _read_view(request, number)


@router.post(
    "/{number}/contacts",
    response_model=TicketOut,
    summary="Record contact with the customer outside the channel (a phone call)",
)
async def contact(
    number: TicketNumber, body: ContactIn, request: Request, who: Writer
) -> TicketOut:
    """Counts as a response for the SLA clocks and is the first contact the regulator asks
    about; the summary stays internal."""
    with _refusals():
        await actions.contact(hub_of(request), number, who, via=body.via, summary=body.summary)
    return await _read_view(request, number)
