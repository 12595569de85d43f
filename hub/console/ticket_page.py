"""One ticket as one story: every channel's messages and the system's events on one
timeline, the customer beside it, the clocks above it, and the actions a role may take.

Every action goes through ``hub.ticket_actions``, the same code the REST API runs, and
answers with a redirect back to the ticket (so a reload never repeats it) or, when refused,
the page again with the reason and the refusal's status.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import StringConstraints
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub import ticket_actions as actions
from hub.auth import WRITERS, Role
from hub.console.rendering import SECURITY_HEADERS, render
from hub.console.sessions import Anyone, Staff, staff_only
from hub.runtime import Hub
from normalizer.pii import mask_pii
from ticket_core import (
    TRANSITIONS,
    AuditEvent,
    Customer,
    CustomerIdentity,
    Message,
    Outcome,
    Status,
    Ticket,
    TransitionRequest,
    clocks_of,
    messages_of,
)
from ticket_core.models import AttachmentBlob, CustomerContextRecord, CustomerMerge

router = APIRouter()
Writer = Annotated[Staff, Depends(staff_only(*WRITERS))]
Reviewer = Annotated[Staff, Depends(staff_only(Role.supervisor, Role.admin))]
Number = Annotated[str, Path(pattern=r"^[A-Z]{2,6}-\d{8}-\d{6,12}$")]
Text = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1), Form(max_length=20000)
]
Reason = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1), Form(max_length=2000)
]
_SHOWN_FACTS = ("status", "outcome", "reason", "assignee", "queue", "clock", "due_at", "priority")
"""What a system event on the timeline says; the rest stays in the audit trail below it."""


def _on_timeline(event: AuditEvent) -> bool:
    # Messages are on the timeline themselves; their audit events would say it twice.
    return not event.action.startswith(("message.", "attachment."))


def _pending_extension(events: Sequence[AuditEvent]) -> AuditEvent | None:
    """An agent's extension request that no extension has answered yet."""
    pending = None
    for event in events:
        if event.action == actions.EXTENSION_REQUESTED:
            pending = event
        elif event.action == actions.EXTENDED:
            pending = None
    return pending


def _facts(event: AuditEvent) -> list[tuple[str, str]]:
    return [
        (key, str(event.after[key]))
        for key in _SHOWN_FACTS
        if event.after.get(key) not in (None, "", [], {})
    ]


@dataclass(frozen=True, slots=True)
class Entry:
    """A line of the timeline: a message, or a system event."""

    at: datetime
    message: Message | None = None
    event: AuditEvent | None = None


@dataclass(frozen=True, slots=True)
class ChannelLimits:
    channel: str
    customer_messages: bool
    window_ends_at: datetime | None
    window_open: bool


def _limits(hub: Hub, ticket: Ticket, messages: list[Message]) -> ChannelLimits:
    connector = hub.registry.get(ticket.channel)
    caps = getattr(connector, "capabilities", None)
    window = caps.reply_window if caps is not None else None
    customer_messages = caps.customer_messages if caps is not None else True
    ends = None
    if window is not None:
        # Replies go out on the ticket's own channel, so only its messages open the window.
        inbound = [
            m.created_at for m in messages if m.direction == "in" and m.channel == ticket.channel
        ]
        ends = max(inbound) + window if inbound else None
    return ChannelLimits(
        channel=ticket.channel,
        customer_messages=customer_messages,
        window_ends_at=ends,
        window_open=ends is None or ends > hub.clock.now(),
    )


