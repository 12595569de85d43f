"""Every lifecycle move, legal and illegal, applied through the store on SQLite and PostgreSQL:
a legal move is persisted with its audit event; an illegal one changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import col, select

from hub.runtime import Hub
from ticket_core import (
    TRANSITIONS,
    AuditEvent,
    Customer,
    IllegalTransition,
    Kind,
    Outcome,
    Status,
    Ticket,
    TransitionRequest,
    get_ticket,
    transition,
    verify_chain,
)

AT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _request(source: Status, target: Status) -> TransitionRequest:
    """The request an agent would make for this move, with what the guards ask for."""
    if target == Status.resolved:
        return TransitionRequest(
            target, Outcome.resolved, review_approved=source == Status.under_review
        )
    if target == Status.under_review:
        return TransitionRequest(target, Outcome.rejected)
    return TransitionRequest(target)


async def test_every_move_is_persisted_or_refused_without_a_trace(hub: Hub) -> None:
    pairs = [(a, b) for a in Status for b in Status]
    async with hub.sessions() as session, session.begin():
        customer = Customer(created_at=AT)
        session.add(customer)
        await session.flush()
        for i, (source, _) in enumerate(pairs):
            session.add(
                Ticket(
                    number=f"TD-20261123-{i:06d}",
                    kind=Kind.complaint,
                    status=source,
                    channel="app",
                    customer_id=customer.id,
                    created_at=AT,
                    updated_at=AT,
                )
            )

    problems = []
    for i, (source, target) in enumerate(pairs):
        number = f"TD-20261123-{i:06d}"
        legal = target in TRANSITIONS[source]
        try:
            async with hub.sessions() as session, session.begin():
                ticket = await get_ticket(session, number, for_update=True)
                await transition(session, ticket, _request(source, target), actor="agent:t", now=AT)
            refused = None
        except IllegalTransition as exc:
            refused = exc
        async with hub.sessions() as session:
            stored = await get_ticket(session, number)
            events = list(
                (
                    await session.exec(
                        select(AuditEvent)
                        .where(AuditEvent.ticket_id == stored.id)
                        .order_by(col(AuditEvent.id))
                    )
                ).all()
            )
        if legal:
            if refused is not None or stored.status != target or len(events) != 1:
                problems.append(f"{source}->{target}: legal but {refused or stored.status}")
            elif verify_chain(events):
                problems.append(f"{source}->{target}: audit chain broken")
        elif refused is None or stored.status != source or events:
            problems.append(f"{source}->{target}: illegal but stored as {stored.status}")
    assert problems == []
