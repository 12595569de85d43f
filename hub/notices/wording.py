"""How ticket facts read to a customer: kinds, outcomes, statuses and times, per language.

Customers never see the internal lifecycle: ``pending_internal`` and ``under_review`` are
"being handled" to them, and an outcome is shown only once it is final, never while a
reviewer may still change it. Times are shown in the customer's zone (Beijing time by
default), because a due time in UTC is a due time misread.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from ticket_core import Kind, Outcome, Status

DEFAULT_LANGUAGE = "zh-CN"
_TAG = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8}){0,3}$")

KINDS: Mapping[str, Mapping[str, str]] = {
    "zh-CN": {Kind.consultation: "咨询", Kind.complaint: "投诉", Kind.suggestion: "建议"},
    "en": {
        Kind.consultation: "enquiry",
        Kind.complaint: "complaint",
        Kind.suggestion: "suggestion",
    },
}

OUTCOMES: Mapping[str, Mapping[str, str]] = {
    "zh-CN": {
        Outcome.resolved: "已解决",
        Outcome.partially_resolved: "部分解决",
        Outcome.rejected: "经核实，未能支持您的诉求",
        Outcome.withdrawn: "已撤回",
    },
    "en": {
        Outcome.resolved: "resolved",
        Outcome.partially_resolved: "partly resolved",
        Outcome.rejected: "not upheld after review",
        Outcome.withdrawn: "withdrawn",
    },
}

PUBLIC_STATUSES: Mapping[Status, str] = {
    Status.new: "received",
    Status.open: "received",
    Status.in_progress: "in_progress",
    Status.pending_internal: "in_progress",
    Status.under_review: "in_progress",
    Status.reopened: "in_progress",
    Status.pending_customer: "waiting_for_customer",
    Status.resolved: "resolved",
    Status.closed: "closed",
}
"""The lifecycle as a customer sees it; internal states fold into ``in_progress``."""

STATUS_TEXTS: Mapping[str, Mapping[str, str]] = {
    "zh-CN": {
        "received": "已受理",
        "in_progress": "处理中",
        "waiting_for_customer": "待您补充信息",
        "resolved": "已办结",
        "closed": "已关闭",
    },
    "en": {
        "received": "received",
        "in_progress": "being handled",
        "waiting_for_customer": "waiting for information from you",
        "resolved": "resolved",
        "closed": "closed",
    },
}

_ZONE_NAMES: Mapping[str, Mapping[str, str]] = {
    "zh-CN": {"Asia/Shanghai": "北京时间", "Asia/Hong_Kong": "香港时间", "Asia/Macau": "澳门时间"},
    "en": {
        "Asia/Shanghai": "Beijing time",
        "Asia/Hong_Kong": "Hong Kong time",
        "Asia/Macau": "Macau time",
    },
}
_WEEKDAYS = {
    "zh-CN": ("周一", "周二", "周三", "周四", "周五", "周六", "周日"),
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def language_chain(requested: str | None) -> tuple[str, ...]:
    """Languages to try for a requested tag, most specific first, ending with zh-CN.

    ``en-GB`` tries ``en-GB``, ``en``, ``zh-CN``. A tag that is not a well-formed language tag
    (it comes from a channel, so it may be anything, ``../../etc`` included) is ignored.
    """
    chain: list[str] = []
    if requested and _TAG.match(requested.strip()):
        parts = _canonical(requested.strip()).split("-")
        chain.extend("-".join(parts[:n]) for n in range(len(parts), 0, -1))
    chain.append(DEFAULT_LANGUAGE)
    return tuple(dict.fromkeys(chain))


def _canonical(tag: str) -> str:
    """``zh-hans-cn`` → ``zh-Hans-CN``: template directories are named in this case."""
    parts = tag.replace("_", "-").split("-")
    out = [parts[0].lower()]
    for part in parts[1:]:
        if len(part) == 2 and part.isalpha():
            out.append(part.upper())
        elif len(part) == 4 and part.isalpha():
            out.append(part.title())
        else:
            out.append(part.lower())
    return "-".join(out)


def pick(table: Mapping[str, Mapping[str, str]], language: str, key: str) -> str:
    """``table[lang][key]`` for the first language of the chain that has it."""
    for candidate in language_chain(language):
        words = table.get(candidate)
        if words is not None and key in words:
            return words[key]
    return key


def kind_text(kind: str, language: str) -> str:
    return pick(KINDS, language, str(kind))


def outcome_text(outcome: str, language: str) -> str:
    return pick(OUTCOMES, language, str(outcome))


def public_status(status: str) -> str:
    return PUBLIC_STATUSES[Status(status)]


def status_text(public: str, language: str) -> str:
    return pick(STATUS_TEXTS, language, public)


@dataclass(frozen=True, slots=True)
class LocalTime:
    """An instant as a customer reads it: ``{{ due_at }}`` in a template is the long form.

    ``long``: 2026年11月26日（周四）17:00（北京时间） / Thu 26 Nov 2026, 17:00 (Beijing time);
    ``short`` (for SMS): 11月26日 17:00 / 26 Nov 17:00; ``day``: the date alone; ``iso``: the
    instant with its UTC offset, for machines.
    """

    instant: datetime
    language: str
    zone: ZoneInfo

    @property
    def _local(self) -> datetime:
        return self.instant.astimezone(self.zone)

    @property
    def _zh(self) -> bool:
        return language_chain(self.language)[0].split("-")[0] != "en"

    @property
    def zone_name(self) -> str:
        named = pick(_ZONE_NAMES, "zh-CN" if self._zh else "en", self.zone.key)
        if named != self.zone.key:
            return named
        offset = self._local.strftime("%z")
        return f"UTC{offset[:3]}:{offset[3:]}"

    @property
    def long(self) -> str:
        t = self._local
        if self._zh:
            weekday = _WEEKDAYS["zh-CN"][t.weekday()]
            return f"{t.year}年{t.month}月{t.day}日（{weekday}）{t:%H:%M}（{self.zone_name}）"
        weekday = _WEEKDAYS["en"][t.weekday()]
        return f"{weekday} {t.day} {_MONTHS[t.month - 1]} {t.year}, {t:%H:%M} ({self.zone_name})"

    @property
    def short(self) -> str:
        t = self._local
        if self._zh:
            return f"{t.month}月{t.day}日 {t:%H:%M}"
        return f"{t.day} {_MONTHS[t.month - 1]} {t:%H:%M}"

    @property
    def day(self) -> str:
        t = self._local
        if self._zh:
            return f"{t.year}年{t.month}月{t.day}日"
        return f"{t.day} {_MONTHS[t.month - 1]} {t.year}"

    @property
    def iso(self) -> str:
        return self._local.isoformat()

    def __str__(self) -> str:
        return self.long


def local_time(instant: datetime, language: str, zone: ZoneInfo) -> LocalTime:
    if instant.tzinfo is None:
        raise ValueError(f"a naive datetime cannot be shown to a customer: {instant!r}")
    return LocalTime(instant.astimezone(UTC), language, zone)