async def _story(session: AsyncSession, hub: Hub, ticket: Ticket, staff: Staff) -> dict[str, Any]:
    customer = await session.get(Customer, ticket.customer_id)
    assert customer is not None
    identities = (
        await session.exec(
            select(CustomerIdentity).where(CustomerIdentity.customer_id == customer.id)
        )
    ).all()
    messages = await messages_of(session, ticket)
    events = (
        await session.exec(
            select(AuditEvent).where(AuditEvent.ticket_id == ticket.id).order_by(col(AuditEvent.id))
        )
    ).all()
    contexts = (
        await session.exec(
            select(CustomerContextRecord).where(CustomerContextRecord.customer_id == customer.id)
        )
    ).all()
    earlier = (
        await session.exec(
            select(Ticket)
            .where(Ticket.customer_id == customer.id, Ticket.id != ticket.id)
            .order_by(col(Ticket.id).desc())
            .limit(20)
        )
    ).all()
    merges = (
        await session.exec(
            select(CustomerMerge)
            .where(col(CustomerMerge.target_id) == customer.id)
            .order_by(col(CustomerMerge.id))
        )
    ).all()
    # Everyone reads personal data masked; a cleared role reveals one message at a time, and
    # each reveal is an audit event, so who saw what stays answerable.
    cleared = staff.role.value in hub.settings.console.reveal_roles
    shown = {m.id: mask_pii(m.text) for m in messages}
    timeline = [Entry(m.created_at, message=m) for m in messages] + [
        Entry(e.at, event=e) for e in events if _on_timeline(e)
    ]
    timeline.sort(key=lambda entry: entry.at)
    return {
        "ticket": ticket,
        "customer": customer,
        "identities": identities,
        "timeline": timeline,
        "texts": shown,
        "masked": {m.id: shown[m.id] != m.text for m in messages},
        "clocks": await clocks_of(session, ticket),
        "contexts": contexts,
        "earlier": earlier,
        "merges": merges,
        "events": events,
        "facts": {e.id: _facts(e) for e in events},
        "extension_request": _pending_extension(events),
        "attachments": [(m, a) for m in messages for a in m.attachments],
        "moves": sorted(s.value for s in TRANSITIONS[Status(ticket.status)]),
        "outcomes": [o.value for o in Outcome],
        "limits": _limits(hub, ticket, messages),
        "subject": mask_pii(ticket.subject),
        "can_write": staff.may(*WRITERS),
        "can_review": staff.may(Role.supervisor, Role.admin),
        "can_reveal": cleared,
    }


async def _page(
    request: Request,
    staff: Staff,
    number: str,
    *,
    status: int = 200,
    error: str | None = None,
) -> Response:
    hub: Hub = request.app.state.hub
    async with hub.reads() as session:
        try:
            ticket = await actions.load(session, number)
        except actions.ActionRefused as refused:
            return render(request, staff, "refused.html", status=404, message=refused.detail)
        story = await _story(session, hub, ticket, staff)
    done = request.query_params.get("done", "")[:30]
    return render(request, staff, "ticket.html", status=status, error=error, done=done, **story)


def _back(number: str, done: str) -> RedirectResponse:
    return RedirectResponse(f"/console/tickets/{number}?done={done}#actions", status_code=303)


async def _act(
    request: Request,
    staff: Staff,
    number: str,
    done: str | Callable[[Any], str],
    work: Awaitable[Any],
) -> Response:
    """Run an action; back to the ticket with what was done, or the page with the refusal."""
    try:
        result = await work
    except actions.ActionRefused as refused:
        return await _page(request, staff, number, status=refused.status, error=refused.detail)
    return _back(number, done(result) if callable(done) else done)


@router.get("/tickets/{number}", include_in_schema=False)
async def ticket_page(number: Number, request: Request, staff: Anyone) -> Response:
    return await _page(request, staff, number)


@router.post("/tickets/{number}/reply", include_in_schema=False)
async def reply(number: Number, request: Request, staff: Writer, text: Text) -> Response:
    hub = request.app.state.hub
    return await _act(
        request, staff, number, "reply", actions.reply(hub, number, text, staff.principal)
    )


@router.post("/tickets/{number}/note", include_in_schema=False)
async def note(number: Number, request: Request, staff: Writer, text: Text) -> Response:
    hub = request.app.state.hub
    return await _act(
        request, staff, number, "note", actions.note(hub, number, text, staff.principal)
    )


@router.post("/tickets/{number}/assign", include_in_schema=False)
async def assign(
    number: Number,
    request: Request,
    staff: Writer,
    assignee: Annotated[str, Form(max_length=120)] = "",
    queue: Annotated[str, Form(max_length=80)] = "",
) -> Response:
    hub = request.app.state.hub
    work = actions.reassign(
        hub, number, staff.principal, assignee=assignee.strip() or None, queue=queue.strip() or None
    )
    return await _act(request, staff, number, "assign", work)


@router.post("/tickets/{number}/take", include_in_schema=False)
async def take(number: Number, request: Request, staff: Writer) -> Response:
    hub = request.app.state.hub
    work = actions.reassign(hub, number, staff.principal, assignee=staff.username, queue=None)
    return await _act(request, staff, number, "assign", work)


