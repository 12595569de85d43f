"""Business-hour clocks from config: a complaint received on a Friday afternoon counts only
working periods, across a weekend, a make-up working day (调休) and a holiday, and pauses and
resumes in business time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.runtime import Hub
from hub.settings import PolicySettings, RuleSettings, Settings, SlaSettings
from tests.integration.test_sla_clocks import _clocks, _move, _open, _ticket
from ticket_core import ClockState, ManualClock, PolicyError, Status, TransitionRequest

CST = timedelta(hours=8)
BRANCH = {
    "timezone": "Asia/Shanghai",
    "periods": {day: ["09:00-12:00", "13:30-17:30"] for day in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": ["2026-11-30"],  # a Monday off
    "workdays": ["2026-11-29"],  # the Sunday before is worked instead
}


def _cst(day: int, hour: int, minute: int = 0) -> datetime:
    """A wall-clock time in Beijing in late 2026, as UTC."""
    month, day = (11, day) if day > 3 else (12, day)
    return datetime(2026, month, day, hour, minute, tzinfo=UTC) - CST


@pytest.fixture
def settings(settings: Settings) -> Settings:
    sla = SlaSettings(
        calendars={"branch": BRANCH},
        policies={
            "branch-hours": PolicySettings(
                basis="branch",
                targets={"complaint": {"first_response": "8h", "resolution": "16h"}},
                warnings=["50%"],
                pauses=["pending_customer"],
            )
        },
        rules=[RuleSettings(policy="branch-hours")],
    )
    return settings.model_copy(update={"sla": sla})


async def test_business_hours_skip_the_weekend_and_holiday_and_count_the_make_up_day(
    hub: Hub, clock: ManualClock
) -> None:
    clock.set(_cst(27, 16, 30))  # Friday 16:30
    number = await _open(hub)
    clocks = await _clocks(hub, number)
    # Friday 1 h; Saturday nothing; Sunday 29th (make-up day) 7 h: 8 h by Sunday 17:30.
    assert clocks["first_response"].due_at == _cst(29, 17, 30)
    # Monday 30th is a holiday; Tuesday 7 h; Wednesday 09:00-10:00.
    assert clocks["resolution"].due_at == _cst(2, 10, 0)
    assert (await _ticket(hub, number)).resolution_due_at == _cst(2, 10, 0)

    # Warnings at half of each clock's business time: 4 h by Sunday 12:00, 8 h by 17:30.
    clock.set(_cst(29, 11, 59))
    assert await hub.scheduler.tick() == 0
    clock.set(_cst(29, 12, 0))
    assert await hub.scheduler.tick() == 1  # the first response's warning
    clock.set(_cst(29, 17, 29))
    assert await hub.scheduler.tick() == 0
    clock.set(_cst(29, 17, 30))
    assert await hub.scheduler.tick() == 2  # the first response is breached, resolution warned


async def test_waiting_for_the_customer_is_paid_back_in_business_time(
    hub: Hub, clock: ManualClock
) -> None:
    clock.set(_cst(27, 16, 30))
    number = await _open(hub)
    await _move(hub, number, TransitionRequest(Status.in_progress))
    clock.set(_cst(27, 17, 0))  # 30 business minutes used
    await _move(hub, number, TransitionRequest(Status.pending_customer))
    assert (await _clocks(hub, number))["resolution"].state == ClockState.paused
    clock.set(_cst(1, 11, 0))  # the customer answers on Tuesday 11:00
    await _move(hub, number, TransitionRequest(Status.in_progress))
    # 15.5 h left: Tuesday 11:00-12:00 and 13:30-17:30 (5 h), Wednesday 7 h, Thursday 3.5 h
    # (09:00-12:00, 13:30-14:00).
    assert (await _clocks(hub, number))["resolution"].due_at == _cst(3, 14, 0)


def test_a_policy_on_an_unknown_calendar_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="calendar 'nowhere'"):
        SlaSettings(
            policies={
                "p": PolicySettings(basis="nowhere", targets={"complaint": {"resolution": "1d"}})
            }
        )


def test_a_bad_duration_is_refused_naming_the_entry() -> None:
    with pytest.raises(ValueError, match=r"sla.policies.p.targets.complaint.resolution: 'soon'"):
        SlaSettings(policies={"p": PolicySettings(targets={"complaint": {"resolution": "soon"}})})
    assert issubclass(PolicyError, ValueError)
