"""Customers: who they are across channels, their context, their tickets; merges and undos.

Everything here is for staff. Risk scores, fraud flags and CRM profiles are shown to agents
and never reach the customer: no public route reads them and no notice is built from them.
A merge joins two customers on a supervisor's word and is undone the same way; both are
audited on every ticket of both customers (``ticket_core.customers``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import col, func, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub import ticket_actions as actions
from hub.api.dependencies import hub_of
from hub.auth import STAFF, Principal, Role, require
from hub.sdk import PlainText
from hub.store import ContextProviderState
from ticket_core import Customer, CustomerIdentity, Ticket, TicketNotFound, get_ticket
from ticket_core.customers import (
    CustomerNotFound,
    MergeNotFound,
    MergeRefused,
    undo_merge,
)
from ticket_core.models import (
    CONTEXT_PENDING,
    CustomerContextRecord,
    CustomerMerge,
    TicketContext,
)

router = APIRouter(prefix="/api/v1", tags=["customers"])

Staff = Annotated[Principal, Depends(require(*STAFF))]
Supervisor = Annotated[Principal, Depends(require(Role.supervisor, Role.admin))]
CustomerId = Annotated[int, Path(ge=1, le=2**62)]
MergeId = Annotated[int, Path(ge=1, le=2**62)]
TicketNumber = Annotated[str, Path(pattern=r"^[A-Z]{2,6}-\d{8}-\d{6,12}$")]
Reason = Annotated[PlainText, Field(min_length=3, max_length=500)]


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_customer: int = Field(alias="from", ge=1, le=2**62, description="merged away")
    into: int = Field(ge=1, le=2**62, description="the customer that remains")
    reason: Reason = Field(description="why they are one person; kept in the audit trail")


class UndoIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


class IdentityOut(BaseModel):
    kind: str
    value: str = Field(description="masked")
    verified: bool


class ContextOut(BaseModel):
    provider: str
    found: bool
    customer_ref: str | None
    name: str | None = Field(description="masked")
    tier: str | None
    segments: list[str]
    products: list[str]
    relationship_manager: str | None
    risk_score: float | None
    reasons: list[str]
    details: dict[str, Any]
    fetched_at: datetime


class LookupOut(BaseModel):
    """One provider's lookup for one ticket."""

    state: str = Field(description="pending, complete, unavailable, failed or skipped")
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    from_cache: bool
    found: bool | None
    risk_score: float | None
    reasons: list[str]
    requested_at: datetime
    completed_at: datetime | None


class CustomerTicketOut(BaseModel):
    number: str
    kind: str
    status: str
    priority: str
    channel: str
    queue: str | None
    flags: dict[str, bool]
    context_pending: bool
    created_at: datetime


class MergeOut(BaseModel):
    id: int
    kind: str
    from_customer: int
    into_customer: int
    reason: str
    evidence: dict[str, Any]
    actor: str
    created_at: datetime
    identities_moved: int
    tickets_moved: int
    undone_at: datetime | None
    undone_by: str | None
    undo_reason: str | None

    @classmethod
    def of(cls, merge: CustomerMerge) -> MergeOut:
        return cls(
            id=merge.id or 0,
            kind=merge.kind,
            from_customer=merge.source_id,
            into_customer=merge.target_id,
            reason=merge.reason,
            evidence=merge.evidence,
            actor=merge.actor,
            created_at=merge.created_at,
            identities_moved=len(merge.moved_identities),
            tickets_moved=len(merge.moved_tickets),
            undone_at=merge.undone_at,
            undone_by=merge.undone_by,
            undo_reason=merge.undo_reason,
        )


class CustomerOut(BaseModel):
    id: int
    display_name: str | None = Field(description="masked")
    phone: str | None = Field(description="masked")
    crm_ref: str | None = Field(description="the bank's customer number, as the CRM named it")
    tier: str | None
    tags: list[str]
    risk_level: str | None
    merged_into: int | None = Field(description="set while merged into another customer")
    created_at: datetime
    identities: list[IdentityOut]
    context: dict[str, ContextOut]
    tickets: list[CustomerTicketOut]
    tickets_total: int
    merges: list[MergeOut]


class TicketContextOut(BaseModel):
    """What agents see beside a ticket: the lookups, the flags they set, the customer."""

    number: str
    priority: str
    queue: str | None
    flags: dict[str, bool]
    context_pending: bool
    lookups: dict[str, LookupOut]
    paused_providers: dict[str, datetime] = Field(
        description="providers whose circuit breaker is open, until when"
    )
    customer_id: int
    context: dict[str, ContextOut]


def _flags(ticket: Ticket) -> dict[str, bool]:
    return {
        "regulator_transfer": ticket.is_regulator_transfer,
        "vulnerable_customer": ticket.is_vulnerable,
        "suspected_fraud": ticket.is_suspected_fraud,
    }


async def _contexts(session: AsyncSession, customer_id: int) -> dict[str, ContextOut]:
    rows = (
        await session.exec(
            select(CustomerContextRecord).where(CustomerContextRecord.customer_id == customer_id)
        )
    ).all()
    return {
        r.provider: ContextOut(
            provider=r.provider,
            found=r.found,
            customer_ref=r.customer_ref,
            name=r.name_masked,
            tier=r.tier,
            segments=list(r.segments),
            products=list(r.products),
            relationship_manager=r.relationship_manager,
            risk_score=r.risk_score,
            reasons=list(r.reasons),
            details=dict(r.details),
            fetched_at=r.fetched_at,
        )
        for r in rows
    }