@router.post("/tickets/{number}/status", include_in_schema=False)
async def move(
    number: Number,
    request: Request,
    staff: Writer,
    to: Annotated[Status, Form()],
    reason: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    hub = request.app.state.hub
    work = actions.move(
        hub, number, TransitionRequest(to, reason=reason.strip() or None), staff.principal
    )
    return await _act(request, staff, number, "status", work)


@router.post("/tickets/{number}/outcome", include_in_schema=False)
async def propose(
    number: Number,
    request: Request,
    staff: Writer,
    outcome: Annotated[Outcome, Form()],
    summary: Annotated[str, Form(min_length=1, max_length=5000)],
) -> Response:
    """Resolve with an outcome; an unfavourable complaint outcome goes to review instead
    (the lifecycle's rule), so the agent proposes and a supervisor decides."""
    hub = request.app.state.hub
    work = actions.propose(hub, number, outcome, summary.strip(), staff.principal)
    return await _act(request, staff, number, "outcome", work)


@router.post("/tickets/{number}/extension", include_in_schema=False)
async def extension(number: Number, request: Request, staff: Writer, reason: Reason) -> Response:
    hub = request.app.state.hub
    work = actions.extend_clock(hub, number, reason, staff.principal, or_request=True)
    return await _act(request, staff, number, lambda outcome: f"extension_{outcome}", work)


@router.post("/tickets/{number}/contact", include_in_schema=False)
async def contact(
    number: Number,
    request: Request,
    staff: Writer,
    summary: Reason,
    via: Annotated[str, Form(pattern="^(phone|visit|letter|other)$")] = "phone",
) -> Response:
    hub = request.app.state.hub
    work = actions.contact(hub, number, staff.principal, via=via, summary=summary.strip())
    return await _act(request, staff, number, "contact", work)


@router.post("/tickets/{number}/review", include_in_schema=False)
async def review(
    number: Number,
    request: Request,
    staff: Reviewer,
    decision: Annotated[str, Form(pattern="^(approve|change|send_back)$")],
    reason: Reason,
    outcome: Annotated[str, Form(max_length=30)] = "",
    summary: Annotated[str, Form(max_length=5000)] = "",
) -> Response:
    hub = request.app.state.hub
    chosen = Outcome(outcome) if outcome in {o.value for o in Outcome} else None
    verdict = actions.Review(decision, reason.strip(), chosen, summary.strip() or None)  # type: ignore[arg-type]
    return await _act(
        request, staff, number, "review", actions.review(hub, number, verdict, staff.principal)
    )


@router.post("/tickets/{number}/merge", include_in_schema=False)
async def merge(
    number: Number,
    request: Request,
    staff: Reviewer,
    other: Annotated[int, Form(ge=1, le=2**62)],
    reason: Reason,
) -> Response:
    """The ticket's customer and ``other`` are one person; the other joins this one."""
    hub: Hub = request.app.state.hub

    async def into_this_customer() -> None:
        async with hub.reads() as session:
            ticket = await actions.load(session, number)
        await actions.merge(
            hub, staff.principal, source_id=other, target_id=ticket.customer_id, reason=reason
        )

    return await _act(request, staff, number, "merge", into_this_customer())


@router.post("/tickets/{number}/messages/{message_id}/reveal", include_in_schema=False)
async def reveal(
    number: Number,
    message_id: Annotated[int, Path(ge=1, le=2**62)],
    request: Request,
    staff: Anyone,
) -> Response:
    """The message's text unmasked, as a fragment htmx swaps in; audited on the ticket."""
    hub = request.app.state.hub
    try:
        text = await actions.reveal(hub, number, message_id, staff.principal)
    except actions.ActionRefused as refused:
        return render(
            request, staff, "_refusal.html", status=refused.status, message=refused.detail
        )
    return render(request, staff, "_revealed.html", text=text, message_id=message_id)


@router.get("/tickets/{number}/attachments/{sha256}", include_in_schema=False)
async def attachment(
    number: Number,
    sha256: Annotated[str, Path(pattern="^[0-9a-f]{64}$")],
    request: Request,
    staff: Anyone,
) -> Response:
    """Only an attachment of this ticket, and always as a download: a customer's file is
    never rendered inside the console's origin."""
    hub: Hub = request.app.state.hub
    async with hub.reads() as session:
        try:
            ticket = await actions.load(session, number)
        except actions.ActionRefused as refused:
            return render(request, staff, "refused.html", status=404, message=refused.detail)
        named = [
            a
            for m in await messages_of(session, ticket)
            for a in m.attachments
            if a.get("sha256") == sha256
        ]
        blob = await session.get(AttachmentBlob, sha256) if named else None
    if blob is None:
        return render(
            request,
            staff,
            "refused.html",
            status=404,
            message=f"ticket {number} has no such attachment",
        )
    name = "".join(c for c in str(named[0].get("name") or sha256) if c.isprintable())
    fallback = name.encode("ascii", "replace").decode().replace('"', "_").replace("\\", "_")
    headers = SECURITY_HEADERS | {
        "content-disposition": (
            f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
        ),
        "content-security-policy": "sandbox; default-src 'none'",
    }
    return Response(blob.data, media_type="application/octet-stream", headers=headers)
