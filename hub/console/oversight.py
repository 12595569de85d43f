"""What supervisors oversee: outcomes waiting for review, and tickets that breached a clock
or were escalated."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.auth import Role
from hub.console.queue import OPEN
from hub.console.rendering import render
from hub.console.sessions import Staff, staff_only
from hub.runtime import Hub
from hub.ticket_actions import EXTENDED, EXTENSION_REQUESTED
from normalizer.pii import mask_pii
from ticket_core import AuditEvent, ClockState, SlaClock, Status, Ticket

router = APIRouter()
Overseer = Annotated[Staff, Depends(staff_only(Role.supervisor, Role.admin))]

LIST_LIMIT = 500
"""Rows a list shows; more than this waiting is a staffing problem the count makes plain."""


# --- the review queue ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Proposal:
    """A ticket waiting for a supervisor's decision on its proposed outcome."""

    ticket: Ticket
    subject: str
    proposer: str | None
    proposed_at: datetime | None


async def _proposals(session: AsyncSession) -> tuple[list[Proposal], int]:
    """Tickets under review, the longest waiting first, each with the latest audit event
    that moved it there: who proposed the outcome and when."""
    waiting = select(Ticket.id).where(Ticket.status == Status.under_review)
    latest = (
        select(AuditEvent.ticket_id, sa.func.max(AuditEvent.id).label("event_id"))
        .where(AuditEvent.action == "ticket.status_changed")
        .where(col(AuditEvent.after)["status"].as_string() == Status.under_review.value)
        .where(col(AuditEvent.ticket_id).in_(waiting))
        .group_by(col(AuditEvent.ticket_id))
        .subquery("proposed")
    )
    since = sa.func.coalesce(col(AuditEvent.at), col(Ticket.updated_at))
    query = (
        select(Ticket, AuditEvent)
        .outerjoin(latest, latest.c.ticket_id == Ticket.id)
        .outerjoin(AuditEvent, col(AuditEvent.id) == latest.c.event_id)
        .where(Ticket.status == Status.under_review)
        .order_by(since, col(Ticket.id))
        .limit(LIST_LIMIT)
    )
    rows = (await session.exec(query)).all()
    total = (await session.exec(select(sa.func.count()).select_from(waiting.subquery()))).one()
    proposals = [
        Proposal(
            ticket,
            mask_pii(ticket.subject),
            event.actor if event is not None else ticket.proposed_by,
            event.at if event is not None else None,
        )
        for ticket, event in rows
    ]
    return proposals, total


@dataclass(frozen=True, slots=True)
class ExtensionRequest:
    """An agent's request for an extension step that needs a supervisor, not yet granted."""

    ticket: Ticket
    subject: str
    requested_by: str
    requested_at: datetime
    reason: str


async def _extension_requests(session: AsyncSession) -> list[ExtensionRequest]:
    request = aliased(AuditEvent, name="request")
    later = sa.exists().where(
        col(AuditEvent.ticket_id) == request.ticket_id,
        col(AuditEvent.action) == EXTENDED,
        col(AuditEvent.id) > request.id,
    )
    rows = (
        await session.exec(
            select(request, Ticket)
            .join(Ticket, Ticket.id == request.ticket_id)  # type: ignore[arg-type]
            .where(
                request.action == EXTENSION_REQUESTED,
                col(Ticket.status).in_(OPEN),
                ~later,
            )
            .order_by(request.id)
            .limit(LIST_LIMIT)
        )
    ).all()
    latest: dict[int, ExtensionRequest] = {}
    for event, ticket in rows:  # a ticket asked twice shows its latest request
        latest[ticket.id or 0] = ExtensionRequest(
            ticket=ticket,
            subject=mask_pii(ticket.subject),
            requested_by=event.actor,
            requested_at=event.at,
            reason=mask_pii(str(event.after.get("reason", ""))),
        )
    return list(latest.values())


@router.get("/review", include_in_schema=False)
async def review_queue(request: Request, staff: Overseer) -> Response:
    hub: Hub = request.app.state.hub
    async with hub.reads() as session:
        proposals, total = await _proposals(session)
        extensions = await _extension_requests(session)
    return render(
        request,
        staff,
        "review_queue.html",
        active="review",
        proposals=proposals,
        extensions=extensions,
        total=total,
        limit=LIST_LIMIT,
    )


# --- escalations --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Escalation:
    """An open ticket that breached a clock or was moved to the escalation queue."""

    ticket: Ticket
    subject: str
    breached: tuple[SlaClock, ...]
    overdue: timedelta | None
    """Since the earliest due time still unmet (a breached clock, or the resolution due)."""


def _overdue(ticket: Ticket, breached: list[SlaClock], now: datetime) -> timedelta | None:
    dues = [c.due_at for c in breached if c.stopped_at is None]
    if ticket.resolution_due_at is not None and ticket.resolution_due_at < now:
        dues.append(ticket.resolution_due_at)
    return now - min(dues) if dues else None


def _breach() -> sa.ColumnElement[bool]:
    return sa.or_(
        col(SlaClock.state) == ClockState.breached.value, col(SlaClock.breached_at).is_not(None)
    )


async def _escalations(
    session: AsyncSession, queue: str | None, now: datetime
) -> tuple[list[Escalation], int]:
    """Open tickets with a breached clock or in ``queue``, the earliest due first."""
    breached = sa.exists().where(col(SlaClock.ticket_id) == col(Ticket.id), _breach())
    escalated = breached if not queue else sa.or_(breached, col(Ticket.queue) == queue)
    query = select(Ticket).where(col(Ticket.status).in_(OPEN), escalated)
    due = col(Ticket.resolution_due_at)
    tickets = (
        await session.exec(query.order_by(due.is_(None), due, col(Ticket.id)).limit(LIST_LIMIT))
    ).all()
    total = (await session.exec(select(sa.func.count()).select_from(query.subquery()))).one()
    clocks: dict[int, list[SlaClock]] = {}
    if tickets:
        found = await session.exec(
            select(SlaClock)
            .where(col(SlaClock.ticket_id).in_([t.id for t in tickets]), _breach())
            .order_by(col(SlaClock.due_at))
        )
        for clock in found.all():
            clocks.setdefault(clock.ticket_id, []).append(clock)
    rows = [
        Escalation(
            t,
            mask_pii(t.subject),
            tuple(clocks.get(t.id or 0, [])),
            _overdue(t, clocks.get(t.id or 0, []), now),
        )
        for t in tickets
    ]
    return rows, total


@router.get("/escalations", include_in_schema=False)
async def escalations(request: Request, staff: Overseer) -> Response:
    hub: Hub = request.app.state.hub
    queue = hub.settings.sla.escalation_queue
    async with hub.reads() as session:
        rows, total = await _escalations(session, queue, hub.clock.now())
    return render(
        request,
        staff,
        "escalations.html",
        active="escalations",
        escalations=rows,
        total=total,
        limit=LIST_LIMIT,
        escalation_queue=queue,
    )
