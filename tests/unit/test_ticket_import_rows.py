"""Validating one historical ticket for ``tongdao import tickets`` (no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from hub.ticket_import import TicketRejected, keepable_number, validate_ticket
from ticket_core.models import Direction, Kind, Status

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def good(**overrides: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "source_id": "OLD-1",
        "kind": "complaint",
        "channel": "phone",
        "created_at": "2025-03-01 09:30:00",
        "customer_phone": "13812345678",
        "customer_name": "张三丰",
    }
    fields.update(overrides)
    return fields


MESSAGES = [
    {"text": "信用卡重复扣费\n请处理", "at": "2025-03-01 09:30:00"},
    {"text": "已退款", "direction": "out", "at": "2025-03-02 10:00:00", "author": "王经理"},
]


def test_a_good_ticket_is_read_with_times_in_the_zone_and_personal_data_masked() -> None:
    ticket = validate_ticket(good(), MESSAGES, zone=SHANGHAI, now=NOW)
    assert ticket.kind == Kind.complaint
    assert ticket.status == Status.closed  # the default for history
    assert ticket.created_at == datetime(2025, 3, 1, 1, 30, tzinfo=UTC)
    assert ticket.display_name == "张**"
    assert ticket.phone_masked == "138****5678"
    assert [(c.kind, c.masked, c.verified) for c in ticket.claims] == [
        ("phone", "138****5678", True)
    ]
    assert ticket.subject == "信用卡重复扣费"
    assert [m.direction for m in ticket.messages] == [Direction.inbound, Direction.outbound]
    assert ticket.messages[1].author == "王经理"
    assert ticket.first_responded_at == datetime(2025, 3, 2, 2, 0, tzinfo=UTC)
    # Closed without its times: resolved and closed at its last activity.
    assert ticket.resolved_at == ticket.closed_at == datetime(2025, 3, 2, 2, 0, tzinfo=UTC)


def test_chinese_kinds_offsets_and_flags_are_understood() -> None:
    ticket = validate_ticket(
        good(
            kind="投诉",
            status="in_progress",
            created_at="2025-03-01T09:30:00+00:00",
            regulator_transfer="是",
            customer_tags="elderly，VIP",
        ),
        MESSAGES[:1],
        zone=SHANGHAI,
        now=NOW,
    )
    assert ticket.kind == Kind.complaint
    assert ticket.created_at == datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
    assert ticket.regulator_transfer is True
    assert ticket.vulnerable is True  # tagged elderly
    assert ticket.tags == ("VIP", "elderly")
    assert ticket.resolved_at is None and ticket.closed_at is None


def test_every_reason_a_ticket_is_refused_is_given_at_once() -> None:
    with pytest.raises(TicketRejected) as refused:
        validate_ticket(
            {"kind": "grievance", "created_at": "yesterday", "status": "done"},
            [{"direction": "sideways"}],
            now=NOW,
        )
    reasons = "\n".join(refused.value.reasons)
    for expected in (
        "source_id: missing",
        "kind: 'grievance' is not one of",
        "status: 'done' is not one of",
        "channel: missing",
        "created_at: 'yesterday' is not a date and time",
        "message 1: text missing",
        "customer: no identity",
    ):
        assert expected in reasons


def test_a_ticket_without_messages_or_from_the_future_is_refused() -> None:
    with pytest.raises(TicketRejected, match="the ticket has none"):
        validate_ticket(good(), [], now=NOW)
    with pytest.raises(TicketRejected, match="created_at: 2027-01-01 is in the future"):
        validate_ticket(good(created_at="2027-01-01"), MESSAGES, now=NOW)
    with pytest.raises(TicketRejected, match="resolved_at: before created_at"):
        validate_ticket(good(closed_at="2024-01-01"), MESSAGES, zone=SHANGHAI, now=NOW)


def test_identities_are_checked_and_an_invalid_id_number_alone_finds_no_one() -> None:
    with pytest.raises(TicketRejected, match="customer_phone: '12' is not a phone number"):
        validate_ticket(good(customer_phone="12"), MESSAGES, now=NOW)
    with pytest.raises(TicketRejected, match="customer: no identity"):
        validate_ticket(
            good(customer_phone=None, customer_id_number="110101199003070000"), MESSAGES, now=NOW
        )
    ticket = validate_ticket(
        good(customer_email="Li.Si@Example.com", customer_id_number="11010519491231002X"),
        MESSAGES,
        now=NOW,
    )
    assert [(c.kind, c.verified) for c in ticket.claims] == [
        ("phone", True),
        ("email", True),
        ("id_number", True),
    ]
    assert ticket.claims[1].masked == "L***@Example.com"


def test_only_well_formed_past_numbers_are_kept() -> None:
    today = date(2026, 11, 24)
    assert keepable_number("TD-20250301-000042", today)
    assert keepable_number("TD-20250301-1000042", today)  # more than a million that day
    assert not keepable_number("TD-20261124-000042", today)  # today: the hub's own numbers
    assert not keepable_number("TD-20250231-000042", today)  # no such day
    assert not keepable_number("CRM-2025-42", today)
    assert not keepable_number(None, today)
