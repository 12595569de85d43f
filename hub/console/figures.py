"""The dashboard's figures.

Volume and categories come from the regulatory statistics engine (``ticket_core.reports``),
so the console and the regulator's report count alike: a ticket counts in the period in
which its case was received, in the reporting time zone. The open backlog and SLA
attainment, which that report does not break down, are counted here; every figure is one
``GROUP BY`` in the database, whatever the number of tickets.

Each figure is a ``Grid`` (counts by row and column), from which the chart, the table beside
it for screen readers and the CSV download are all made, so the three cannot disagree.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from markupsafe import Markup
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.console import charts
from hub.console.queue import OPEN
from hub.runtime import Hub
from ticket_core import ClockState, Kind, SlaClock, Ticket
from ticket_core.policies import RESOLUTION
from ticket_core.reports import (
    DECIDED,
    Dimension,
    Grouping,
    Period,
    ReportError,
    StatisticsReport,
    StatisticsRequest,
    periods,
    ticket_statistics,
)

Words = Callable[..., str]

DEFAULT_DAYS = 30
MAX_PERIODS_SHOWN = 366
"""Columns a chart can still show legibly: a year of days."""
TOP_CATEGORIES = 10
GROUPINGS = (Grouping.day, Grouping.week, Grouping.month)
AGE_BUCKETS = (("lt_1d", 1), ("1_3d", 3), ("3_7d", 7), ("7_15d", 15), ("15_30d", 30))
OLDEST_BUCKET = "gt_30d"
"""Open tickets by age: younger than each limit in days, else the oldest bucket."""
Dataset = Literal["volume_channel", "volume_kind", "backlog", "attainment", "categories"]


# --- the dashboard's figures --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Grid:
    """One figure: counts by row (a period, an age, a team, a category) and column (a
    channel, a kind, met or breached). An empty key stands for "not set"."""

    name: Dataset
    shape: Literal["columns", "bars"]
    row_head: str
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    cells: Mapping[tuple[str, str], int]
    row_words: str = ""
    """Prefix of the words naming the rows; empty: rows are shown as they are."""
    column_words: str = ""
    colours: tuple[str, ...] = ()
    ticks: Mapping[str, str] = field(default_factory=dict)
    details_head: tuple[str, ...] = ()
    details: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    share_of: str | None = None
    """A column whose share of each row's total the figure reports (met: attainment)."""

    def count(self, row: str, column: str) -> int:
        return self.cells.get((row, column), 0)

    def total(self, row: str) -> int:
        return sum(self.count(row, c) for c in self.columns)

    def share(self, row: str) -> float | None:
        whole = self.total(row)
        return self.count(row, self.share_of) / whole if self.share_of and whole else None

    @property
    def is_empty(self) -> bool:
        return not any(self.cells.values())

    def row_label(self, key: str, t: Words) -> str:
        if not key:
            return t("dash.unset")
        return t(self.row_words + key) if self.row_words else key

    def column_label(self, key: str, t: Words) -> str:
        if not key:
            return t("dash.unset")
        return t(self.column_words + key) if self.column_words else key

    def percent(self, row: str) -> str:
        share = self.share(row)
        return f"{share:.0%}" if share is not None else ""

    def note(self, row: str) -> str:
        """What a bar says at its end: its total, and the share where there is one."""
        total = str(self.total(row))
        return f"{self.percent(row)} · {total}" if self.share_of else total

    def chart(self, t: Words) -> charts.Chart:
        colours = self.colours or tuple(charts.palette(i) for i in range(len(self.columns)))
        return charts.Chart(
            title=t(f"dash.{self.name}"),
            categories=tuple(self.row_label(r, t) for r in self.rows),
            series=tuple(
                charts.Series(
                    self.column_label(c, t), tuple(self.count(r, c) for r in self.rows), colour
                )
                for c, colour in zip(self.columns, colours, strict=True)
            ),
            ticks=tuple(self.ticks.get(r, self.row_label(r, t)) for r in self.rows),
            notes=tuple(self.note(r) for r in self.rows),
        )

    def draw(self, t: Words) -> Markup:
        chart = self.chart(t)
        return charts.columns(chart) if self.shape == "columns" else charts.bars(chart)

    def as_csv(self) -> bytes:
        """The figure's numbers with stable English headers and the stored values (channel
        and kind codes, queue names), with a byte-order mark so spreadsheets read Chinese."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        shares = [f"{self.share_of}_share"] if self.share_of else []
        columns = [_cell(c) for c in self.columns]
        writer.writerow([self.row_head, *self.details_head, *columns, "total", *shares])
        for row in self.rows:
            share = self.share(row)
            writer.writerow(
                [
                    _cell(row),
                    *self.details.get(row, ()),
                    *(self.count(row, c) for c in self.columns),
                    self.total(row),
                    *([f"{share:.4f}" if share is not None else ""] if self.share_of else []),
                ]
            )
        return buffer.getvalue().encode("utf-8-sig")


def _cell(value: str) -> str:
    """A text cell a spreadsheet will not run as a formula: senders write the categories."""
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _tick(period: Period, grouping: Grouping) -> str:
    """A period's name under a column, short enough for thirty of them side by side."""
    if grouping is Grouping.day:
        return period.start.strftime("%m-%d")
    if grouping is Grouping.week:
        return period.label.rpartition("-")[2]
    return period.label


