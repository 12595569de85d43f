"""What staff do to a ticket, shared by the REST API and the console.

Each action is one transaction: load the ticket for update, apply the change through
``ticket_core``, run the reactions (webhooks, notices, feedback) and commit. Refusals are
``ActionRefused`` with the HTTP status they mean, so both front ends answer alike.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal

from sqlmodel.ext.asyncio.session import AsyncSession

from hub.auth import Principal, Role
from hub.outbox import enqueue_message
from hub.runtime import Hub
from normalizer.pii import find_pii
from ticket_core import (
    ApprovalRequired,
    ExtensionRefused,
    IllegalTransition,
    Message,
    Outcome,
    Status,
    Ticket,
    TicketNotFound,
    TransitionRequest,
    add_note,
    add_outbound,
    assign,
    extend,
    get_ticket,
    latest_reply_address,
    record_contact,
    transition,
)
from ticket_core.audit import record
from ticket_core.customers import CustomerNotFound, MergeRefused, merge_customers
from ticket_core.lifecycle import needs_review
from ticket_core.models import CustomerMerge, MergeKind

REVIEWERS = (Role.supervisor, Role.admin)
EXTENSION_REQUESTED = "sla.extension_requested"
EXTENDED = "sla.extended"
ExtensionOutcome = Literal["granted", "requested"]
ReviewDecision = Literal["approve", "change", "send_back"]


class ActionRefused(Exception):
    """The action is not allowed; ``status`` is the HTTP status that says so."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Review:
    decision: ReviewDecision
    reason: str
    outcome: Outcome | None = None
    summary: str | None = None


async def load(session: AsyncSession, number: str, *, for_update: bool = False) -> Ticket:
    try:
        return await get_ticket(session, number, for_update=for_update)
    except TicketNotFound as exc:
        raise ActionRefused(404, str(exc)) from None


@asynccontextmanager
async def _acting_on(hub: Hub, number: str) -> AsyncIterator[tuple[AsyncSession, Ticket]]:
    async with hub.sessions() as session, session.begin():
        ticket = await load(session, number, for_update=True)
        yield session, ticket
        await hub.reactions.run(session, hub.clock.now())
    hub.wake.set()


async def reply(hub: Hub, number: str, text: str, who: Principal) -> Message:
    async with _acting_on(hub, number) as (session, ticket):
        if ticket.status == Status.closed:
            raise ActionRefused(409, f"ticket {number} is closed; a reply cannot be sent")
        if ticket.status == Status.under_review:
            raise ActionRefused(
                409,
                f"ticket {number} is under review; nothing goes to the customer until a "
                "reviewer approves or sends it back (internal notes are allowed)",
            )
        now = hub.clock.now()
        message = await add_outbound(
            session,
            ticket,
            text=text,
            author=who.actor,
            purpose="reply",
            reply_to=await latest_reply_address(session, ticket),
            now=now,
            book=hub.book,
        )
        enqueue_message(session, ticket, message, now)
    return message


async def _transition(
    hub: Hub, session: AsyncSession, ticket: Ticket, request: TransitionRequest, who: Principal
) -> None:
    try:
        await transition(
            session,
            ticket,
            request,
            actor=who.actor,
            now=hub.clock.now(),
            book=hub.book,
            auto_close_after=hub.auto_close_after,
        )
    except IllegalTransition as exc:
        raise ActionRefused(409, str(exc)) from None


async def note(hub: Hub, number: str, text: str, who: Principal) -> Message:
    async with _acting_on(hub, number) as (session, ticket):
        message = await add_note(session, ticket, text=text, author=who.actor, now=hub.clock.now())
    return message


async def move(hub: Hub, number: str, request: TransitionRequest, who: Principal) -> None:
    if request.review_approved and who.role not in REVIEWERS:
        raise ActionRefused(403, "only a supervisor may approve an outcome under review")
    async with _acting_on(hub, number) as (session, ticket):
        await _transition(hub, session, ticket, request, who)


async def propose(hub: Hub, number: str, outcome: Outcome, summary: str, who: Principal) -> Status:
    """Decide the case: resolved, or, for an outcome a reviewer must approve, under review
    with the outcome proposed. Returns where the ticket went."""
    async with _acting_on(hub, number) as (session, ticket):
        to = Status.under_review if needs_review(ticket, outcome) else Status.resolved
        await _transition(hub, session, ticket, TransitionRequest(to, outcome, summary), who)
    return to


async def reassign(
    hub: Hub, number: str, who: Principal, *, assignee: str | None, queue: str | None
) -> None:
    if assignee is None and queue is None:
        raise ActionRefused(422, "give an assignee, a queue, or both")
    async with _acting_on(hub, number) as (session, ticket):
        await assign(
            session, ticket, assignee=assignee, queue=queue, actor=who.actor, now=hub.clock.now()
        )


