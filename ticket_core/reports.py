"""Regulatory statistics: tickets received in each period, broken down by kind, channel,
business category and cause, with how many were decided and how many met their clocks.

The report is a cohort report: each ticket counts in the period in which the case was
received (``clock_started_at``, the regulator's receipt time for a transferred case, else
our own), and its decision and clocks are judged as they stand at ``as_of``. So a period's
figures settle as its tickets are decided, and a past period can be re-run with the same
result once all of them are.

Definitions (per group of tickets):

* ``received``: tickets received in the period; ``decided``: of them, those now resolved or
  closed; ``open``: the rest.
* first response, for tickets with a first-response due time: ``in_time`` answered by it,
  ``late`` answered after it or still unanswered past it, ``pending`` unanswered and not yet
  due. ``attainment = in_time / (in_time + late)``.
* resolution, for tickets with a resolution due time: the same with the decision.
* ``decided_in_time_share``: of the decided tickets with a due time, the share decided by it
  (按时办结率); unlike resolution attainment it leaves out cases still open.

Counting happens in the database (one ``GROUP BY`` over the period's tickets), so the cost is
one scan of the tickets in range whatever their number; periods are mapped to ``CASE``
ranges computed here in the reporting time zone, so day, week, month and quarter boundaries
fall at local midnight on SQLite and PostgreSQL alike.

JR/T 0169-2018 codes (``category_codes``: ``channel`` A, ``business`` B, ``cause`` C) are
reported as the senders gave them; a label appears only where the operator configured one.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from ticket_core.models import Status, Ticket

MAX_PERIODS = 1000
# Days a report may cover: beyond these, a period's end or its instant in UTC leaves the
# calendar Python can represent (found by the bad-input drill: from=0001-01-01 answered 500).
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(9998, 12, 31)
DECIDED = (Status.resolved.value, Status.closed.value)


class ReportError(ValueError):
    """A report that cannot be made as asked; the message names the parameter."""


class Grouping(StrEnum):
    day = "day"
    week = "week"
    month = "month"
    quarter = "quarter"


class Dimension(StrEnum):
    kind = "kind"
    channel = "channel"
    category = "category"
    channel_code = "channel_code"
    business_code = "business_code"
    cause_code = "cause_code"


DEFAULT_DIMENSIONS = (
    Dimension.kind,
    Dimension.channel,
    Dimension.category,
    Dimension.business_code,
    Dimension.cause_code,
)
CODE_FAMILIES = {
    Dimension.channel_code: "channel",
    Dimension.business_code: "business",
    Dimension.cause_code: "cause",
}
"""Which key of ``Ticket.category_codes`` (and of the configured labels) each code is."""


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ReportError(
            f"unknown time zone {name!r}; give an IANA name such as Asia/Shanghai"
        ) from None


# --- periods ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    """One reporting period, clipped to the report's range; ``end`` is exclusive."""

    label: str
    start: date
    end: date
    starts_at: datetime
    ends_at: datetime

    @property
    def last_day(self) -> date:
        return self.end - timedelta(days=1)


def _nominal_start(day: date, grouping: Grouping) -> date:
    if grouping is Grouping.day:
        return day
    if grouping is Grouping.week:
        return day - timedelta(days=day.weekday())
    if grouping is Grouping.month:
        return day.replace(day=1)
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def _following(start: date, grouping: Grouping) -> date:
    if grouping is Grouping.day:
        return start + timedelta(days=1)
    if grouping is Grouping.week:
        return start + timedelta(days=7)
    months = 1 if grouping is Grouping.month else 3
    index = start.year * 12 + start.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _label(start: date, grouping: Grouping) -> str:
    if grouping is Grouping.day:
        return start.isoformat()
    if grouping is Grouping.week:
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    if grouping is Grouping.month:
        return f"{start.year}-{start.month:02d}"
    return f"{start.year}-Q{(start.month - 1) // 3 + 1}"


def periods(first: date, last: date, grouping: Grouping, tz: ZoneInfo) -> list[Period]:
    """The periods covering ``first`` to ``last`` (both included) in the time zone ``tz``:
    calendar days, ISO weeks (Monday first), months or quarters, the first and last clipped
    to the range."""
    if first > last:
        raise ReportError(f"the range is empty: from {first} is after to {last}")
    if first < FIRST_DAY or last > LAST_DAY:
        raise ReportError(f"reports cover days from {FIRST_DAY} to {LAST_DAY}")
    nominal = _nominal_start(first, grouping)
    count = 0
    while nominal <= last:
        count += 1
        nominal = _following(nominal, grouping)
    if count > MAX_PERIODS:
        raise ReportError(
            f"{first} to {last} by {grouping.value} gives {count} periods, more than "
            f"{MAX_PERIODS}; group by a longer period or shorten the range"
        )

    def instant(day: date) -> datetime:
        return datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)

    result: list[Period] = []
    start = first
    while start <= last:
        nominal = _nominal_start(start, grouping)
        end = min(_following(nominal, grouping), last + timedelta(days=1))
        result.append(Period(_label(nominal, grouping), start, end, instant(start), instant(end)))
        start = end
    return result