def _volume(report: StatisticsReport, dimension: Dimension, name: Dataset) -> Grid:
    """Tickets received in each period by one dimension of the statistics report."""
    grouping = report.request.grouping
    index = report.request.dimensions.index(dimension)
    cells: Counter[tuple[str, str]] = Counter()
    for row in report.rows:
        cells[(row.period.label, row.values[index] or "")] += row.counts.received
    present = {column for _, column in cells}
    if dimension is Dimension.kind:
        columns = tuple(k.value for k in Kind)
    else:
        columns = tuple(sorted(present))
    return Grid(
        name=name,
        shape="columns",
        row_head="period",
        rows=tuple(p.label for p in report.periods),
        columns=columns,
        cells=cells,
        column_words=f"{dimension.value}.",
        ticks={p.label: _tick(p, grouping) for p in report.periods},
        details_head=("period_start", "period_end"),
        details={p.label: (p.start.isoformat(), p.last_day.isoformat()) for p in report.periods},
    )


def _categories(report: StatisticsReport) -> Grid:
    """The categories most received in the range, by kind, the most frequent first."""
    cells: Counter[tuple[str, str]] = Counter()
    totals: Counter[str] = Counter()
    for row in report.rows:
        category, kind = (v or "" for v in row.values)
        cells[(category, kind)] += row.counts.received
        totals[category] += row.counts.received
    top = sorted(totals, key=lambda c: (-totals[c], c))[:TOP_CATEGORIES]
    return Grid(
        name="categories",
        shape="bars",
        row_head="category",
        rows=tuple(top),
        columns=tuple(k.value for k in Kind),
        cells={key: n for key, n in cells.items() if key[0] in top},
        column_words="kind.",
    )


async def _backlog(session: AsyncSession, now: datetime) -> Grid:
    """Open tickets now, by how long ago the case was received, and by kind."""
    received = sa.func.coalesce(col(Ticket.clock_started_at), col(Ticket.created_at))
    bucket = sa.case(
        *((received > now - timedelta(days=days), i) for i, (_, days) in enumerate(AGE_BUCKETS)),
        else_=len(AGE_BUCKETS),
    )
    inner = (
        sa.select(bucket.label("age"), col(Ticket.kind).label("kind"))
        .where(col(Ticket.status).in_(OPEN))
        .subquery("backlog")
    )
    query = sa.select(inner.c.age, inner.c.kind, sa.func.count()).group_by(
        inner.c.age, inner.c.kind
    )
    names = [name for name, _ in AGE_BUCKETS] + [OLDEST_BUCKET]
    cells = {(names[age], kind): n for age, kind, n in (await session.exec(query)).all()}
    return Grid(
        name="backlog",
        shape="columns",
        row_head="age",
        rows=tuple(names),
        columns=tuple(k.value for k in Kind),
        cells=cells,
        row_words="dash.age.",
        column_words="kind.",
    )


async def _attainment(session: AsyncSession, starts_at: datetime, ends_at: datetime) -> Grid:
    """Of the tickets decided in the range, by team (the queue they were in), how many met
    their resolution clock and how many breached it; the worst team first."""
    decided_at = sa.func.coalesce(col(Ticket.resolved_at), col(Ticket.closed_at))
    states = (ClockState.met.value, ClockState.breached.value)
    query = (
        sa.select(col(Ticket.queue), col(SlaClock.state), sa.func.count())
        .join(SlaClock, col(SlaClock.ticket_id) == col(Ticket.id))
        .where(col(SlaClock.name) == RESOLUTION, col(SlaClock.state).in_(states))
        .where(col(Ticket.status).in_(DECIDED))
        .where(decided_at >= starts_at, decided_at < ends_at)
        .group_by(col(Ticket.queue), col(SlaClock.state))
    )
    cells = {(team or "", state): n for team, state, n in (await session.exec(query)).all()}
    teams = {team for team, _ in cells}

    def worst_first(team: str) -> tuple[float, int, str]:
        met, breached = cells.get((team, "met"), 0), cells.get((team, "breached"), 0)
        return met / (met + breached), -(met + breached), team

    return Grid(
        name="attainment",
        shape="bars",
        row_head="team",
        rows=tuple(sorted(teams, key=worst_first)),
        columns=states,
        cells=cells,
        column_words="clock.",
        colours=(charts.GOOD, charts.BAD),
        share_of="met",
    )


