"""Assignment against the store: the pure decisions of ``ticket_core.assignment`` applied to
the ``agent`` table and the open tickets.

``assign_next`` gives one waiting ticket to the agent the ``Desk`` chooses; ``serve_backlog``
offers a queue's waiting tickets (VIP and vulnerable first) when an agent becomes available;
``agent_away`` marks an agent away and offers their open tickets to the others, handing back
to the queue what nobody can take. Every change goes through ``tickets.assign`` so the
``ticket.assigned`` audit event records the assignee and the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ticket_core.assignment import Agent, Assignment, Desk, Presence, Strategy, Work
from ticket_core.models import AgentRecord, Customer, Priority, Status, Ticket
from ticket_core.tickets import assign

SETTLED = (Status.resolved.value, Status.closed.value)
ACTOR = "system:assignment"


class AgentNotFound(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no agent named {name!r}")
        self.name = name


def as_agent(row: AgentRecord) -> Agent:
    return Agent(
        name=row.name,
        queues=frozenset(row.queues),
        skills=frozenset(row.skills),
        languages=frozenset(row.languages),
        capacity=row.capacity,
        presence=Presence(row.presence),
    )


async def get_agent(session: AsyncSession, name: str) -> AgentRecord:
    row = (await session.exec(select(AgentRecord).where(AgentRecord.name == name))).first()
    if row is None:
        raise AgentNotFound(name)
    return row


async def open_load(session: AsyncSession) -> dict[str, int]:
    """Open (not resolved, not closed) tickets each assignee holds."""
    rows = await session.exec(
        select(Ticket.assignee, func.count())
        .where(col(Ticket.assignee).is_not(None), col(Ticket.status).not_in(SETTLED))
        .group_by(Ticket.assignee)
    )
    return {name: count for name, count in rows.all() if name}


async def _last_agent_of(
    session: AsyncSession, customer_ids: Iterable[int], exclude: Iterable[int]
) -> dict[int, str]:
    """The assignee of each customer's latest other ticket that had one."""
    ids, skip = set(customer_ids), set(exclude)
    if not ids:
        return {}
    rows = await session.exec(
        select(Ticket.customer_id, Ticket.assignee, Ticket.id)
        .where(col(Ticket.customer_id).in_(ids), col(Ticket.assignee).is_not(None))
        .order_by(col(Ticket.created_at).desc(), col(Ticket.id).desc())
    )
    found: dict[int, str] = {}
    for customer_id, assignee, ticket_id in rows.all():
        if ticket_id not in skip and customer_id not in found and assignee:
            found[customer_id] = assignee
    return found


async def _desk(
    session: AsyncSession, tickets: Sequence[Ticket], strategy: Strategy
) -> tuple[Desk, list[AgentRecord]]:
    rows = list((await session.exec(select(AgentRecord).order_by(AgentRecord.name))).all())
    last = {r.name: r.last_assigned_at for r in rows if r.last_assigned_at is not None}
    desk = Desk(
        agents=[as_agent(r) for r in rows],
        load=await open_load(session),
        last_assigned=dict(last),
        last_agent_of=await _last_agent_of(
            session, (t.customer_id for t in tickets), (t.id for t in tickets if t.id)
        ),
        strategy=strategy,
    )
    if last:
        # Round-robin resumes after whoever got the last ticket.
        names = sorted(r.name for r in rows)
        desk._turn = names.index(max(last, key=lambda n: last[n])) + 1
    return desk, rows


async def _work(session: AsyncSession, ticket: Ticket, vip_tags: frozenset[str]) -> Work:
    customer = await session.get(Customer, ticket.customer_id)
    tags = {t.lower() for t in (customer.tags if customer else [])}
    tier = (customer.tier or "").lower() if customer else ""
    assert ticket.number is not None and ticket.queue is not None
    return Work(
        number=ticket.number,
        queue=ticket.queue,
        created_at=ticket.created_at,
        customer_id=ticket.customer_id,
        priority=Priority(ticket.priority),
        language=ticket.language,
        skills=frozenset({ticket.category} if ticket.category else ()),
        vip=bool(tags & vip_tags) or tier in vip_tags,
        vulnerable=ticket.is_vulnerable,
    )


async def _apply(
    session: AsyncSession,
    tickets: dict[str, Ticket],
    rows: Sequence[AgentRecord],
    decisions: Iterable[Assignment],
    now: datetime,
    *,
    unassign: bool,
) -> list[Assignment]:
    by_name = {r.name: r for r in rows}
    done: list[Assignment] = []
    for decision in decisions:
        ticket = tickets[decision.number]
        if decision.agent is None and not unassign:
            done.append(decision)
            continue
        await assign(
            session,
            ticket,
            assignee=decision.agent or "",
            queue=None,
            actor=ACTOR,
            now=now,
            reason=decision.why,
        )
        if decision.agent is not None:
            by_name[decision.agent].last_assigned_at = now
            session.add(by_name[decision.agent])
        done.append(decision)
    return done


