"""Business time: working periods per weekday, dated holidays and make-up working days (调休).

A regulator's or a bank's clock often counts only working hours: a complaint answered "within
two working days" received on a Friday evening before a holiday week is due long after two
calendar days. ``BusinessCalendar`` turns such durations into instants and back:

* ``add(start, duration)`` is the moment ``duration`` of business time has run after
  ``start``. A start outside working time counts from the next period's start; a result that
  lands exactly on a period's end is that end (09:00 + 3 h with 09:00-12:00 is 12:00, not the
  afternoon's 13:30).
* ``elapsed(a, b)`` is the business time between two instants (negative when ``b < a``), so
  ``elapsed(s, add(s, d)) == d`` for every ``d >= 0``.

``CalendarHours`` has the same interface with every instant counting; clocks hold either as a
``TimeBasis`` and never ask which.

Periods are local wall-clock times in the calendar's zone, measured in real elapsed time. In a
zone with daylight saving time this matters only for a boundary inside the hour the clocks
skip or repeat: a boundary in the skipped hour is the moment the clocks jump, one in the
repeated hour is its first occurrence. A period of 00:00-24:00 is therefore 23 h on the day
clocks go forward and 25 h on the day they go back.

The cost of ``add`` and ``elapsed`` grows with the calendar days spanned (a day's periods are
computed once and cached), never with the duration's minutes or the number of holidays: 60
working days is about 85 small steps.

The calendar knows no official holidays: the State Council publishes each year's holidays and
make-up days late in the previous year, and the operator's configuration carries them
(``BusinessCalendar.from_dict``; an example is in docs/operators.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any, Protocol, runtime_checkable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Weekday keys as the configuration spells them, in ``date.weekday()`` order."""

DEFAULT_TIMEZONE = "Asia/Shanghai"
_DAY_SECONDS = 24 * 3600
_CACHE_LIMIT = 4096
_ZERO = timedelta(0)
_PERIOD = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*[-–]\s*(\d{1,2}):(\d{2})\s*$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAY_NAMES = {name: i for names in (WEEKDAYS, _FULL_NAMES) for i, name in enumerate(names)}
_CONFIG_KEYS = frozenset({"timezone", "periods", "holidays", "workdays", "workday_periods"})


class CalendarConfigError(ValueError):
    """A calendar definition that cannot be used; the message names every bad entry."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("invalid business calendar: " + "; ".join(problems))


@runtime_checkable
class TimeBasis(Protocol):
    """What a clock needs from its notion of time: calendar hours or business hours."""

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The instant (UTC) at which ``duration`` of counted time has run after ``start``."""
        ...

    def elapsed(self, a: datetime, b: datetime) -> timedelta:
        """Counted time between ``a`` and ``b``; negative when ``b`` is before ``a``."""
        ...

    def is_working_day(self, day: date) -> bool:
        """Whether any time counts on this (local) date."""
        ...


