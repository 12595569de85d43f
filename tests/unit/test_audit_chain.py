"""The chain check on its own: each kind of tampering gets the diagnosis it suggests, and
one edit is reported once."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

from ticket_core import AuditEvent
from ticket_core.audit import GENESIS, ProblemKind, check_chain, event_hash, verify_chain

AT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _chain(length: int, ticket_id: int = 7) -> list[AuditEvent]:
    events: list[AuditEvent] = []
    prev = GENESIS
    for i in range(length):
        fields = {
            "ticket_id": ticket_id,
            "actor": "agent:li",
            "action": f"step.{i}",
            "before": {"n": i},
            "after": {"n": i + 1, "note": "已处理"},
            "at": AT + timedelta(minutes=i),
        }
        digest = event_hash(prev, **fields)  # type: ignore[arg-type]
        events.append(AuditEvent(id=100 + i, prev_hash=prev, hash=digest, **fields))
        prev = digest
    return events


def _kinds(problems: list) -> list[tuple[ProblemKind, int | None]]:  # type: ignore[type-arg]
    return [(p.kind, p.event_id) for p in problems]


def test_intact_chain_with_its_head_has_no_problems() -> None:
    events = _chain(4)
    assert check_chain(events, head=events[-1].hash) == []
    assert verify_chain(events, head=events[-1].hash) == []
    assert check_chain([], head="") == []


def test_time_is_hashed_in_utc_so_a_local_time_verifies_after_the_round_trip() -> None:
    local = AT.astimezone(timezone(timedelta(hours=8)))
    fields = {"ticket_id": 1, "actor": "a", "action": "x", "before": {}, "after": {}}
    assert event_hash(GENESIS, at=local, **fields) == event_hash(GENESIS, at=AT, **fields)  # type: ignore[arg-type]


def test_edited_field_is_one_problem_on_that_event() -> None:
    events = _chain(4)
    events[1].after = {"n": 99}
    assert _kinds(check_chain(events, head=events[-1].hash)) == [(ProblemKind.edited, 101)]


def test_edited_hash_alone_is_reported_once_not_again_at_the_next_event() -> None:
    events = _chain(4)
    events[1].hash = "f" * 64
    assert _kinds(check_chain(events, head=events[-1].hash)) == [(ProblemKind.edited, 101)]
    last = _chain(3)
    head = last[-1].hash
    last[-1].hash = "f" * 64
    assert _kinds(check_chain(last, head=head)) == [(ProblemKind.edited, 102)]


def test_removed_middle_event_shows_at_its_successor() -> None:
    events = _chain(4)
    del events[1]
    (problem,) = check_chain(events, head=events[-1].hash)
    assert (problem.kind, problem.event_id) == (ProblemKind.out_of_place, 102)
    assert "follows an event that is not in the chain" in problem.detail
    assert "removed" in problem.detail


def test_removed_last_event_shows_against_the_head() -> None:
    events = _chain(4)
    head = events[-1].hash
    (problem,) = check_chain(events[:-1], head=head)
    assert problem.kind == ProblemKind.head_mismatch
    assert "the last event was removed" in problem.detail
    assert verify_chain(events[:-1]) == []  # without the head this cannot show


def test_swapped_events_are_reported_as_reordered() -> None:
    events = _chain(4)
    events[1], events[2] = events[2], events[1]
    problems = check_chain(events, head=events[-1].hash)
    assert [p.kind for p in problems] == [ProblemKind.out_of_place] * 3
    assert "which comes after it: events were reordered" in problems[0].detail
    assert "events were reordered" in problems[1].detail


def test_event_appended_without_moving_the_head_is_named() -> None:
    events = _chain(4)
    head = events[-2].hash
    (problem,) = check_chain(events, head=head)
    assert problem.kind == ProblemKind.head_mismatch
    assert "appended without the hub" in problem.detail


def test_head_of_a_ticket_whose_events_are_all_gone() -> None:
    (problem,) = check_chain([], head="a" * 64)
    assert "has no audit events" in problem.detail


def test_a_copy_of_the_first_event_later_in_the_chain_is_named() -> None:
    events = _chain(3)
    copy = events[0].model_copy(update={"id": 200})
    (problem,) = check_chain([*events, copy], head=events[-1].hash)[:1]
    assert (problem.kind, problem.event_id) == (ProblemKind.out_of_place, 200)
    assert "claims to open the chain but comes after event 102" in problem.detail


def test_problems_carry_the_ticket_number_for_reports() -> None:
    events = _chain(2)
    events[0].actor = "agent:mallory"
    (problem,) = check_chain(events, ticket_id=7, ticket_number="TD-20261123-000007")
    assert str(problem).startswith("ticket TD-20261123-000007: event 100 (step.0)")
    assert problem.as_dict()["ticket"] == "TD-20261123-000007"
    assert dataclasses.asdict(problem)["ticket_id"] == 7
