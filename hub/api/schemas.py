"""What the REST API shows and accepts."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ticket_core import Customer, Message, Outcome, Status, Ticket


class CustomerOut(BaseModel):
    id: int
    display_name: str | None
    phone: str | None = Field(description="masked")
    identities: list[dict[str, Any]] = Field(description="kind, masked value, verified")


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


class SlaOut(BaseModel):
    policy: str | None
    first_response_due_at: datetime | None
    first_responded_at: datetime | None
    resolution_due_at: datetime | None
    first_response_breached: bool
    resolution_breached: bool


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
            created_at=ticket.created_at,
            updated_at=ticket.updated_at,
            resolved_at=ticket.resolved_at,
            closed_at=ticket.closed_at,
            customer=CustomerOut(
                id=customer.id or 0,
                display_name=customer.display_name,
                phone=customer.phone_masked,
                identities=identities,
            ),
            messages=[MessageOut.of(m) for m in messages],
            sla=SlaOut(
                policy=ticket.sla_policy,
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
