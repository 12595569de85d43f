"""SLA policies as data: the clocks a ticket runs, how they count time, and which policy applies.

A ``Policy`` says, per ticket kind, how long each clock may run (first response, next
response, resolution, review), on which time basis (calendar hours or a business calendar),
when to warn, which waiting states pause the clocks, and how far the resolution clock may be
extended. A ``PolicyBook`` holds the policies, the business calendars and the rules that choose
a policy for a new ticket; the three built-in templates are overridable by name in config.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from ticket_core.calendar import BusinessCalendar, CalendarHours, TimeBasis
from ticket_core.models import Kind

FIRST_RESPONSE = "first_response"
NEXT_RESPONSE = "next_response"
RESOLUTION = "resolution"
REVIEW = "review"
CLOCK_NAMES = (FIRST_RESPONSE, NEXT_RESPONSE, RESOLUTION, REVIEW)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(d|h|m|s)\s*$")
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


class PolicyError(ValueError):
    """A policy, calendar or rule that cannot work; the message names the entry."""


def parse_duration(value: str | int | float, where: str) -> timedelta:
    """``"15d"``, ``"48h"``, ``"30m"`` or a number of seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if match is None:
            raise PolicyError(f"{where}: {value!r} is not a duration like '15d', '48h' or '30m'")
        seconds = float(match[1]) * _UNITS[match[2]]
    if seconds <= 0:
        raise PolicyError(f"{where}: a duration must be positive, not {value!r}")
    return timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class DueWarning:
    """Warn once a clock has used ``fraction`` of its time, or ``before`` its due time."""

    label: str
    fraction: float | None = None
    before: timedelta | None = None

    @classmethod
    def parse(cls, value: str, where: str) -> DueWarning:
        text = str(value).strip()
        if text.endswith("%"):
            try:
                percent = float(text[:-1])
            except ValueError:
                raise PolicyError(f"{where}: {value!r} is not a percentage like '80%'") from None
            if not 0 < percent < 100:
                raise PolicyError(f"{where}: {value!r} must be between 0% and 100%")
            return cls(text, fraction=percent / 100)
        return cls(text, before=parse_duration(text, where))


@dataclass(frozen=True, slots=True)
class Extensions:
    """How far the resolution clock may be extended: one step per extension, in order.

    Every extension needs a recorded reason and tells the customer; from the
    ``approval_from``-th one on, a supervisor must approve it. No extension beyond the steps.
    """

    steps: tuple[timedelta, ...]
    approval_from: int = 2

    @property
    def cap(self) -> timedelta:
        return sum(self.steps, timedelta())


@dataclass(frozen=True, slots=True)
class Pause:
    """A waiting state that stops a policy's clocks: a status, optionally only for a reason
    (``pending_internal`` for ``external_appraisal``)."""

    status: str
    reason: str | None = None

    @classmethod
    def parse(cls, value: str) -> Pause:
        status, _, reason = value.partition(":")
        return cls(status.strip(), reason.strip() or None)

    def matches(self, status: str, reason: str | None) -> bool:
        return self.status == status and (self.reason is None or self.reason == reason)


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    targets: Mapping[Kind, Mapping[str, timedelta]]
    basis: str = "calendar"
    """``calendar`` (every hour counts) or the name of a business calendar."""
    warnings: tuple[DueWarning, ...] = ()
    pauses: tuple[Pause, ...] = ()
    extensions: Extensions | None = None
    review_required: bool = True
    """Whether a complaint's unfavourable outcome must pass review (every built-in does)."""
    description: str = ""

    def targets_for(self, kind: Kind) -> Mapping[str, timedelta]:
        return self.targets.get(kind, {})

    def pauses_on(self, status: str, reason: str | None) -> bool:
        return any(p.matches(status, reason) for p in self.pauses)


@dataclass(frozen=True, slots=True)
class Rule:
    """Chooses ``policy`` for a new ticket when every given condition holds."""

    policy: str
    kinds: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    flags: frozenset[str] = frozenset()

    def matches(self, kind: str, channel: str, category: str | None, flags: Iterable[str]) -> bool:
        return (
            (not self.kinds or kind in self.kinds)
            and (not self.channels or channel in self.channels)
            and (not self.categories or (category or "") in self.categories)
            and self.flags <= set(flags)
        )


