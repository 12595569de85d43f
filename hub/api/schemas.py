"""What the REST API shows and accepts."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ticket_core import Customer, Message, Outcome, SlaClock, Status, Ticket
from ticket_core.models import ContextState, TicketContext


class CustomerOut(BaseModel):
    id: int
    display_name: str | None
    phone: str | None = Field(description="masked")
    identities: list[dict[str, Any]] = Field(description="kind, masked value, verified")
    crm_ref: str | None = Field(default=None, description="the CRM's customer number")
    tier: str | None = None
    tags: list[str] = Field(default_factory=list, description="e.g. vip, elderly, foreign")
    risk_level: str | None = None
    merged_into: int | None = Field(default=None, description="the customer this one joined")


class ContextOut(BaseModel):
    pending: bool = Field(description="a provider has not answered yet; the ticket goes on")
    providers: dict[str, str] = Field(description="provider -> pending, ok, failed, skipped")


class MessageOut(BaseModel):
    id: int
    direction: Literal["in", "out", "note"]
    channel: str
    purpose: str
    author: str
    text: str
    attachments: list[dict[str, Any]]
    delivery_state: str | None
    delivery_error: str | None
    created_at: datetime

    @classmethod
    def of(cls, m: Message) -> MessageOut:
        return cls(
            id=m.id or 0,
            direction=str(m.direction),
            channel=m.channel,
            purpose=m.purpose,
            author=m.author,
            text=m.text,
            attachments=m.attachments,
            delivery_state=m.delivery_state,
            delivery_error=m.delivery_error,
            created_at=m.created_at,
        )


class ClockOut(BaseModel):
    name: str
    policy: str
    basis: str
    state: str = Field(description="running, paused, met, breached or stopped")
    started_at: datetime
    due_at: datetime
    breached_at: datetime | None
    stopped_at: datetime | None
    warnings_sent: list[str]

    @classmethod
    def of(cls, c: SlaClock) -> ClockOut:
        return cls(
            name=c.name,
            policy=c.policy,
            basis=c.basis,
            state=c.state,
            started_at=c.started_at,
            due_at=c.due_at,
            breached_at=c.breached_at,
            stopped_at=c.stopped_at,
            warnings_sent=list(c.warnings_sent),
        )


class SlaOut(BaseModel):
    policy: str | None
    started_at: datetime | None = Field(description="when the case was first received")
    deadline_at: datetime | None = Field(description="the sender's own deadline, if any")
    first_response_due_at: datetime | None
    first_responded_at: datetime | None
    resolution_due_at: datetime | None
    first_response_breached: bool
    resolution_breached: bool
    escalated_at: datetime | None
    clocks: list[ClockOut]
    extensions: list[dict[str, Any]]


class ReviewOut(BaseModel):
    state: str | None
    proposed_by: str | None
    note: str | None


class TicketOut(BaseModel):
    number: str
    kind: str
    category: str | None
    priority: str
    status: str
    channel: str
    subject: str
    queue: str | None
    assignee: str | None
    flags: dict[str, bool]
    outcome: str | None
    outcome_summary: str | None
    review_state: str | None
    review: ReviewOut
    satisfaction: str | None
    related_ticket: str | None = Field(description="the earlier ticket this one follows up")
    category_codes: dict[str, str]
    references: list[dict[str, Any]]
    context: ContextOut
    regulator_feedback_acknowledged_at: datetime | None = Field(
        description="for a regulator transfer: when the regulator acknowledged our result "
        "feedback; the ticket cannot close before"
    )
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    closed_at: datetime | None
    customer: CustomerOut
    messages: list[MessageOut]
    sla: SlaOut
    allowed_transitions: list[str]

    @classmethod
    def of(
        cls,
        ticket: Ticket,
        customer: Customer,
        identities: list[dict[str, Any]],
        messages: list[Message],
        allowed: list[str],
        now: datetime,
        clocks: list[SlaClock],
        related: str | None,
        contexts: list[TicketContext],
    ) -> TicketOut:
        open_ = ticket.status not in (Status.resolved, Status.closed)
        return cls(
            number=ticket.number or "",
            kind=ticket.kind,
            category=ticket.category,
            priority=ticket.priority,
            status=ticket.status,
            channel=ticket.channel,
            subject=ticket.subject,
            queue=ticket.queue,
            assignee=ticket.assignee,
            flags={
                "regulator_transfer": ticket.is_regulator_transfer,
                "vulnerable_customer": ticket.is_vulnerable,
                "suspected_fraud": ticket.is_suspected_fraud,
            },
            outcome=ticket.outcome,
            outcome_summary=ticket.outcome_summary,
            review_state=ticket.review_state,
            review=ReviewOut(
                state=ticket.review_state, proposed_by=ticket.proposed_by, note=ticket.review_note
            ),
            satisfaction=ticket.satisfaction,
            related_ticket=related,
            category_codes=dict(ticket.category_codes),
            references=list(ticket.external_refs),
            context=ContextOut(
                pending=any(c.state == ContextState.pending for c in contexts),
                providers={c.provider: str(c.state) for c in contexts},
            ),
            regulator_feedback_acknowledged_at=ticket.regulator_feedback_acknowledged_at,
            created_at=ticket.created_at,
            updated_at=ticket.updated_at,
            resolved_at=ticket.resolved_at,
            closed_at=ticket.closed_at,
            customer=CustomerOut(
                id=customer.id or 0,
                display_name=customer.display_name,
                phone=customer.phone_masked,
                identities=identities,
                crm_ref=customer.crm_ref,
                tier=customer.tier,
                tags=list(customer.tags),
                risk_level=customer.risk_level,
                merged_into=customer.merged_into_id,
            ),
            messages=[MessageOut.of(m) for m in messages],
            sla=SlaOut(
                policy=ticket.sla_policy,
                started_at=ticket.clock_started_at,
                deadline_at=ticket.deadline_at,
                escalated_at=ticket.escalated_at,
                clocks=[ClockOut.of(c) for c in clocks],
                extensions=list(ticket.extensions),
                first_response_due_at=ticket.first_response_due_at,
                first_responded_at=ticket.first_responded_at,
                resolution_due_at=ticket.resolution_due_at,
                first_response_breached=bool(
                    ticket.first_response_due_at
                    and (ticket.first_responded_at or now) > ticket.first_response_due_at
                ),
                resolution_breached=bool(
                    ticket.resolution_due_at
                    and (ticket.resolved_at or (now if open_ else ticket.updated_at))
                    > ticket.resolution_due_at
                ),
            ),
            allowed_transitions=allowed,
        )


class TicketSummary(BaseModel):
    number: str
    kind: str
    priority: str
    status: str
    channel: str
    subject: str
    created_at: datetime
    resolution_due_at: datetime | None


class TicketPage(BaseModel):
    items: list[TicketSummary]
    total: int
    limit: int
    offset: int


class ReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    text: str = Field(min_length=1, max_length=20000)


class NoteIn(ReplyIn):
    pass


class MessageAccepted(BaseModel):
    message_id: int
    delivery_state: str | None


class AssignmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    assignee: str | None = Field(default=None, max_length=120, description="'' to unassign")
    queue: str | None = Field(default=None, max_length=80, description="'' to clear")


class TransitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: Status
    outcome: Outcome | None = None
    summary: str | None = Field(default=None, max_length=5000)
    approve_review: bool = Field(
        default=False, description="supervisors: approve an outcome under review as it stands"
    )
    reason: str | None = Field(
        default=None,
        max_length=200,
        description="why; for pending_internal, 'external_appraisal' pauses clocks under "
        "cn-nfra-order-3",
    )


class ExtensionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    reason: str = Field(min_length=1, max_length=2000, description="recorded and told")


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    decision: Literal["approve", "change", "send_back"]
    outcome: Outcome | None = Field(default=None, description="for 'change': the new outcome")
    summary: str | None = Field(default=None, max_length=5000)
    reason: str = Field(min_length=1, max_length=2000, description="the reviewer's reasons")


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    via: Literal["phone", "visit", "letter", "other"] = "phone"
    summary: str = Field(min_length=1, max_length=5000)


class ReceiptOut(BaseModel):
    receipt: str
    status: Literal["pending", "processed", "failed"]
    ticket_number: str | None
    error: str | None = Field(
        default=None, description="the last processing error, while retrying or after"
    )


class OutboxOut(BaseModel):
    id: int
    target: str
    purpose: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    ticket_id: int | None
    created_at: datetime
    delivered_at: datetime | None


class EnvelopeOut(BaseModel):
    id: int
    receipt: str
    channel: str
    status: str
    attempts: int
    last_error: str | None
    received_at: datetime
    next_attempt_at: datetime
    ticket_number: str | None