# --- counts -------------------------------------------------------------------------------


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass(frozen=True, slots=True)
class Counts:
    received: int = 0
    decided: int = 0
    first_response_in_time: int = 0
    first_response_late: int = 0
    first_response_pending: int = 0
    resolution_in_time: int = 0
    resolution_late: int = 0
    resolution_pending: int = 0
    decided_late: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(Counts)))

    @property
    def open(self) -> int:
        return self.received - self.decided

    @property
    def decided_in_time(self) -> int:
        # Decided by the due time is exactly resolution in time.
        return self.resolution_in_time

    @property
    def first_response_attainment(self) -> float | None:
        return _rate(
            self.first_response_in_time, self.first_response_in_time + self.first_response_late
        )

    @property
    def resolution_attainment(self) -> float | None:
        return _rate(self.resolution_in_time, self.resolution_in_time + self.resolution_late)

    @property
    def decided_in_time_share(self) -> float | None:
        return _rate(self.decided_in_time, self.decided_in_time + self.decided_late)

    def as_dict(self) -> dict[str, int | float | None]:
        return {
            "received": self.received,
            "decided": self.decided,
            "open": self.open,
            "first_response_in_time": self.first_response_in_time,
            "first_response_late": self.first_response_late,
            "first_response_pending": self.first_response_pending,
            "first_response_attainment": self.first_response_attainment,
            "resolution_in_time": self.resolution_in_time,
            "resolution_late": self.resolution_late,
            "resolution_pending": self.resolution_pending,
            "resolution_attainment": self.resolution_attainment,
            "decided_in_time": self.decided_in_time,
            "decided_late": self.decided_late,
            "decided_in_time_share": self.decided_in_time_share,
        }


COUNT_COLUMNS = tuple(Counts().as_dict())


# --- the report ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatisticsRequest:
    first: date
    last: date
    grouping: Grouping = Grouping.month
    timezone: str = "Asia/Shanghai"
    dimensions: tuple[Dimension, ...] = DEFAULT_DIMENSIONS
    labels: Mapping[str, Mapping[str, str]] | None = None
    """Operator-configured names of JR/T 0169 codes, by family (``channel``, ``business``,
    ``cause``) and code."""


@dataclass(frozen=True, slots=True)
class Row:
    period: Period
    values: tuple[str | None, ...]
    """One value per requested dimension, in the request's order."""
    counts: Counts


@dataclass(frozen=True, slots=True)
class StatisticsReport:
    request: StatisticsRequest
    as_of: datetime
    periods: list[Period]
    rows: list[Row]

    def period_totals(self) -> list[tuple[Period, Counts]]:
        sums = {p.start: Counts() for p in self.periods}
        for row in self.rows:
            sums[row.period.start] += row.counts
        return [(p, sums[p.start]) for p in self.periods]

    def total(self) -> Counts:
        return sum((c for _, c in self.period_totals()), Counts())

    def _dimension_fields(self, values: Sequence[str | None]) -> dict[str, str | None]:
        labels = self.request.labels or {}
        out: dict[str, str | None] = {}
        for dimension, value in zip(self.request.dimensions, values, strict=True):
            out[dimension.value] = value
            family = CODE_FAMILIES.get(dimension)
            if family is not None:
                label = labels.get(family, {}).get(value) if value is not None else None
                out[f"{family}_label"] = label
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "from": self.request.first.isoformat(),
            "to": self.request.last.isoformat(),
            "group": self.request.grouping.value,
            "timezone": self.request.timezone,
            "as_of": self.as_of.astimezone(UTC).isoformat(),
            "dimensions": [d.value for d in self.request.dimensions],
            "periods": [
                {
                    "period": p.label,
                    "start": p.start.isoformat(),
                    "end": p.last_day.isoformat(),
                    **counts.as_dict(),
                }
                for p, counts in self.period_totals()
            ],
            "rows": [
                {
                    "period": r.period.label,
                    **self._dimension_fields(r.values),
                    **r.counts.as_dict(),
                }
                for r in self.rows
            ],
            "total": self.total().as_dict(),
        }

    def as_csv(self) -> str:
        """One table: a ``group`` line per breakdown, a ``period`` line per period's totals
        and one ``total`` line; rates are fractions with four decimals, empty when nothing
        was due."""
        dimension_columns = list(self._dimension_fields([None] * len(self.request.dimensions)))
        header = ["level", "period", "period_start", "period_end", *dimension_columns]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow([*header, *COUNT_COLUMNS])
        blanks = [""] * len(dimension_columns)

        def numbers(counts: Counts) -> list[str]:
            return ["" if v is None else str(v) for v in counts.as_dict().values()]

        def span(p: Period) -> list[str]:
            return [p.label, p.start.isoformat(), p.last_day.isoformat()]

        for row in self.rows:
            cells = [_cell(v) for v in self._dimension_fields(row.values).values()]
            writer.writerow(["group", *span(row.period), *cells, *numbers(row.counts)])
        for period, counts in self.period_totals():
            writer.writerow(["period", *span(period), *blanks, *numbers(counts)])
        whole = [self.request.first.isoformat(), self.request.last.isoformat()]
        writer.writerow(["total", "", *whole, *blanks, *numbers(self.total())])
        return buffer.getvalue()