DEFAULT_WARNINGS = (DueWarning("80%", fraction=0.8), DueWarning("1h", before=timedelta(hours=1)))
_DAY = timedelta(days=1)
_HOUR = timedelta(hours=1)

BUILTIN_POLICIES: dict[str, Policy] = {
    policy.name: policy
    for policy in (
        Policy(
            name="cn-service-24-48-72",
            description="bank service standard: consultation resolved in 24 h; complaint "
            "first response in 48 h, resolved in 72 h; the customer's reply due in 24 h",
            targets={
                Kind.consultation: {RESOLUTION: 24 * _HOUR, NEXT_RESPONSE: 24 * _HOUR},
                Kind.complaint: {
                    FIRST_RESPONSE: 48 * _HOUR,
                    NEXT_RESPONSE: 24 * _HOUR,
                    RESOLUTION: 72 * _HOUR,
                },
                Kind.suggestion: {RESOLUTION: 72 * _HOUR},
            },
            warnings=DEFAULT_WARNINGS,
            pauses=(Pause("pending_customer"),),
        ),
        Policy(
            name="cn-nfra-order-3",
            description="CBIRC Order 2020 No.3: decided within 15 days of receipt; extendable "
            "to 30 with a reason and notice, a further 30 (60 in all) with senior approval; "
            "external appraisal does not count",
            targets={
                Kind.complaint: {FIRST_RESPONSE: 48 * _HOUR, RESOLUTION: 15 * _DAY},
                Kind.consultation: {RESOLUTION: 15 * _DAY},
                Kind.suggestion: {RESOLUTION: 15 * _DAY},
            },
            warnings=(DueWarning("80%", fraction=0.8), DueWarning("1d", before=_DAY)),
            pauses=(Pause("pending_internal", "external_appraisal"),),
            extensions=Extensions((15 * _DAY, 30 * _DAY), approval_from=2),
        ),
        Policy(
            name="rbi-internal-ombudsman",
            description="RBI Integrated Ombudsman: partial and rejected decisions pass the "
            "internal ombudsman, escalated by day 20; final decision by day 30",
            targets={
                Kind.complaint: {REVIEW: 20 * _DAY, RESOLUTION: 30 * _DAY},
                Kind.consultation: {RESOLUTION: 30 * _DAY},
                Kind.suggestion: {RESOLUTION: 30 * _DAY},
            },
            warnings=(DueWarning("80%", fraction=0.8), DueWarning("1d", before=_DAY)),
        ),
    )
}

BUILTIN_RULES = (
    Rule("cn-nfra-order-3", flags=frozenset({"regulator_transfer"})),
    Rule("cn-service-24-48-72"),
)


@dataclass(frozen=True, slots=True)
class PolicyBook:
    """Everything the core needs to start and run clocks; built from config by the hub."""

    policies: Mapping[str, Policy] = field(default_factory=lambda: dict(BUILTIN_POLICIES))
    rules: tuple[Rule, ...] = BUILTIN_RULES
    calendars: Mapping[str, BusinessCalendar] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for rule in self.rules:
            if rule.policy not in self.policies:
                raise PolicyError(f"rule names policy {rule.policy!r}, which is not defined")
        for policy in self.policies.values():
            if policy.basis != "calendar" and policy.basis not in self.calendars:
                raise PolicyError(
                    f"policy {policy.name!r} counts on calendar {policy.basis!r}, "
                    "which is not defined"
                )

    def choose(
        self, kind: str, channel: str, category: str | None, flags: Iterable[str]
    ) -> Policy | None:
        """The first rule's policy that fits; ``None`` leaves the ticket without clocks."""
        flags = tuple(flags)
        for rule in self.rules:
            if rule.matches(kind, channel, category, flags):
                return self.policies[rule.policy]
        return None

    def get(self, name: str) -> Policy | None:
        return self.policies.get(name)

    def basis_of(self, policy: Policy) -> TimeBasis:
        if policy.basis == "calendar":
            return CalendarHours()
        return self.calendars[policy.basis]


DEFAULT_BOOK = PolicyBook()
