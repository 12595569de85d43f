"""The ticket lifecycle as an explicit state machine.

``new → open → in_progress ⇄ pending_customer / pending_internal → resolved → closed``;
``resolved → reopened`` when the customer writes again within the window; an unfavourable
complaint outcome passes ``under_review`` before anything reaches the customer.
"""

from __future__ import annotations

from dataclasses import dataclass

from ticket_core.errors import IllegalTransition
from ticket_core.models import Kind, Outcome, Status, Ticket

_ACTIVE_WORK = {Status.in_progress, Status.pending_customer, Status.pending_internal}

TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.new: frozenset({Status.open, Status.in_progress}),
    Status.open: frozenset({Status.in_progress, Status.pending_customer, Status.pending_internal}),
    Status.in_progress: frozenset(
        {Status.pending_customer, Status.pending_internal, Status.under_review, Status.resolved}
    ),
    Status.pending_customer: frozenset({Status.in_progress, Status.under_review, Status.resolved}),
    Status.pending_internal: frozenset({Status.in_progress, Status.under_review, Status.resolved}),
    Status.under_review: frozenset({Status.in_progress, Status.resolved}),
    Status.resolved: frozenset({Status.closed, Status.reopened}),
    Status.reopened: frozenset({Status.in_progress}),
    Status.closed: frozenset(),
}

UNFAVOURABLE = frozenset({Outcome.partially_resolved, Outcome.rejected})


@dataclass(frozen=True, slots=True)
class TransitionRequest:
    to: Status
    outcome: Outcome | None = None
    summary: str | None = None
    review_approved: bool = False
    reason: str | None = None
    """Why: a pending reason (``external_appraisal`` pauses clocks under some policies), a
    reviewer's reason for sending a decision back, a system reason (``auto_close``)."""


def needs_review(ticket: Ticket, outcome: Outcome) -> bool:
    """An unfavourable outcome of a complaint is decided by a second person."""
    return ticket.kind == Kind.complaint and outcome in UNFAVOURABLE


def check_transition(ticket: Ticket, request: TransitionRequest) -> None:
    """Raise ``IllegalTransition`` naming the rule when ``request`` may not be applied."""
    current, target = Status(ticket.status), request.to

    def refuse(reason: str) -> IllegalTransition:
        return IllegalTransition(current.value, target.value, reason)

    if target == current:
        raise refuse(f"the ticket is already {current.value}")
    allowed = TRANSITIONS[current]
    if target not in allowed:
        if current == Status.closed:
            raise refuse("a closed ticket is final; a new message opens a new ticket")
        options = ", ".join(sorted(s.value for s in allowed))
        raise refuse(f"from {current.value} the ticket can only move to: {options}")

    outcome = request.outcome or (Outcome(ticket.outcome) if ticket.outcome else None)
    if target == Status.under_review and outcome not in UNFAVOURABLE:
        raise refuse("review is for a proposed outcome of partially_resolved or rejected")
    if target == Status.resolved:
        if current == Status.under_review and not request.review_approved:
            raise refuse("a decision under review is resolved only once a reviewer has approved it")
        if outcome is None:
            raise refuse(
                "an outcome is required (resolved, partially_resolved, rejected, withdrawn)"
            )
        if needs_review(ticket, outcome) and not (
            current == Status.under_review and request.review_approved
        ):
            raise refuse(
                f"a complaint with outcome {outcome.value} must pass under_review and be "
                "approved before the customer is told"
            )
    if (
        target == Status.closed
        and ticket.is_regulator_transfer
        and ticket.regulator_feedback_acknowledged_at is None
    ):
        raise refuse("a regulator transfer cannot close before its result feedback is acknowledged")