def _require_aware(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got the naive {value.isoformat()}")
    return value.astimezone(UTC)


def _require_duration(duration: timedelta) -> None:
    if not isinstance(duration, timedelta):
        raise TypeError(f"duration must be a timedelta, not {type(duration).__name__}")
    if duration < _ZERO:
        raise ValueError(f"duration must not be negative, got {duration}")


class CalendarHours:
    """Every instant counts: a 72-hour clock is due 72 real hours later.

    Arithmetic is done in UTC: adding to an aware datetime in a zone with daylight saving
    time would otherwise add wall-clock hours (Python's rule for same-zone arithmetic).
    """

    def add(self, start: datetime, duration: timedelta) -> datetime:
        _require_duration(duration)
        return _require_aware(start, "start") + duration

    def elapsed(self, a: datetime, b: datetime) -> timedelta:
        return _require_aware(b, "b") - _require_aware(a, "a")

    def is_working_day(self, day: date) -> bool:
        return True

    def __repr__(self) -> str:
        return "CalendarHours()"


@dataclass(frozen=True, slots=True, order=True)
class Period:
    """A working period of a day: ``start`` and ``end`` in seconds after local midnight.

    ``end`` may be 86400 (24:00), so a period can run to the end of the day; a period that
    crosses midnight is two periods, one on each day.
    """

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < _DAY_SECONDS:
            raise ValueError(f"a period must start between 00:00 and 23:59, not {self}")
        if not 0 < self.end <= _DAY_SECONDS:
            raise ValueError(f"a period must end between 00:01 and 24:00, not {self}")
        if self.end <= self.start:
            raise ValueError(f"a period must end after it starts, not {self}")

    @classmethod
    def parse(cls, text: str) -> Period:
        """``"09:00-12:00"`` (an en dash is accepted too); ``24:00`` only as an end."""
        if not isinstance(text, str):
            raise ValueError(f"a period is a string like '09:00-12:00', not {text!r}")
        match = _PERIOD.match(text)
        if match is None:
            raise ValueError(f"{text!r} is not a period like '09:00-12:00'")
        sh, sm, eh, em = (int(g) for g in match.groups())
        if sm > 59 or em > 59 or sh > 23 or eh > 24 or (eh == 24 and em != 0):
            raise ValueError(f"{text!r} has a time that does not exist (00:00 to 24:00)")
        try:
            return cls(sh * 3600 + sm * 60, eh * 3600 + em * 60)
        except ValueError:
            raise ValueError(f"{text!r}: a period must end after it starts") from None

    @classmethod
    def of(cls, start: time, end: time) -> Period:
        """From ``datetime.time`` values; ``time(0)`` as the end means 24:00."""
        end_seconds = end.hour * 3600 + end.minute * 60 + end.second
        return cls(
            start.hour * 3600 + start.minute * 60 + start.second, end_seconds or _DAY_SECONDS
        )

    @property
    def duration(self) -> timedelta:
        """The nominal length, on a day without a clock change."""
        return timedelta(seconds=self.end - self.start)

    def __str__(self) -> str:
        return f"{_clock_text(self.start)}-{_clock_text(self.end)}"


def _clock_text(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}" + (f":{secs:02d}" if secs else "")


PeriodLike = Period | str | tuple[time, time]


class BusinessCalendar:
    """Working periods per weekday, holidays and make-up working days, in one time zone.

    ``week`` maps a weekday (``"mon"`` … ``"sun"`` or 0-6) to its periods; a weekday left out
    has none. A ``holiday`` has no working time whatever its weekday. A ``workday`` (调休) is a
    working day whatever its weekday: it keeps its weekday's periods if it has any (a
    weekday named as a workday changes nothing), else it gets ``workday_periods``, by default
    Monday's.

    Instances are immutable and safe to share; each caches the periods of the days it has
    looked at.
    """

    __slots__ = (
        "_cache",
        "_holidays",
        "_last_exception",
        "_week",
        "_workday_periods",
        "_workdays",
        "timezone",
    )

    def __init__(
        self,
        week: Mapping[str | int, Iterable[PeriodLike]],
        *,
        timezone: str | ZoneInfo = DEFAULT_TIMEZONE,
        holidays: Iterable[date | str] = (),
        workdays: Iterable[date | str] = (),
        workday_periods: Iterable[PeriodLike] | None = None,
    ) -> None:
        problems: list[str] = []
        self.timezone: ZoneInfo = _zone(timezone, problems)
        days: list[tuple[Period, ...]] = [() for _ in WEEKDAYS]
        for key, periods in week.items():
            index = _weekday_index(key)
            if index is None:
                problems.append(f"periods.{key}: unknown weekday (use {', '.join(WEEKDAYS)})")
                continue
            days[index] = _periods(f"periods.{WEEKDAYS[index]}", periods, problems)
        self._week: tuple[tuple[Period, ...], ...] = tuple(days)
        self._workday_periods: tuple[Period, ...] = (
            _periods("workday_periods", workday_periods, problems)
            if workday_periods is not None
            else self._week[0]
        )
        self._holidays = frozenset(_dates("holidays", holidays, problems))
        self._workdays = frozenset(_dates("workdays", workdays, problems))
        for both in sorted(self._holidays & self._workdays):
            problems.append(f"{both.isoformat()} is both a holiday and a workday")
        for day in sorted(self._workdays):
            if not self._week[day.weekday()] and not self._workday_periods:
                problems.append(
                    f"workdays: {day.isoformat()} is a {WEEKDAYS[day.weekday()]}, which has no "
                    "periods, and there are no workday_periods (nor Monday periods) to give it"
                )
        if not any(self._week) and not self._workdays:
            problems.append("periods: no weekday has a working period")
        if problems:
            raise CalendarConfigError(problems)
        self._last_exception = max(self._holidays | self._workdays, default=date.min)
        self._cache: dict[date, tuple[tuple[datetime, datetime], ...]] = {}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BusinessCalendar:
        """Build from plain data, as a TOML table gives it::

            timezone = "Asia/Shanghai"
            holidays = ["2026-10-01", "2026-10-02"]      # TOML dates work too
            workdays = ["2026-09-27"]                      # 调休: a weekend day worked
            workday_periods = ["09:00-12:00", "13:30-17:30"]  # optional; default Monday's
            [periods]
            mon = ["09:00-12:00", "13:30-17:30"]
            ...

        Unknown keys are refused, so a typo does not silently leave the calendar empty.
        """
        if not isinstance(data, Mapping):
            raise CalendarConfigError([f"a calendar is a table, not {type(data).__name__}"])
        problems = [
            f"{key}: unknown key (known: {', '.join(sorted(_CONFIG_KEYS))})"
            for key in data
            if key not in _CONFIG_KEYS
        ]
        periods = data.get("periods")
        if not isinstance(periods, Mapping):
            problems.append(
                "periods: required, a table of weekday = ['09:00-12:00', …]"
                if periods is None
                else f"periods: must be a table of weekday = [periods], not {periods!r}"
            )
            periods = {}
        timezone = data.get("timezone", DEFAULT_TIMEZONE)
        if not isinstance(timezone, str):
            problems.append(f"timezone: must be a zone name like 'Asia/Shanghai', not {timezone!r}")
            timezone = DEFAULT_TIMEZONE
        lists: dict[str, Any] = {}
        for key in ("holidays", "workdays", "workday_periods"):
            value = data.get(key, None if key == "workday_periods" else [])
            if value is not None and not isinstance(value, list | tuple):
                problems.append(f"{key}: must be a list, not {value!r}")
                value = None if key == "workday_periods" else []
            lists[key] = value
        if problems:
            raise CalendarConfigError(problems)
        return cls(
            periods,
            timezone=timezone,
            holidays=lists["holidays"],
            workdays=lists["workdays"],
            workday_periods=lists["workday_periods"],
        )

    # --- questions about days ----------------------------------------------------------------

    def periods_on(self, day: date) -> tuple[Period, ...]:
        """The working periods of a local date, holidays and make-up days applied."""
        if day in self._holidays:
            return ()
        periods = self._week[day.weekday()]
        if day in self._workdays and not periods:
            return self._workday_periods
        return periods

    def is_working_day(self, day: date) -> bool:
        if isinstance(day, datetime):
            raise TypeError("is_working_day takes a date; use .astimezone(zone).date() first")
        return bool(self.periods_on(day))

    @property
    def holidays(self) -> frozenset[date]:
        return self._holidays

    @property
    def workdays(self) -> frozenset[date]:
        return self._workdays

    # --- arithmetic --------------------------------------------------------------------------

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The instant (UTC) at which ``duration`` of business time has run after ``start``.

        A zero duration gives ``start`` itself: nothing has to run. Otherwise the result is
        always inside a period or exactly at its end.
        """
        _require_duration(duration)
        now = _require_aware(start, "start")
        if not duration:
            return now
        remaining = duration
        day = now.astimezone(self.timezone).date()
        while True:
            for begin, end in self._intervals(day):
                if end <= now:
                    continue
                begin = max(begin, now)
                span = end - begin
                if remaining <= span:
                    return begin + remaining
                remaining -= span
            day = self._next_working_day(day)

    def elapsed(self, a: datetime, b: datetime) -> timedelta:
        """Business time between two instants; ``-elapsed(b, a)`` when ``b`` comes first."""
        lo, hi = _require_aware(a, "a"), _require_aware(b, "b")
        if hi < lo:
            return -self.elapsed(hi, lo)
        total = _ZERO
        day = lo.astimezone(self.timezone).date()
        last = hi.astimezone(self.timezone).date()
        while day <= last:
            for begin, end in self._intervals(day):
                overlap = min(end, hi) - max(begin, lo)
                if overlap > _ZERO:
                    total += overlap
            if day == date.max:
                break
            day += timedelta(days=1)
        return total

    def next_working_moment(self, at: datetime) -> datetime:
        """``at`` itself inside working time, else the next period's start (UTC)."""
        now = _require_aware(at, "at")
        day = now.astimezone(self.timezone).date()
        while True:
            for begin, end in self._intervals(day):
                if end > now:
                    return max(begin, now)
            day = self._next_working_day(day)

    # --- internals ---------------------------------------------------------------------------

    def _next_working_day(self, day: date) -> date:
        """The next date with working time; a calendar whose weeks are empty past its last
        make-up day has none, which is an error rather than an endless loop."""
        while True:
            if day >= self._last_exception and not any(self._week):
                raise ValueError(
                    f"the calendar has no working time after {day.isoformat()}: no weekday has "
                    "periods and no later workday is listed"
                )
            day += timedelta(days=1)
            if self.periods_on(day):
                return day

    def _intervals(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """The day's periods as UTC intervals, in order, none empty, none overlapping."""
        cached = self._cache.get(day)
        if cached is not None:
            return cached
        midnight = datetime.combine(day, time())
        intervals: list[tuple[datetime, datetime]] = []
        for period in self.periods_on(day):
            begin = _to_utc(midnight + timedelta(seconds=period.start), self.timezone)
            end = _to_utc(midnight + timedelta(seconds=period.end), self.timezone)
            if intervals and begin < intervals[-1][1]:
                begin = intervals[-1][1]
            if end > begin:
                intervals.append((begin, end))
        result = tuple(intervals)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[day] = result
        return result

    def __repr__(self) -> str:
        week = ", ".join(
            f"{WEEKDAYS[i]}={[str(p) for p in periods]}"
            for i, periods in enumerate(self._week)
            if periods
        )
        return (
            f"BusinessCalendar({self.timezone.key}: {week}; {len(self._holidays)} holidays, "
            f"{len(self._workdays)} workdays)"
        )


def _to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    """A naive local wall-clock time as a UTC instant.

    An ambiguous time (the hour repeated when clocks go back) is its first occurrence. A time
    that does not exist (the hour skipped when clocks go forward) is the moment of the jump:
    the first instant whose wall-clock reading is not earlier than it.
    """
    instant = local.replace(tzinfo=zone).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == local:
        return instant
    # In a gap: fold=1 reads it with the offset after the jump, which lands before the jump;
    # the jump lies between the two readings. Offsets change on whole seconds.
    before = int(local.replace(tzinfo=zone, fold=1).timestamp())
    after = int(instant.timestamp())
    if before >= after:  # not a forward jump after all; keep the fold=0 reading
        return instant
    while after - before > 1:
        middle = (before + after) // 2
        if datetime.fromtimestamp(middle, zone).replace(tzinfo=None) >= local:
            after = middle
        else:
            before = middle
    return datetime.fromtimestamp(after, UTC)


def _zone(value: str | ZoneInfo, problems: list[str]) -> ZoneInfo:
    if isinstance(value, ZoneInfo):
        return value
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        problems.append(f"timezone: unknown time zone {value!r} (e.g. 'Asia/Shanghai')")
        return ZoneInfo("UTC")


def _weekday_index(key: str | int) -> int | None:
    if isinstance(key, bool):
        return None
    if isinstance(key, int):
        return key if 0 <= key <= 6 else None
    if isinstance(key, str):
        return _WEEKDAY_NAMES.get(key.strip().lower())
    return None


def _periods(
    path: str, items: Iterable[PeriodLike] | None, problems: list[str]
) -> tuple[Period, ...]:
    if isinstance(items, str) or not isinstance(items, Iterable):
        problems.append(f"{path}: must be a list of periods like ['09:00-12:00'], not {items!r}")
        return ()
    parsed: list[tuple[Period, str]] = []
    for index, item in enumerate(items):
        where = f"{path}[{index}]"
        try:
            if isinstance(item, Period):
                period = item
            elif isinstance(item, tuple) and len(item) == 2:
                period = Period.of(*item)
            else:
                period = Period.parse(item)  # type: ignore[arg-type]
        except (ValueError, TypeError) as exc:
            problems.append(f"{where}: {exc}")
            continue
        parsed.append((period, where))
    parsed.sort()
    for (first, first_at), (second, second_at) in pairwise(parsed):
        if second.start < first.end:
            problems.append(f"{first_at} {first} and {second_at} {second} overlap")
    return tuple(period for period, _ in parsed)


def _dates(path: str, items: Iterable[date | str], problems: list[str]) -> list[date]:
    found: list[date] = []
    for index, item in enumerate(items):
        if isinstance(item, datetime):
            problems.append(f"{path}[{index}]: {item!r} is a date and time; give the date only")
        elif isinstance(item, date):
            found.append(item)
        elif isinstance(item, str) and _DATE.match(item.strip()):
            try:
                found.append(date.fromisoformat(item.strip()))
            except ValueError:
                problems.append(f"{path}[{index}]: {item!r} is not a real date")
        else:
            problems.append(f"{path}[{index}]: {item!r} is not a date (YYYY-MM-DD)")
    return found


__all__ = [
    "DEFAULT_TIMEZONE",
    "WEEKDAYS",
    "BusinessCalendar",
    "CalendarConfigError",
    "CalendarHours",
    "Period",
    "TimeBasis",
]