async def _lookups(session: AsyncSession, ticket_ids: list[int]) -> dict[int, list[TicketContext]]:
    found: dict[int, list[TicketContext]] = {}
    if not ticket_ids:
        return found
    rows = await session.exec(
        select(TicketContext).where(col(TicketContext.ticket_id).in_(ticket_ids))
    )
    for row in rows.all():
        found.setdefault(row.ticket_id, []).append(row)
    return found


def _refused(exc: Exception) -> HTTPException:
    if isinstance(exc, CustomerNotFound | MergeNotFound):
        return HTTPException(404, str(exc))
    return HTTPException(409, str(exc))


@router.get(
    "/customers/{customer_id}",
    response_model=CustomerOut,
    summary="A customer: masked identities, context from each provider, tickets, merges",
)
async def read_customer(
    customer_id: CustomerId,
    request: Request,
    _: Staff,
    ticket_limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> CustomerOut:
    async with hub_of(request).reads() as session:
        customer = await session.get(Customer, customer_id)
        if customer is None:
            raise HTTPException(404, f"no customer {customer_id}")
        identities = (
            await session.exec(
                select(CustomerIdentity)
                .where(CustomerIdentity.customer_id == customer_id)
                .order_by(col(CustomerIdentity.id))
            )
        ).all()
        tickets_total = (
            await session.exec(
                select(func.count()).select_from(Ticket).where(Ticket.customer_id == customer_id)
            )
        ).one()
        tickets = (
            await session.exec(
                select(Ticket)
                .where(Ticket.customer_id == customer_id)
                .order_by(col(Ticket.id).desc())
                .limit(ticket_limit)
            )
        ).all()
        lookups = await _lookups(session, [t.id for t in tickets if t.id is not None])
        merges = (
            await session.exec(
                select(CustomerMerge)
                .where(
                    or_(
                        col(CustomerMerge.source_id) == customer_id,
                        col(CustomerMerge.target_id) == customer_id,
                    )
                )
                .order_by(col(CustomerMerge.id))
            )
        ).all()
        context = await _contexts(session, customer_id)
    return CustomerOut(
        id=customer_id,
        display_name=customer.display_name,
        phone=customer.phone_masked,
        crm_ref=customer.crm_ref,
        tier=customer.tier,
        tags=list(customer.tags),
        risk_level=customer.risk_level,
        merged_into=customer.merged_into_id,
        created_at=customer.created_at,
        identities=[
            IdentityOut(kind=i.kind, value=i.masked, verified=i.verified) for i in identities
        ],
        context=context,
        tickets=[
            CustomerTicketOut(
                number=t.number or "",
                kind=t.kind,
                status=t.status,
                priority=t.priority,
                channel=t.channel,
                queue=t.queue,
                flags=_flags(t),
                context_pending=any(
                    lk.state in CONTEXT_PENDING for lk in lookups.get(t.id or 0, [])
                ),
                created_at=t.created_at,
            )
            for t in tickets
        ],
        tickets_total=tickets_total,
        merges=[MergeOut.of(m) for m in merges],
    )


@router.post(
    "/customers/merge",
    status_code=201,
    response_model=MergeOut,
    summary="Merge two customers into one (supervisors); audited on every ticket of both",
    responses={
        404: {"description": "no such customer"},
        409: {"description": "refused: the detail says why (already merged, CRM disagrees)"},
    },
)
async def merge(body: MergeIn, request: Request, who: Supervisor) -> MergeOut:
    try:
        done = await actions.merge(
            hub_of(request),
            who,
            source_id=body.from_customer,
            target_id=body.into,
            reason=body.reason,
        )
    except actions.ActionRefused as exc:
        raise HTTPException(exc.status, exc.detail) from None
    return MergeOut.of(done)


@router.post(
    "/customers/merges/{merge_id}/undo",
    response_model=MergeOut,
    summary="Undo a merge: move back exactly what it moved (supervisors); audited",
    responses={
        404: {"description": "no such merge"},
        409: {"description": "already undone, or a later merge must be undone first"},
    },
)
async def undo(merge_id: MergeId, body: UndoIn, request: Request, who: Supervisor) -> MergeOut:
    hub = hub_of(request)
    now = hub.clock.now()
    async with hub.sessions() as session, session.begin():
        try:
            done = await undo_merge(session, merge_id, actor=who.actor, reason=body.reason, now=now)
        except (CustomerNotFound, MergeNotFound, MergeRefused) as exc:
            raise _refused(exc) from None
        await hub.reactions.run(session, now)
        return MergeOut.of(done)


@router.get(
    "/tickets/{number}/context",
    response_model=TicketContextOut,
    summary="A ticket's customer context: lookups (pending or not), flags, the CRM profile",
)
async def ticket_context(number: TicketNumber, request: Request, _: Staff) -> TicketContextOut:
    hub = hub_of(request)
    async with hub.reads() as session:
        try:
            ticket = await get_ticket(session, number)
        except TicketNotFound as exc:
            raise HTTPException(404, str(exc)) from None
        assert ticket.id is not None
        lookups = (await _lookups(session, [ticket.id])).get(ticket.id, [])
        paused = (
            await session.exec(
                select(ContextProviderState).where(
                    col(ContextProviderState.open_until) > hub.clock.now()
                )
            )
        ).all()
        context = await _contexts(session, ticket.customer_id)
    return TicketContextOut(
        number=number,
        priority=ticket.priority,
        queue=ticket.queue,
        flags=_flags(ticket),
        context_pending=any(lk.state in CONTEXT_PENDING for lk in lookups),
        lookups={lk.provider: LookupOut.model_validate(lk, from_attributes=True) for lk in lookups},
        paused_providers={p.name: p.open_until for p in paused if p.open_until is not None},
        customer_id=ticket.customer_id,
        context=context,
    )
