"""The queue: my tickets, my team's, the unassigned ones; filtered, nearest due first, paged.

The rows are their own fragment so the page refreshes them in place (htmx polling) without
losing the filters or the focus; the count and the page run on the ``(status,
resolution_due_at)`` index.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, or_
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from hub.auth import Role
from hub.console.rendering import render
from hub.console.sessions import Anyone, Staff
from hub.runtime import Hub
from ticket_core import Kind, Status, Ticket
from ticket_core.models import AgentRecord

router = APIRouter()
View = Literal["mine", "team", "unassigned", "all"]
Risk = Literal["", "breached", "at_risk", "on_track"]
OPEN = [s for s in Status if s not in (Status.resolved, Status.closed)]
_OVERSEERS = (Role.supervisor, Role.auditor, Role.admin)


@dataclass(frozen=True, slots=True)
class QueueFilter:
    view: View = "mine"
    status: str = ""
    channel: str = ""
    kind: str = ""
    category: str = ""
    regulator: bool = False
    risk: Risk = ""
    page: int = 1
    teams: frozenset[str] = field(default_factory=frozenset)

    def query_string(self, **change: object) -> str:
        values = {
            "view": self.view,
            "status": self.status,
            "channel": self.channel,
            "kind": self.kind,
            "category": self.category,
            "regulator": "1" if self.regulator else "",
            "risk": self.risk,
            "page": str(self.page),
        } | {k: str(v) for k, v in change.items()}
        return urlencode({k: v for k, v in values.items() if v})


def _query(
    f: QueueFilter, staff: Staff, now: datetime, at_risk: timedelta
) -> SelectOfScalar[Ticket]:
    query = select(Ticket)
    if f.view == "mine":
        query = query.where(Ticket.assignee == staff.username)
    elif f.view == "team":
        query = query.where(col(Ticket.queue).in_(sorted(f.teams) or [""]))
    elif f.view == "unassigned":
        query = query.where(col(Ticket.assignee).is_(None))
    if f.status == "any":
        pass
    elif f.status:
        query = query.where(Ticket.status == f.status)
    else:
        query = query.where(col(Ticket.status).in_(OPEN))
    if f.channel:
        query = query.where(Ticket.channel == f.channel)
    if f.kind:
        query = query.where(Ticket.kind == f.kind)
    if f.category:
        query = query.where(Ticket.category == f.category)
    if f.regulator:
        query = query.where(col(Ticket.is_regulator_transfer).is_(True))
    due = col(Ticket.resolution_due_at)
    if f.risk == "breached":
        query = query.where(due < now)
    elif f.risk == "at_risk":
        query = query.where(due >= now, due < now + at_risk)
    elif f.risk == "on_track":
        query = query.where(or_(due.is_(None), due >= now + at_risk))
    return query


async def _teams(hub: Hub, username: str) -> frozenset[str]:
    async with hub.reads() as session:
        agent = (
            await session.exec(select(AgentRecord).where(AgentRecord.name == username))
        ).first()
    return frozenset(agent.queues) if agent is not None else frozenset()


async def _filter(request: Request, staff: Staff) -> QueueFilter:
    q = request.query_params
    view = q.get("view") or ("mine" if staff.role == Role.agent else "all")
    if view not in ("mine", "team", "unassigned", "all"):
        view = "mine"
    if view == "all" and not staff.may(*_OVERSEERS):
        view = "mine"
    risk = q.get("risk", "")
    try:
        page = max(1, min(int(q.get("page", "1")), 100_000))
    except ValueError:
        page = 1
    return QueueFilter(
        view=view,  # type: ignore[arg-type]
        status=q.get("status", "")[:30],
        channel=q.get("channel", "")[:40],
        kind=q.get("kind", "")[:20],
        category=q.get("category", "")[:80],
        regulator=q.get("regulator") == "1",
        risk=risk if risk in ("breached", "at_risk", "on_track") else "",  # type: ignore[arg-type]
        page=page,
        teams=await _teams(request.app.state.hub, staff.username)
        if view == "team"
        else frozenset(),
    )


async def _choices(hub: Hub) -> dict[str, object]:
    """What the filters offer; only the full page needs them, not its refreshes."""
    async with hub.reads() as session:
        channels = (await session.exec(select(Ticket.channel).distinct())).all()
        categories = (
            await session.exec(
                select(Ticket.category).where(col(Ticket.category).is_not(None)).distinct()
            )
        ).all()
    return {
        "channels": sorted(channels),
        "categories": sorted(c for c in categories if c),
        "statuses": [s.value for s in Status],
        "kinds": [k.value for k in Kind],
    }


async def _rows(request: Request, staff: Staff) -> dict[str, object]:
    hub: Hub = request.app.state.hub
    settings = hub.settings.console
    f = await _filter(request, staff)
    now = hub.clock.now()
    at_risk = timedelta(hours=settings.at_risk_hours)
    query = _query(f, staff, now, at_risk)
    size = settings.page_size
    async with hub.reads() as session:
        total = (await session.exec(select(func.count()).select_from(query.subquery()))).one()
        due = col(Ticket.resolution_due_at)
        page = (
            await session.exec(
                query.order_by(due.asc().nulls_last(), col(Ticket.id))
                .limit(size)
                .offset((f.page - 1) * size)
            )
        ).all()
    return {
        "f": f,
        "tickets": page,
        "total": total,
        "pages": max(1, -(-total // size)),
        "at_risk": at_risk,
        "views": ["mine", "team", "unassigned"] + (["all"] if staff.may(*_OVERSEERS) else []),
    }


@router.get("/", include_in_schema=False)
async def queue_page(request: Request, staff: Anyone) -> Response:
    choices = await _choices(request.app.state.hub)
    return render(request, staff, "queue.html", **choices, **await _rows(request, staff))


@router.get("/queue/rows", include_in_schema=False)
async def queue_rows(request: Request, staff: Anyone) -> Response:
    return render(request, staff, "_queue_rows.html", **await _rows(request, staff))


@router.get("/search", include_in_schema=False)
async def find_ticket(
    request: Request, staff: Anyone, number: Annotated[str, Query(max_length=40)] = ""
) -> Response:
    """Jump to a ticket by its number (the search box, ``/`` on the keyboard)."""
    wanted = number.strip().upper()
    async with request.app.state.hub.reads() as session:
        found = (await session.exec(select(Ticket.number).where(Ticket.number == wanted))).first()
    if found:
        return RedirectResponse(f"/console/tickets/{found}", status_code=303)
    choices = await _choices(request.app.state.hub)
    rows = await _rows(request, staff)
    return render(request, staff, "queue.html", notice=("error", "search.none"), **choices, **rows)
