"""Agents of the desk: who works which queues with which skills, languages and capacity, and
their presence. Supervisors and admins manage agents; an agent may set their own presence.

With ``[assignment] enabled``, an agent going away hands their open tickets to the others
(or back to the queue) and an agent coming back takes the queue's backlog, VIP and
vulnerable customers first; otherwise the presence is only recorded.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import select

from hub.api.dependencies import hub_of
from hub.auth import STAFF, Principal, Role, require
from ticket_core.assignment import Assignment, Presence
from ticket_core.desk import AgentNotFound, get_agent, open_load, serve_backlog, set_presence
from ticket_core.models import AgentRecord

router = APIRouter(prefix="/api/v1/agents", tags=["agents"])

MANAGERS = (Role.supervisor, Role.admin)
Staff = Annotated[Principal, Depends(require(*STAFF))]
Manager = Annotated[Principal, Depends(require(*MANAGERS))]
PresenceSetter = Annotated[Principal, Depends(require(Role.agent, *MANAGERS))]
AgentName = Annotated[str, Path(min_length=1, max_length=120, pattern=r"^[\w.@-]+$")]
Names = list[Annotated[str, Field(min_length=1, max_length=80)]]


class AgentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    queues: Names = Field(default_factory=list, description="queues the agent works")
    skills: Names = Field(default_factory=list, description="categories the agent handles")
    languages: Names = Field(default_factory=lambda: ["zh-CN"])
    capacity: int = Field(default=10, ge=0, le=1000, description="open tickets at most")


class PresenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    presence: Presence


class ReassignedOut(BaseModel):
    number: str
    agent: str | None
    why: str


class AgentOut(BaseModel):
    name: str
    queues: list[str]
    skills: list[str]
    languages: list[str]
    capacity: int
    presence: Presence
    open_tickets: int
    last_assigned_at: datetime | None
    updated_at: datetime
    reassigned: list[ReassignedOut] = Field(
        default_factory=list, description="what this change handed to whom, and why"
    )

    @classmethod
    def of(cls, row: AgentRecord, load: dict[str, int]) -> AgentOut:
        return cls(
            name=row.name,
            queues=row.queues,
            skills=row.skills,
            languages=row.languages,
            capacity=row.capacity,
            presence=Presence(row.presence),
            open_tickets=load.get(row.name, 0),
            last_assigned_at=row.last_assigned_at,
            updated_at=row.updated_at,
        )


@router.get("", response_model=list[AgentOut], summary="The agents, their presence and load")
async def list_agents(request: Request, who: Staff) -> list[AgentOut]:
    hub = hub_of(request)
    async with hub.reads() as session:
        rows = (await session.exec(select(AgentRecord).order_by(AgentRecord.name))).all()
        load = await open_load(session)
        return [AgentOut.of(row, load) for row in rows]


@router.put("/{name}", response_model=AgentOut, summary="Create or update an agent")
async def put_agent(name: AgentName, body: AgentIn, request: Request, who: Manager) -> AgentOut:
    hub = hub_of(request)
    now = hub.clock.now()
    async with hub.sessions() as session, session.begin():
        try:
            row = await get_agent(session, name)
        except AgentNotFound:
            row = AgentRecord(name=name, updated_at=now)
        row.queues = sorted(set(body.queues))
        row.skills = sorted(set(body.skills))
        row.languages = sorted(set(body.languages))
        row.capacity = body.capacity
        row.updated_at = now
        session.add(row)
        await session.flush()
        decisions: list[Assignment] = []
        if hub.settings.assignment.enabled and row.presence == Presence.available.value:
            # A new or changed agent may fit tickets that were waiting in the queue.
            decisions = await serve_backlog(
                session, row.queues, now, hub.assignment.strategy, vip_tags=hub.assignment.vip_tags
            )
        await hub.reactions.run(session, now)
        out = AgentOut.of(row, await open_load(session))
        out.reassigned = [
            ReassignedOut(number=d.number, agent=d.agent, why=d.why) for d in decisions
        ]
        return out


@router.post(
    "/{name}/presence",
    response_model=AgentOut,
    summary="Set an agent's presence (away hands their open tickets on)",
    responses={403: {"description": "an agent may set only their own presence"}},
)
async def post_presence(
    name: AgentName, body: PresenceIn, request: Request, who: PresenceSetter
) -> AgentOut:
    if who.role == Role.agent and who.name != name:
        raise HTTPException(403, "an agent may set only their own presence")
    hub = hub_of(request)
    now = hub.clock.now()
    settings = hub.settings.assignment
    async with hub.sessions() as session, session.begin():
        try:
            decisions = await set_presence(
                session,
                name,
                body.presence,
                now,
                hub.assignment.strategy,
                reassign=settings.enabled,
                vip_tags=hub.assignment.vip_tags,
            )
        except AgentNotFound as exc:
            raise HTTPException(404, str(exc)) from None
        await hub.reactions.run(session, now)
        row = await get_agent(session, name)
        out = AgentOut.of(row, await open_load(session))
        out.reassigned = [
            ReassignedOut(number=d.number, agent=d.agent, why=d.why) for d in decisions
        ]
        return out
