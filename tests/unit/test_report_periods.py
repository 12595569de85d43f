"""The pure parts of the statistics report: periods in a time zone, rates, the CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from ticket_core.reports import (
    Counts,
    Dimension,
    Grouping,
    ReportError,
    Row,
    StatisticsReport,
    StatisticsRequest,
    periods,
    zone,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
UTC_ZONE = ZoneInfo("UTC")


def test_months_start_at_local_midnight_and_the_range_end_is_included() -> None:
    (november,) = periods(date(2026, 11, 1), date(2026, 11, 30), Grouping.month, SHANGHAI)
    assert november.label == "2026-11"
    assert november.starts_at == datetime(2026, 10, 31, 16, 0, tzinfo=UTC)
    assert november.ends_at == datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
    assert november.last_day == date(2026, 11, 30)


def test_weeks_are_iso_weeks_clipped_to_the_range() -> None:
    weeks = periods(date(2026, 12, 30), date(2027, 1, 12), Grouping.week, UTC_ZONE)
    assert [(w.label, w.start, w.last_day) for w in weeks] == [
        ("2026-W53", date(2026, 12, 30), date(2027, 1, 3)),
        ("2027-W01", date(2027, 1, 4), date(2027, 1, 10)),
        ("2027-W02", date(2027, 1, 11), date(2027, 1, 12)),
    ]


def test_quarters_cross_the_year_end() -> None:
    quarters = periods(date(2026, 11, 15), date(2027, 4, 1), Grouping.quarter, SHANGHAI)
    assert [(q.label, q.start, q.last_day) for q in quarters] == [
        ("2026-Q4", date(2026, 11, 15), date(2026, 12, 31)),
        ("2027-Q1", date(2027, 1, 1), date(2027, 3, 31)),
        ("2027-Q2", date(2027, 4, 1), date(2027, 4, 1)),
    ]


def test_days_follow_daylight_saving_in_zones_that_have_it() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    days = periods(date(2026, 3, 28), date(2026, 3, 30), Grouping.day, berlin)
    assert [d.starts_at.hour for d in days] == [23, 23, 22]
    assert (days[1].ends_at - days[1].starts_at).total_seconds() == 23 * 3600


def test_an_empty_or_oversized_range_is_refused_naming_it() -> None:
    with pytest.raises(ReportError, match="from 2026-12-01 is after to 2026-11-30"):
        periods(date(2026, 12, 1), date(2026, 11, 30), Grouping.month, SHANGHAI)
    with pytest.raises(ReportError, match="gives 1096 periods, more than 1000"):
        periods(date(2024, 1, 1), date(2026, 12, 31), Grouping.day, SHANGHAI)
    with pytest.raises(ReportError, match="unknown time zone 'Asia/Nowhere'"):
        zone("Asia/Nowhere")


@pytest.mark.parametrize(
    ("first", "last"), [(date(1, 1, 1), date(1, 1, 1)), (date(9999, 12, 31), date(9999, 12, 31))]
)
def test_days_at_the_ends_of_the_calendar_are_refused_not_overflowed(
    first: date, last: date
) -> None:
    """Found by the bad-input drill: ``from=0001-01-01`` in Shanghai answered 500."""
    with pytest.raises(ReportError, match="reports cover days from 1900-01-01 to 9998-12-31"):
        periods(first, last, Grouping.day, SHANGHAI)


def test_rates_leave_out_what_is_not_yet_due_and_are_empty_when_nothing_was() -> None:
    counts = Counts(
        received=4,
        decided=2,
        first_response_in_time=1,
        first_response_late=2,
        first_response_pending=1,
        resolution_in_time=1,
        resolution_late=1,
        resolution_pending=2,
    )
    assert counts.open == 2
    assert counts.first_response_attainment == 0.3333
    assert counts.resolution_attainment == 0.5
    assert counts.decided_in_time_share == 1.0
    assert Counts(received=1).first_response_attainment is None
    assert (counts + counts).received == 8


def test_csv_cells_from_senders_cannot_run_as_spreadsheet_formulas() -> None:
    (month,) = periods(date(2026, 11, 1), date(2026, 11, 30), Grouping.month, SHANGHAI)
    request = StatisticsRequest(
        date(2026, 11, 1),
        date(2026, 11, 30),
        dimensions=(Dimension.category, Dimension.cause_code),
        labels={"cause": {"C9": "=label"}},
    )
    report = StatisticsReport(
        request,
        datetime(2026, 12, 1, tzinfo=UTC),
        [month],
        [Row(month, ("=HYPERLINK(1)", "C9"), Counts(received=1))],
    )
    (group, _, _) = list(csv.DictReader(io.StringIO(report.as_csv())))
    assert group["category"] == "'=HYPERLINK(1)"
    assert group["cause_label"] == "'=label"
    assert report.as_json()["rows"][0]["category"] == "=HYPERLINK(1)"