async def extend_clock(
    hub: Hub, number: str, reason: str, who: Principal, *, or_request: bool = False
) -> ExtensionOutcome:
    """A supervisor's request is also the approval; an agent may take the steps that need
    none. A step that needs approval is refused to an agent, or with ``or_request`` recorded
    as a request (``sla.extension_requested``) that supervisors see and grant. The customer
    is told of each extension granted (see the notices)."""
    approver = who.actor if who.role in REVIEWERS else None
    async with _acting_on(hub, number) as (session, ticket):
        if ticket.status in (Status.resolved, Status.closed):
            raise ActionRefused(409, f"ticket {number} is {ticket.status}; nothing to extend")
        try:
            await extend(
                session,
                ticket,
                hub.book,
                reason=reason,
                actor=who.actor,
                approved_by=approver,
                now=hub.clock.now(),
            )
        except ApprovalRequired as exc:
            if not or_request:
                raise ActionRefused(403, f"{exc}; ask a supervisor to grant it") from None
            record(
                session,
                ticket,
                actor=who.actor,
                action=EXTENSION_REQUESTED,
                at=hub.clock.now(),
                after={"reason": reason, "needs": str(exc)},
            )
            return "requested"
        except ExtensionRefused as exc:
            raise ActionRefused(409, str(exc)) from None
    return "granted"


async def review(hub: Hub, number: str, decision: Review, who: Principal) -> None:
    if who.role not in REVIEWERS:
        raise ActionRefused(403, "only a supervisor (senior reviewer / internal ombudsman) reviews")
    if decision.decision == "send_back":
        move_to = TransitionRequest(Status.in_progress, reason=decision.reason)
    else:
        if decision.decision == "change" and decision.outcome is None:
            raise ActionRefused(422, "a changed decision needs the new outcome")
        outcome = decision.outcome if decision.decision == "change" else None
        move_to = TransitionRequest(
            Status.resolved,
            outcome,
            decision.summary,
            review_approved=True,
            reason=decision.reason,
        )
    async with _acting_on(hub, number) as (session, ticket):
        if ticket.status != Status.under_review:
            raise ActionRefused(409, f"ticket {number} is {ticket.status}, not under_review")
        await _transition(hub, session, ticket, move_to, who)


async def contact(hub: Hub, number: str, who: Principal, *, via: str, summary: str) -> None:
    """Counts as a response for the SLA clocks and is the first contact the regulator asks
    about; the summary stays internal."""
    async with _acting_on(hub, number) as (session, ticket):
        try:
            await record_contact(
                session,
                ticket,
                via=via,
                summary=summary,
                actor=who.actor,
                now=hub.clock.now(),
                book=hub.book,
            )
        except IllegalTransition as exc:
            raise ActionRefused(409, str(exc)) from None


async def reveal(hub: Hub, number: str, message_id: int, who: Principal) -> str:
    """A message's text with its personal data unmasked, for a role cleared to see it; the
    reveal is an audit event (who, which message, which kinds of data) on the ticket."""
    if who.role.value not in hub.settings.console.reveal_roles:
        raise ActionRefused(403, f"the role {who.role.value} may not reveal personal data")
    async with _acting_on(hub, number) as (session, ticket):
        message = await session.get(Message, message_id)
        if message is None or message.ticket_id != ticket.id:
            raise ActionRefused(404, f"ticket {number} has no message {message_id}")
        kinds = sorted({item.kind for item in find_pii(message.text)})
        record(
            session,
            ticket,
            actor=who.actor,
            action="pii.revealed",
            at=hub.clock.now(),
            after={"message_id": message_id, "kinds": kinds},
        )
    return message.text


async def merge(
    hub: Hub, who: Principal, *, source_id: int, target_id: int, reason: str
) -> CustomerMerge:
    """Two customers are one person: ``source`` joins ``target`` (supervisors and admins)."""
    if who.role not in REVIEWERS:
        raise ActionRefused(403, "only a supervisor merges customers")
    now = hub.clock.now()
    async with hub.sessions() as session, session.begin():
        try:
            done = await merge_customers(
                session,
                source_id=source_id,
                target_id=target_id,
                kind=MergeKind.agent,
                actor=who.actor,
                reason=reason,
                evidence={"decided_by": who.actor},
                now=now,
            )
        except CustomerNotFound as exc:
            raise ActionRefused(404, str(exc)) from None
        except MergeRefused as exc:
            raise ActionRefused(409, str(exc)) from None
        await hub.reactions.run(session, now)
    return done