def _cell(value: str | None) -> str:
    """A text cell that a spreadsheet will not run as a formula (senders write categories)."""
    if value is None:
        return ""
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _dimension_column(dimension: Dimension) -> sa.ColumnElement[Any]:
    if dimension in CODE_FAMILIES:
        return col(Ticket.category_codes)[CODE_FAMILIES[dimension]].as_string()
    return col(getattr(Ticket, dimension.value))


_SUMS = {
    "decided": "decided",
    "first_response_in_time": "fr_in_time",
    "first_response_late": "fr_late",
    "first_response_pending": "fr_pending",
    "resolution_in_time": "res_in_time",
    "resolution_late": "res_late",
    "resolution_pending": "res_pending",
    "decided_late": "decided_late",
}
"""``Counts`` fields summed from the per-ticket flags of the inner query."""


def _flag(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    return sa.case((condition, 1), else_=0)


async def ticket_statistics(
    session: AsyncSession, request: StatisticsRequest, *, now: datetime
) -> StatisticsReport:
    """Count the tickets received in the request's range, one ``GROUP BY`` in the database."""
    dimensions = tuple(dict.fromkeys(request.dimensions))
    request = replace(request, dimensions=dimensions)
    spans = periods(request.first, request.last, request.grouping, zone(request.timezone))
    received_at = sa.func.coalesce(col(Ticket.clock_started_at), col(Ticket.created_at))
    bucket = sa.case(
        *((received_at < p.ends_at, index) for index, p in enumerate(spans)),
        else_=None,
    )
    decided = col(Ticket.status).in_(DECIDED)
    fr_due, fr_at = col(Ticket.first_response_due_at), col(Ticket.first_responded_at)
    res_due, res_at = col(Ticket.resolution_due_at), col(Ticket.resolved_at)
    answered = fr_at.is_not(None)
    inner = (
        sa.select(
            bucket.label("bucket"),
            *(_dimension_column(d).label(d.value) for d in dimensions),
            _flag(decided).label("decided"),
            _flag(fr_due.is_not(None) & answered & (fr_at <= fr_due)).label("fr_in_time"),
            _flag(
                fr_due.is_not(None) & ((answered & (fr_at > fr_due)) | (~answered & (fr_due < now)))
            ).label("fr_late"),
            _flag(fr_due.is_not(None) & ~answered & (fr_due >= now)).label("fr_pending"),
            _flag(res_due.is_not(None) & decided & (res_at <= res_due)).label("res_in_time"),
            _flag(
                res_due.is_not(None)
                & ((decided & (res_at > res_due)) | (~decided & (res_due < now)))
            ).label("res_late"),
            _flag(res_due.is_not(None) & ~decided & (res_due >= now)).label("res_pending"),
            _flag(res_due.is_not(None) & decided & (res_at > res_due)).label("decided_late"),
        )
        .where(received_at >= spans[0].starts_at, received_at < spans[-1].ends_at)
        .subquery("received")
    )
    keys = [inner.c.bucket, *(inner.c[d.value] for d in dimensions)]
    query = sa.select(
        *keys,
        sa.func.count().label("received"),
        *(sa.func.sum(inner.c[column]).label(field) for field, column in _SUMS.items()),
    ).group_by(*keys)
    rows: list[Row] = []
    for found in (await session.exec(query)).mappings().all():
        counts = Counts(
            received=int(found["received"]),
            **{field: int(found[field] or 0) for field in _SUMS},
        )
        values = tuple(found[d.value] for d in dimensions)
        rows.append(Row(spans[found["bucket"]], values, counts))
    rows.sort(key=lambda r: (r.period.start, *((v is None, v or "") for v in r.values)))
    return StatisticsReport(request, now, spans, rows)
