"""Which webhook events an audited change stands for, and event patterns."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hub.webhooks import check_patterns, event_types, matches
from ticket_core import AuditEvent

AT = datetime(2026, 11, 23, tzinfo=UTC)


def _audit(action: str, before: dict | None = None, after: dict | None = None) -> AuditEvent:
    return AuditEvent(
        ticket_id=1,
        actor="a",
        action=action,
        before=before or {},
        after=after or {},
        at=AT,
        prev_hash="0",
        hash="1",
    )


@pytest.mark.parametrize(
    ("action", "before", "after", "expected"),
    [
        ("ticket.created", {}, {}, ["ticket.created"]),
        (
            "ticket.status_changed",
            {"status": "open"},
            {"status": "in_progress"},
            ["ticket.status_changed", "ticket.updated"],
        ),
        (
            "ticket.status_changed",
            {"status": "in_progress"},
            {"status": "under_review"},
            ["ticket.status_changed", "ticket.updated", "review.requested"],
        ),
        (
            "ticket.status_changed",
            {"status": "under_review"},
            {"status": "resolved"},
            ["ticket.status_changed", "ticket.updated", "review.decided"],
        ),
        ("ticket.assigned", {}, {}, ["ticket.assigned", "ticket.updated"]),
        ("ticket.reference_added", {}, {}, ["ticket.updated"]),
        ("message.received", {}, {}, ["message.created"]),
        ("message.reply", {}, {}, ["message.created"]),
        ("message.note", {}, {}, []),
        ("sla.warning", {}, {}, ["sla.warning"]),
        ("sla.breached", {}, {}, ["sla.breached"]),
        ("regulator.feedback_acknowledged", {}, {}, []),
    ],
)
def test_audited_change_maps_to_webhook_events(
    action: str, before: dict, after: dict, expected: list[str]
) -> None:
    assert event_types(_audit(action, before, after)) == expected


def test_patterns_match_with_wildcards_and_typos_are_named() -> None:
    assert matches(["ticket.*"], "ticket.updated")
    assert not matches(["ticket.*"], "message.created")
    assert matches(["*"], "review.decided")
    assert check_patterns(["ticket.*", "tickets.*", "sla.breach"]) == ["tickets.*", "sla.breach"]
