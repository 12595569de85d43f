"""Business time (ticket_core/calendar.py), checked against worked examples and against a
minute-by-minute reference that is too slow for production but obviously right.

The holidays and make-up days below are test data in the shape of a Chinese October holiday,
not the official calendar of any year.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from ticket_core.calendar import (
    BusinessCalendar,
    CalendarConfigError,
    CalendarHours,
    Period,
    TimeBasis,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
LONDON = ZoneInfo("Europe/London")
WORKING = ["09:00-12:00", "13:30-17:30"]
WEEK = {day: WORKING for day in ("mon", "tue", "wed", "thu", "fri")}
# Test data: Thursday 1 to Wednesday 7 October off, Sunday 27 September and Saturday 10
# October worked instead.
HOLIDAYS = [f"2026-10-0{d}" for d in range(1, 8)]
WORKDAYS = ["2026-09-27", "2026-10-10"]


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


def ldn(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=LONDON, fold=fold)  # type: ignore[misc]


@pytest.fixture(scope="module")
def cal() -> BusinessCalendar:
    return BusinessCalendar.from_dict({"periods": WEEK, "holidays": HOLIDAYS, "workdays": WORKDAYS})


def hours(value: float) -> timedelta:
    return timedelta(hours=value)


# --- worked examples --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "duration", "expected"),
    [
        (sh(2026, 11, 23, 9, 0), hours(2), sh(2026, 11, 23, 11, 0)),  # Monday morning
        (sh(2026, 11, 23, 11, 0), hours(2), sh(2026, 11, 23, 14, 30)),  # across lunch
        (sh(2026, 11, 23, 12, 30), hours(1), sh(2026, 11, 23, 14, 30)),  # starts at lunch
        (sh(2026, 11, 23, 7, 15), hours(1), sh(2026, 11, 23, 10, 0)),  # before opening
        (sh(2026, 11, 23, 18, 0), hours(1), sh(2026, 11, 24, 10, 0)),  # after closing
        (sh(2026, 11, 23, 9, 0), hours(3), sh(2026, 11, 23, 12, 0)),  # exactly the period end
        (sh(2026, 11, 23, 13, 30), hours(4), sh(2026, 11, 23, 17, 30)),  # exactly the day end
        (sh(2026, 11, 23, 9, 0), hours(7), sh(2026, 11, 23, 17, 30)),  # the whole day
        (sh(2026, 11, 27, 17, 0), hours(1), sh(2026, 11, 30, 9, 30)),  # Friday over weekend
        (sh(2026, 11, 28, 10, 0), hours(1), sh(2026, 11, 30, 10, 0)),  # starts on Saturday
        (sh(2026, 9, 30, 17, 0), hours(1), sh(2026, 10, 8, 9, 30)),  # into the holiday week
        (sh(2026, 10, 3, 10, 0), hours(0.5), sh(2026, 10, 8, 9, 30)),  # starts on a holiday
        (sh(2026, 9, 25, 17, 0), hours(1), sh(2026, 9, 27, 9, 30)),  # a worked Sunday
        (sh(2026, 10, 9, 17, 0), hours(1), sh(2026, 10, 10, 9, 30)),  # a worked Saturday
        (sh(2026, 11, 23, 9, 0), hours(7 * 15), sh(2026, 12, 11, 17, 30)),  # 15 working days
    ],
)
def test_add_worked_examples(
    cal: BusinessCalendar, start: datetime, duration: timedelta, expected: datetime
) -> None:
    result = cal.add(start, duration)
    assert result == expected
    assert result.tzinfo is UTC
    assert cal.elapsed(start, result) == duration


def test_sixty_working_days_through_the_holiday_week(cal: BusinessCalendar) -> None:
    # From Monday 21 September: Sep 21-25 (5), Sun 27 (1), Sep 28-30 (3), Oct 8-9 (2),
    # Sat 10 (1) = 12 working days to 10 October; then 48 more Monday-Friday days (9 weeks
    # and 3 days) end on Wednesday 16 December.
    start = sh(2026, 9, 21, 9, 0)
    due = cal.add(start, hours(7 * 60))
    assert due == sh(2026, 12, 16, 17, 30)
    assert cal.elapsed(start, due) == hours(7 * 60)


def test_long_durations_step_by_days_not_minutes(
    cal: BusinessCalendar, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[date] = []
    original = BusinessCalendar.periods_on

    def counting(self: BusinessCalendar, day: date) -> tuple[Period, ...]:
        calls.append(day)
        return original(self, day)

    monkeypatch.setattr(BusinessCalendar, "periods_on", counting)
    fresh = BusinessCalendar(WEEK, holidays=[date(2031, 1, 1)], workdays=[date(2030, 6, 1)])
    fresh.add(sh(2026, 11, 23, 9, 0), hours(7 * 60))
    assert len(calls) < 2 * 90  # about 85 calendar days, each looked at once or twice


def test_zero_duration_is_the_start_itself_even_outside_hours(cal: BusinessCalendar) -> None:
    saturday_night = sh(2026, 11, 28, 23, 0)
    assert cal.add(saturday_night, timedelta(0)) == saturday_night
    assert cal.elapsed(saturday_night, saturday_night) == timedelta(0)


def test_elapsed_counts_only_working_time(cal: BusinessCalendar) -> None:
    assert cal.elapsed(sh(2026, 11, 27, 17, 0), sh(2026, 11, 30, 9, 30)) == hours(1)
    assert cal.elapsed(sh(2026, 11, 23, 12, 0), sh(2026, 11, 23, 13, 30)) == timedelta(0)
    assert cal.elapsed(sh(2026, 10, 1, 0, 0), sh(2026, 10, 8, 0, 0)) == timedelta(0)
    assert cal.elapsed(sh(2026, 11, 30, 9, 30), sh(2026, 11, 27, 17, 0)) == -hours(1)


def test_is_working_day(cal: BusinessCalendar) -> None:
    assert cal.is_working_day(date(2026, 11, 23))  # Monday
    assert not cal.is_working_day(date(2026, 11, 28))  # Saturday
    assert not cal.is_working_day(date(2026, 10, 1))  # holiday on a Thursday
    assert cal.is_working_day(date(2026, 9, 27))  # make-up Sunday
    assert cal.periods_on(date(2026, 9, 27)) == cal.periods_on(date(2026, 9, 28))
    with pytest.raises(TypeError, match="takes a date"):
        cal.is_working_day(datetime(2026, 11, 23, tzinfo=UTC))


def test_make_up_days_take_workday_periods_when_given() -> None:
    cal = BusinessCalendar(
        {"mon": ["08:00-18:00"], "tue": WORKING},
        workdays=[date(2026, 9, 27)],
        workday_periods=["10:00-11:00"],
    )
    assert [str(p) for p in cal.periods_on(date(2026, 9, 27))] == ["10:00-11:00"]
    assert cal.add(sh(2026, 9, 26, 12, 0), hours(1)) == sh(2026, 9, 27, 11, 0)


def test_next_working_moment(cal: BusinessCalendar) -> None:
    assert cal.next_working_moment(sh(2026, 11, 23, 10, 0)) == sh(2026, 11, 23, 10, 0)
    assert cal.next_working_moment(sh(2026, 11, 23, 12, 0)) == sh(2026, 11, 23, 13, 30)
    assert cal.next_working_moment(sh(2026, 9, 30, 17, 30)) == sh(2026, 10, 8, 9, 0)


def test_several_periods_a_day_and_a_period_to_midnight() -> None:
    cal = BusinessCalendar(
        {"mon": ["08:00-10:00", "12:00-13:00", "22:00-24:00"], "tue": ["00:00-02:00"]}
    )
    assert cal.add(sh(2026, 11, 23, 9, 0), hours(2)) == sh(2026, 11, 23, 13, 0)
    assert cal.add(sh(2026, 11, 23, 9, 0), hours(3.5)) == sh(2026, 11, 23, 23, 30)
    assert cal.add(sh(2026, 11, 23, 23, 0), hours(2)) == sh(2026, 11, 24, 1, 0)
    assert cal.add(sh(2026, 11, 23, 22, 0), hours(2)) == sh(2026, 11, 24, 0, 0)


# --- daylight saving time ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def london() -> BusinessCalendar:
    return BusinessCalendar(WEEK, timezone="Europe/London")


def test_london_weekend_when_clocks_go_forward(london: BusinessCalendar) -> None:
    # Clocks go forward on Sunday 29 March 2026: Friday 17:00 GMT, Monday 09:30 BST.
    due = london.add(ldn(2026, 3, 27, 17, 0), hours(1))
    assert due == datetime(2026, 3, 30, 8, 30, tzinfo=UTC)
    assert due.astimezone(LONDON).hour == 9


def test_london_weekend_when_clocks_go_back(london: BusinessCalendar) -> None:
    due = london.add(ldn(2026, 10, 23, 17, 0), hours(1))
    assert due == datetime(2026, 10, 26, 9, 30, tzinfo=UTC)
    assert london.elapsed(ldn(2026, 10, 23, 17, 0), due) == hours(1)


def test_a_whole_day_is_23_or_25_real_hours_on_clock_change_days() -> None:
    always = BusinessCalendar(
        {day: ["00:00-24:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
        timezone="Europe/London",
    )
    assert always.elapsed(ldn(2026, 3, 29), ldn(2026, 3, 30)) == hours(23)
    assert always.elapsed(ldn(2026, 10, 25), ldn(2026, 10, 26)) == hours(25)
    assert always.add(ldn(2026, 3, 29), hours(24)) == ldn(2026, 3, 30, 1, 0)
    # Every instant counts, so it agrees with calendar hours.
    start = ldn(2026, 3, 28, 6, 0)
    assert always.add(start, hours(50)) == CalendarHours().add(start, hours(50))


def test_boundaries_inside_the_skipped_and_the_repeated_hour() -> None:
    night = BusinessCalendar({"sun": ["01:30-03:00"]}, timezone="Europe/London")
    # 29 March: 01:00-02:00 does not exist; the period starts when the clocks jump.
    assert night.elapsed(ldn(2026, 3, 29), ldn(2026, 3, 30)) == hours(1)
    assert night.next_working_moment(ldn(2026, 3, 29)) == datetime(2026, 3, 29, 1, tzinfo=UTC)
    # 25 October: 01:00-02:00 happens twice; the period starts at the first 01:30.
    assert night.elapsed(ldn(2026, 10, 25), ldn(2026, 10, 26)) == hours(2.5)
    # An ordinary Sunday.
    assert night.elapsed(ldn(2026, 11, 1), ldn(2026, 11, 2)) == hours(1.5)


def test_a_period_entirely_inside_the_skipped_hour_has_no_time() -> None:
    odd = BusinessCalendar({"sun": ["01:10-01:50", "09:00-10:00"]}, timezone="Europe/London")
    assert odd.elapsed(ldn(2026, 3, 29), ldn(2026, 3, 30)) == hours(1)
    assert odd.add(ldn(2026, 3, 29), hours(0.5)) == ldn(2026, 3, 29, 9, 30)


def test_shanghai_has_no_clock_changes() -> None:
    cal = BusinessCalendar(WEEK)
    for month in range(1, 13):
        start = sh(2026, month, 1, 0, 0)
        due = cal.add(start, hours(1))
        assert (due.hour, due.minute) == (2, 0)  # 10:00 at UTC+8, all year
        assert due.astimezone(SHANGHAI).weekday() < 5


# --- properties against a minute-by-minute reference -------------------------------------------


def _working_minute(cal: BusinessCalendar, at: datetime) -> bool:
    local = at.astimezone(cal.timezone)
    second = local.hour * 3600 + local.minute * 60
    return any(p.start <= second < p.end for p in cal.periods_on(local.date()))


def _reference_add(cal: BusinessCalendar, start: datetime, minutes: int) -> datetime:
    at = start.astimezone(UTC)
    while minutes:
        if _working_minute(cal, at):
            minutes -= 1
        at += timedelta(minutes=1)
    return at  # the end of the last counted minute


def _reference_elapsed(cal: BusinessCalendar, a: datetime, b: datetime) -> timedelta:
    at, count = a.astimezone(UTC), 0
    while at < b:
        count += _working_minute(cal, at)
        at += timedelta(minutes=1)
    return timedelta(minutes=count)


def _starts(first: datetime, last: datetime, step: timedelta) -> Iterator[datetime]:
    at = first
    while at < last:
        yield at
        at += step


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "Europe/London"])
def test_add_agrees_with_minute_by_minute_reference(zone: str) -> None:
    tz = ZoneInfo(zone)
    cal = BusinessCalendar(WEEK, timezone=zone, holidays=HOLIDAYS, workdays=WORKDAYS)
    durations = [1, 150, 210, 421, 900]
    first, last = datetime(2026, 9, 24, 6, 7, tzinfo=tz), datetime(2026, 10, 12, tzinfo=tz)
    for start in _starts(first, last, timedelta(minutes=557)):
        for minutes in durations:
            due = cal.add(start, timedelta(minutes=minutes))
            assert due == _reference_add(cal, start, minutes), (start, minutes)


def test_london_add_across_both_clock_changes_agrees_with_reference() -> None:
    cal = BusinessCalendar(WEEK, timezone="Europe/London")
    for start in (ldn(2026, 3, 27, 15, 11), ldn(2026, 10, 23, 16, 59), ldn(2026, 3, 28, 12)):
        for minutes in (1, 60, 61, 420, 600):
            due = cal.add(start, timedelta(minutes=minutes))
            assert due == _reference_add(cal, start, minutes), (start, minutes)


def test_elapsed_agrees_with_reference_and_inverts_add(cal: BusinessCalendar) -> None:
    starts = list(_starts(sh(2026, 9, 24, 6, 7), sh(2026, 10, 12), timedelta(minutes=311)))
    for a, b in zip(starts, starts[7:], strict=False):
        assert cal.elapsed(a, b) == _reference_elapsed(cal, a, b), (a, b)
        back = cal.add(a, cal.elapsed(a, b))
        assert back <= b
        assert cal.elapsed(back, b) == timedelta(0)
        if _working_minute(cal, b - timedelta(minutes=1)):
            assert back == b  # b is inside a period, or at its end


def test_elapsed_is_the_inverse_of_add_for_many_starts_and_durations(
    cal: BusinessCalendar,
) -> None:
    durations = [timedelta(seconds=s) for s in (1, 59, 3600, 10_800, 10_801, 25_200, 100_000)]
    durations += [hours(7 * 15), hours(7 * 60)]
    for start in _starts(sh(2026, 9, 18, 0, 13), sh(2026, 10, 16), timedelta(minutes=97)):
        for duration in durations:
            due = cal.add(start, duration)
            assert cal.elapsed(start, due) == duration
            assert _working_minute(cal, due - timedelta(seconds=1))


# --- calendar hours and the protocol -----------------------------------------------------------


def test_calendar_hours_adds_real_hours_even_across_a_clock_change() -> None:
    basis = CalendarHours()
    start = ldn(2026, 3, 28, 12, 0)
    assert basis.add(start, hours(24)) == ldn(2026, 3, 29, 13, 0)  # 24 real hours
    assert basis.elapsed(start, ldn(2026, 3, 29, 12, 0)) == hours(23)
    assert basis.is_working_day(date(2026, 10, 1))
    assert basis.add(start, timedelta(0)) == start


def test_both_bases_satisfy_the_protocol(cal: BusinessCalendar) -> None:
    bases: list[TimeBasis] = [cal, CalendarHours()]
    for basis in bases:
        assert isinstance(basis, TimeBasis)


@pytest.mark.parametrize("basis", [CalendarHours(), BusinessCalendar(WEEK)])
def test_naive_times_and_negative_durations_are_refused(basis: TimeBasis) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        basis.add(datetime(2026, 11, 23, 9, 0), hours(1))
    with pytest.raises(ValueError, match="timezone-aware"):
        basis.elapsed(sh(2026, 11, 23), datetime(2026, 11, 24))
    with pytest.raises(ValueError, match="negative"):
        basis.add(sh(2026, 11, 23), -hours(1))


def test_a_calendar_that_runs_out_of_working_time_says_so() -> None:
    only = BusinessCalendar({}, workdays=[date(2026, 9, 27)], workday_periods=WORKING)
    assert only.add(sh(2026, 9, 1), hours(7)) == sh(2026, 9, 27, 17, 30)
    with pytest.raises(ValueError, match="no working time after"):
        only.add(sh(2026, 9, 1), hours(8))


# --- configuration -----------------------------------------------------------------------------


def test_from_toml_with_native_dates() -> None:
    text = """
    timezone = "Asia/Shanghai"
    holidays = [2026-10-01, "2026-10-02"]
    workdays = [2026-09-27]
    [periods]
    mon = ["09:00-12:00", "13:30-17:30"]
    Friday = ["09:00 – 12:00"]
    """
    cal = BusinessCalendar.from_dict(tomllib.loads(text))
    assert cal.holidays == {date(2026, 10, 1), date(2026, 10, 2)}
    assert cal.workdays == {date(2026, 9, 27)}
    assert [str(p) for p in cal.periods_on(date(2026, 11, 27))] == ["09:00-12:00"]
    assert cal.timezone.key == "Asia/Shanghai"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"periods": {"mon": ["09:00-25:00"]}}, "periods.mon[0]: '09:00-25:00' has a time"),
        ({"periods": {"mon": ["9-12"]}}, "periods.mon[0]: '9-12' is not a period"),
        ({"periods": {"tue": ["12:00-09:00"]}}, "periods.tue[0]: '12:00-09:00': a period must"),
        ({"periods": {"wed": ["24:00-24:00"]}}, "periods.wed[0]"),
        (
            {"periods": {"mon": ["09:00-12:00", "11:30-13:00"]}},
            "periods.mon[0] 09:00-12:00 and periods.mon[1] 11:30-13:00 overlap",
        ),
        ({"periods": {"mnday": ["09:00-12:00"]}}, "periods.mnday: unknown weekday"),
        ({"periods": {"mon": "09:00-12:00"}}, "periods.mon: must be a list"),
        ({"periods": WEEK, "holidays": ["2026-13-01"]}, "holidays[0]: '2026-13-01' is not a"),
        ({"periods": WEEK, "holidays": ["2026/10/01"]}, "holidays[0]: '2026/10/01' is not a"),
        ({"periods": WEEK, "workdays": [20261001]}, "workdays[0]: 20261001 is not a date"),
        (
            {"periods": WEEK, "holidays": ["2026-10-01"], "workdays": ["2026-10-01"]},
            "2026-10-01 is both a holiday and a workday",
        ),
        ({"periods": WEEK, "timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"periods": WEEK, "holiday": ["2026-10-01"]}, "holiday: unknown key"),
        ({}, "periods: required"),
        ({"periods": {}}, "no weekday has a working period"),
        ({"periods": WEEK, "holidays": "2026-10-01"}, "holidays: must be a list"),
        (
            {"periods": {"tue": WORKING}, "workdays": ["2026-09-27"]},
            "workdays: 2026-09-27 is a sun, which has no periods",
        ),
    ],
)
def test_bad_configuration_names_the_entry(data: dict[str, object], message: str) -> None:
    with pytest.raises(CalendarConfigError) as caught:
        BusinessCalendar.from_dict(data)
    assert message in str(caught.value)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(CalendarConfigError) as caught:
        BusinessCalendar.from_dict(
            {"periods": {"mon": ["bad", "09:00-12:00"]}, "holidays": ["x", "2026-10-01"]}
        )
    assert len(caught.value.problems) == 2


def test_period_parsing_and_text() -> None:
    assert Period.parse("9:05-17:30") == Period(9 * 3600 + 300, 17 * 3600 + 1800)
    assert str(Period.parse("00:00-24:00")) == "00:00-24:00"
    assert Period.of(time(22), time(0)) == Period(22 * 3600, 24 * 3600)
    assert Period.parse("09:00-12:00").duration == hours(3)