# --- the dashboard ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Range:
    """The days the dashboard covers (both included, in the reporting time zone) and the
    length of each column."""

    first: date
    last: date
    grouping: Grouping

    def query_string(self, **extra: str) -> str:
        values = {"from": self.first.isoformat(), "to": self.last.isoformat()}
        return urlencode(values | {"group": self.grouping.value} | extra)


class RangeError(ValueError):
    """A range the dashboard cannot show; the message is a word key."""


def default_range(today: date) -> Range:
    return Range(today - timedelta(days=DEFAULT_DAYS - 1), today, Grouping.day)


def parse_range(params: Mapping[str, str], today: date, zone: ZoneInfo) -> Range:
    """The range asked for, by default the last thirty days by day."""
    default = default_range(today)
    try:
        first = date.fromisoformat(params["from"]) if params.get("from") else default.first
        last = date.fromisoformat(params["to"]) if params.get("to") else default.last
    except ValueError:
        raise RangeError("dash.error.date") from None
    group = params.get("group") or default.grouping.value
    if group not in {g.value for g in GROUPINGS}:
        raise RangeError("dash.error.group")
    wanted = Range(first, last, Grouping(group))
    if first > last:
        raise RangeError("dash.error.order")
    try:
        count = len(periods(first, last, wanted.grouping, zone))
    except ReportError:
        count = MAX_PERIODS_SHOWN + 1
    if count > MAX_PERIODS_SHOWN:
        raise RangeError("dash.error.long")
    return wanted


async def _report(
    session: AsyncSession, hub: Hub, span: Range, grouping: Grouping, dims: tuple[Dimension, ...]
) -> StatisticsReport:
    config = hub.settings.reports
    request = StatisticsRequest(
        first=span.first,
        last=span.last,
        grouping=grouping,
        timezone=config.timezone,
        dimensions=dims,
        labels=config.code_labels,
    )
    return await ticket_statistics(session, request, now=hub.clock.now())


def _bounds(span: Range, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The range as instants: local midnight of the first day to that after the last."""
    days = periods(span.first, span.last, span.grouping, zone)
    return days[0].starts_at, days[-1].ends_at


Figure = Callable[[AsyncSession, Hub, Range], Awaitable[Grid]]


async def _volume_by_channel(session: AsyncSession, hub: Hub, span: Range) -> Grid:
    report = await _report(session, hub, span, span.grouping, (Dimension.channel,))
    return _volume(report, Dimension.channel, "volume_channel")


async def _volume_by_kind(session: AsyncSession, hub: Hub, span: Range) -> Grid:
    report = await _report(session, hub, span, span.grouping, (Dimension.kind,))
    return _volume(report, Dimension.kind, "volume_kind")


async def _open_backlog(session: AsyncSession, hub: Hub, span: Range) -> Grid:
    return await _backlog(session, hub.clock.now())


async def _team_attainment(session: AsyncSession, hub: Hub, span: Range) -> Grid:
    zone = ZoneInfo(hub.settings.reports.timezone)
    return await _attainment(session, *_bounds(span, zone))


async def _top_categories(session: AsyncSession, hub: Hub, span: Range) -> Grid:
    # Summed over the whole range: quarters make fewer rows than the range's own periods.
    dims = (Dimension.category, Dimension.kind)
    return _categories(await _report(session, hub, span, Grouping.quarter, dims))


FIGURES: dict[str, Figure] = {
    "volume_channel": _volume_by_channel,
    "volume_kind": _volume_by_kind,
    "backlog": _open_backlog,
    "attainment": _team_attainment,
    "categories": _top_categories,
}
"""The dashboard's figures, in the order the page shows them, by the name of their CSV."""


async def figures_for(hub: Hub, span: Range, only: str | None = None) -> dict[str, Grid]:
    """The figures, or only the one named, counted in one read-only session."""
    names = [only] if only else list(FIGURES)
    async with hub.reads() as session:
        return {name: await FIGURES[name](session, hub, span) for name in names}


def today_in(hub: Hub) -> tuple[date, ZoneInfo]:
    zone = ZoneInfo(hub.settings.reports.timezone)
    return hub.clock.now().astimezone(zone).date(), zone