async def assign_next(
    session: AsyncSession,
    ticket: Ticket,
    now: datetime,
    strategy: Strategy = Strategy.least_loaded,
    *,
    vip_tags: Iterable[str] = ("vip",),
) -> Assignment | None:
    """Give a waiting ticket (a queue, no assignee, not settled) to the agent who fits best.

    Returns the decision, ``None`` when the ticket is not waiting; a ticket nobody can take
    stays in its queue with no audit event."""
    if ticket.queue is None or ticket.assignee or ticket.status in SETTLED:
        return None
    desk, rows = await _desk(session, [ticket], strategy)
    work = await _work(session, ticket, frozenset(vip_tags))
    assert ticket.number is not None
    decision = desk.choose(work, now)
    await _apply(session, {ticket.number: ticket}, rows, [decision], now, unassign=False)
    return decision


async def _waiting(session: AsyncSession, queues: Iterable[str]) -> list[Ticket]:
    return list(
        (
            await session.exec(
                select(Ticket)
                .where(
                    col(Ticket.queue).in_(set(queues)),
                    col(Ticket.assignee).is_(None),
                    col(Ticket.status).not_in(SETTLED),
                )
                .order_by(Ticket.id)
            )
        ).all()
    )


async def serve_backlog(
    session: AsyncSession,
    queues: Iterable[str],
    now: datetime,
    strategy: Strategy = Strategy.least_loaded,
    *,
    vip_tags: Iterable[str] = ("vip",),
) -> list[Assignment]:
    """Offer the waiting tickets of ``queues`` in service order (VIP and vulnerable first,
    then priority, then oldest); what nobody can take keeps waiting."""
    waiting = await _waiting(session, queues)
    if not waiting:
        return []
    desk, rows = await _desk(session, waiting, strategy)
    tags = frozenset(vip_tags)
    works = [await _work(session, t, tags) for t in waiting]
    decisions = desk.assign(works, now)
    tickets = {t.number: t for t in waiting if t.number}
    return await _apply(session, tickets, rows, decisions, now, unassign=False)


async def agent_away(
    session: AsyncSession,
    agent_name: str,
    now: datetime,
    strategy: Strategy = Strategy.least_loaded,
    *,
    vip_tags: Iterable[str] = ("vip",),
) -> list[Assignment]:
    """Mark the agent away and offer their open tickets to the others in service order;
    what nobody can take goes back to its queue unassigned."""
    row = await get_agent(session, agent_name)
    row.presence = Presence.away.value
    row.updated_at = now
    session.add(row)
    held = list(
        (
            await session.exec(
                select(Ticket)
                .where(Ticket.assignee == agent_name, col(Ticket.status).not_in(SETTLED))
                .order_by(Ticket.id)
            )
        ).all()
    )
    if not held:
        return []
    desk, rows = await _desk(session, held, strategy)
    tags = frozenset(vip_tags)
    tickets = {t.number: t for t in held if t.number}
    works = [await _work(session, t, tags) for t in held if t.queue is not None]
    decisions = desk.agent_left(agent_name, works, now)
    # A held ticket without a queue cannot be offered: it goes back unassigned.
    decisions += [
        Assignment(t.number, None, f"{agent_name} went away and the ticket has no queue")
        for t in held
        if t.queue is None and t.number
    ]
    return await _apply(session, tickets, rows, decisions, now, unassign=True)


async def set_presence(
    session: AsyncSession,
    agent_name: str,
    presence: Presence,
    now: datetime,
    strategy: Strategy = Strategy.least_loaded,
    *,
    reassign: bool = True,
    vip_tags: Iterable[str] = ("vip",),
) -> list[Assignment]:
    """Away: ``agent_away``; available: serve the backlog of the agent's queues; busy: only
    recorded. With ``reassign`` false, only the presence is recorded."""
    row = await get_agent(session, agent_name)
    if reassign and presence == Presence.away:
        return await agent_away(session, agent_name, now, strategy, vip_tags=vip_tags)
    row.presence = presence.value
    row.updated_at = now
    session.add(row)
    if reassign and presence == Presence.available:
        await session.flush()
        return await serve_backlog(session, row.queues, now, strategy, vip_tags=vip_tags)
    return []


__all__ = [
    "AgentNotFound",
    "agent_away",
    "as_agent",
    "assign_next",
    "get_agent",
    "open_load",
    "serve_backlog",
    "set_presence",
]
