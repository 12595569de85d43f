"""The ticket lifecycle state machine (ticket_core/lifecycle.py), on in-memory tickets."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import pytest

from ticket_core import (
    TRANSITIONS,
    IllegalTransition,
    Kind,
    Outcome,
    Status,
    Ticket,
    TransitionRequest,
    check_transition,
)

ALL_PAIRS = list(itertools.product(Status, Status))
UNFAVOURABLE = [Outcome.partially_resolved, Outcome.rejected]
FAVOURABLE_OR_NONE = [Outcome.resolved, Outcome.withdrawn, None]


def make_ticket(status: Status, kind: Kind = Kind.complaint, **fields: Any) -> Ticket:
    return Ticket(kind=kind, channel="app", customer_id=1, status=status, **fields)


def guard_clearing(current: Status, target: Status) -> tuple[Ticket, TransitionRequest]:
    """A ticket and request that satisfy every guard, so only the table decides."""
    outcome = {Status.resolved: Outcome.resolved, Status.under_review: Outcome.rejected}.get(target)
    ticket = make_ticket(current, outcome=outcome)
    return ticket, TransitionRequest(to=target, outcome=outcome, review_approved=True)


def refusal(ticket: Ticket, request: TransitionRequest) -> IllegalTransition:
    with pytest.raises(IllegalTransition) as caught:
        check_transition(ticket, request)
    return caught.value


def test_transition_table_matches_documented_lifecycle() -> None:
    s = Status
    assert {k: set(v) for k, v in TRANSITIONS.items()} == {
        s.new: {s.open, s.in_progress},
        s.open: {s.in_progress, s.pending_customer, s.pending_internal},
        s.in_progress: {s.pending_customer, s.pending_internal, s.under_review, s.resolved},
        s.pending_customer: {s.in_progress, s.under_review, s.resolved},
        s.pending_internal: {s.in_progress, s.under_review, s.resolved},
        s.under_review: {s.in_progress, s.resolved},
        s.resolved: {s.closed, s.reopened},
        s.reopened: {s.in_progress},
        s.closed: set(),
    }


@pytest.mark.parametrize(
    ("current", "target"), ALL_PAIRS, ids=[f"{a.value}->{b.value}" for a, b in ALL_PAIRS]
)
def test_move_is_allowed_exactly_when_the_table_lists_it(current: Status, target: Status) -> None:
    ticket, request = guard_clearing(current, target)
    if target in TRANSITIONS[current]:
        check_transition(ticket, request)
        return
    error = refusal(ticket, request)
    assert (error.current, error.target) == (current.value, target.value)
    assert str(error).startswith(f"cannot move from {current.value} to {target.value}: ")
    if target == current:
        assert "already" in error.reason
    elif current == Status.closed:
        assert "final" in error.reason
    else:
        options = ", ".join(sorted(s.value for s in TRANSITIONS[current]))
        assert error.reason == f"from {current.value} the ticket can only move to: {options}"


@pytest.mark.parametrize("status", list(Status))
def test_move_to_the_same_status_is_refused(status: Status) -> None:
    ticket, request = guard_clearing(status, status)
    error = refusal(ticket, request)
    assert error.reason == f"the ticket is already {status.value}"


@pytest.mark.parametrize("target", [s for s in Status if s != Status.closed])
def test_closed_ticket_is_final_with_a_clear_message(target: Status) -> None:
    ticket, request = guard_clearing(Status.closed, target)
    error = refusal(ticket, request)
    assert error.reason == "a closed ticket is final; a new message opens a new ticket"


@pytest.mark.parametrize("current", [Status.in_progress, Status.pending_customer])
def test_resolving_without_an_outcome_is_refused(current: Status) -> None:
    error = refusal(make_ticket(current), TransitionRequest(to=Status.resolved))
    assert "an outcome is required" in error.reason


def test_outcome_on_the_request_is_enough_to_resolve() -> None:
    ticket = make_ticket(Status.in_progress)
    check_transition(ticket, TransitionRequest(to=Status.resolved, outcome=Outcome.resolved))


def test_outcome_already_on_the_ticket_is_enough_to_resolve() -> None:
    ticket = make_ticket(Status.in_progress, outcome=Outcome.withdrawn)
    check_transition(ticket, TransitionRequest(to=Status.resolved))


@pytest.mark.parametrize("outcome", UNFAVOURABLE)
@pytest.mark.parametrize(
    "current", [Status.in_progress, Status.pending_customer, Status.pending_internal]
)
def test_complaint_with_unfavourable_outcome_cannot_resolve_without_review(
    current: Status, outcome: Outcome
) -> None:
    ticket = make_ticket(current, kind=Kind.complaint)
    request = TransitionRequest(to=Status.resolved, outcome=outcome, review_approved=True)
    error = refusal(ticket, request)
    assert f"complaint with outcome {outcome.value} must pass under_review" in error.reason


@pytest.mark.parametrize("outcome", UNFAVOURABLE)
def test_complaint_under_review_cannot_resolve_unfavourably_until_approved(
    outcome: Outcome,
) -> None:
    ticket = make_ticket(Status.under_review, kind=Kind.complaint, outcome=outcome)
    error = refusal(ticket, TransitionRequest(to=Status.resolved, review_approved=False))
    assert "approved" in error.reason


@pytest.mark.parametrize("outcome", UNFAVOURABLE)
def test_complaint_under_review_resolves_unfavourably_once_approved(outcome: Outcome) -> None:
    ticket = make_ticket(Status.under_review, kind=Kind.complaint, outcome=outcome)
    check_transition(ticket, TransitionRequest(to=Status.resolved, review_approved=True))


@pytest.mark.parametrize("kind", [Kind.consultation, Kind.suggestion])
@pytest.mark.parametrize("outcome", UNFAVOURABLE)
def test_non_complaint_with_unfavourable_outcome_may_resolve_directly(
    kind: Kind, outcome: Outcome
) -> None:
    ticket = make_ticket(Status.in_progress, kind=kind)
    check_transition(ticket, TransitionRequest(to=Status.resolved, outcome=outcome))


def test_complaint_with_favourable_outcome_resolves_without_review() -> None:
    ticket = make_ticket(Status.in_progress, kind=Kind.complaint)
    check_transition(ticket, TransitionRequest(to=Status.resolved, outcome=Outcome.resolved))


@pytest.mark.parametrize("outcome", FAVOURABLE_OR_NONE)
def test_review_requires_an_unfavourable_proposed_outcome(outcome: Outcome | None) -> None:
    ticket = make_ticket(Status.in_progress, outcome=outcome)
    error = refusal(ticket, TransitionRequest(to=Status.under_review))
    assert "partially_resolved or rejected" in error.reason


@pytest.mark.parametrize("outcome", UNFAVOURABLE)
def test_unfavourable_proposed_outcome_enters_review(outcome: Outcome) -> None:
    ticket = make_ticket(Status.pending_internal)
    check_transition(ticket, TransitionRequest(to=Status.under_review, outcome=outcome))


def test_outcome_on_the_request_overrides_the_ticket_outcome_for_review() -> None:
    ticket = make_ticket(Status.in_progress, outcome=Outcome.rejected)
    request = TransitionRequest(to=Status.under_review, outcome=Outcome.resolved)
    assert "partially_resolved or rejected" in refusal(ticket, request).reason


def test_regulator_transfer_cannot_close_before_feedback_is_acknowledged() -> None:
    ticket = make_ticket(Status.resolved, outcome=Outcome.resolved, is_regulator_transfer=True)
    error = refusal(ticket, TransitionRequest(to=Status.closed))
    assert "regulator transfer" in error.reason
    assert "acknowledged" in error.reason


def test_regulator_transfer_closes_once_feedback_is_acknowledged() -> None:
    ticket = make_ticket(
        Status.resolved,
        outcome=Outcome.resolved,
        is_regulator_transfer=True,
        regulator_feedback_acknowledged_at=datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
    )
    check_transition(ticket, TransitionRequest(to=Status.closed))


def test_ordinary_resolved_ticket_closes_without_regulator_feedback() -> None:
    ticket = make_ticket(Status.resolved, outcome=Outcome.resolved)
    check_transition(ticket, TransitionRequest(to=Status.closed))
