"""Routing rules as data: IF conditions on a new ticket → THEN queue, priority, SLA policy, tags.

Configured as ``[[routing.rules]]`` tables, each with a ``when`` and a ``then`` table::

    [[routing.rules]]
    name = "card fraud"
    when = { kinds = ["complaint"], causes = ["unauthorised_transaction"] }
    then = { queue = "card-fraud", priority = "high", tags = ["fraud"] }

Rules are checked when the configuration loads (an error names the rule's index and field)
and evaluated in order when a ticket opens: the **first** rule whose conditions all hold
applies, and it is recorded on the ticket (audit event ``ticket.routed``). A rule's
``priority`` is a floor: it raises, never lowers, what the channel and the classifier set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ticket_core.models import Priority

KINDS = ("complaint", "suggestion", "praise", "consultation")
_ORDER = (Priority.low, Priority.normal, Priority.high, Priority.urgent)
_SENTIMENTS = ("negative", "neutral", "positive")
_LISTS = ("kinds", "categories", "causes", "channels", "segments", "flags", "urgency", "sentiment")
_NUMBERS = ("min_fraud_score", "min_amount")
_WHEN = frozenset(_LISTS + _NUMBERS)
_THEN = frozenset({"queue", "priority", "sla_policy", "tags"})
_RULE = frozenset({"name", "when", "then"})


class RoutingError(ValueError):
    """A rule that cannot work; the message names ``routing.rules[i].field``."""


@dataclass(frozen=True, slots=True)
class RouteInput:
    """What is known of a new ticket when it opens."""

    kind: str
    label: str
    channel: str
    category: str | None = None
    cause: str | None = None
    segments: frozenset[str] = frozenset()
    """The customer's tags (``vip``, ``elderly``, ...), as the channel or the CRM gave them."""
    flags: frozenset[str] = frozenset()
    urgency: frozenset[str] = frozenset()
    sentiment: str = "neutral"
    fraud_score: float | None = None
    amount: float | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    index: int
    name: str
    kinds: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    causes: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()
    segments: frozenset[str] = frozenset()
    flags: frozenset[str] = frozenset()
    urgency: frozenset[str] = frozenset()
    sentiment: frozenset[str] = frozenset()
    min_fraud_score: float | None = None
    min_amount: float | None = None
    queue: str | None = None
    priority: Priority | None = None
    sla_policy: str | None = None
    tags: tuple[str, ...] = ()

    def why(self, item: RouteInput) -> list[str] | None:
        """The conditions that held, or ``None`` when one did not."""
        held: list[str] = []

        def any_of(name: str, wanted: frozenset[str], have: Iterable[str | None]) -> bool:
            if not wanted:
                return True
            hit = sorted(wanted.intersection(h for h in have if h))
            if hit:
                held.append(f"{name} {'/'.join(hit)}")
            return bool(hit)

        ok = (
            any_of("kind", self.kinds, (item.kind, item.label))
            and any_of("category", self.categories, (item.category,))
            and any_of("cause", self.causes, (item.cause,))
            and any_of("channel", self.channels, (item.channel,))
            and any_of("segment", self.segments, item.segments)
            and any_of("urgency", self.urgency, item.urgency)
            and any_of("sentiment", self.sentiment, (item.sentiment,))
        )
        if not ok:
            return None
        if self.flags:
            if not self.flags <= item.flags:
                return None
            held.append("flags " + "/".join(sorted(self.flags)))
        if self.min_fraud_score is not None:
            if item.fraud_score is None or item.fraud_score < self.min_fraud_score:
                return None
            held.append(f"fraud score {item.fraud_score:g} ≥ {self.min_fraud_score:g}")
        if self.min_amount is not None:
            if item.amount is None or item.amount < self.min_amount:
                return None
            held.append(f"amount {item.amount:g} ≥ {self.min_amount:g}")
        return held or ["always"]


@dataclass(frozen=True, slots=True)
class RouteDecision:
    rule: Rule
    why: tuple[str, ...]

    def apply_priority(self, priority: Priority) -> Priority:
        if self.rule.priority is None:
            return priority
        return max(priority, self.rule.priority, key=_ORDER.index)

    def as_record(self) -> dict[str, Any]:
        rule = self.rule
        return {
            "rule": rule.index,
            "name": rule.name,
            "why": list(self.why),
            "queue": rule.queue,
            "priority": rule.priority.value if rule.priority else None,
            "sla_policy": rule.sla_policy,
            "tags": list(rule.tags),
        }


def _strings(value: Any, where: str, allowed: Sequence[str] | None = None) -> frozenset[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise RoutingError(f"{where}: a list of names is needed, not {value!r}")
    if allowed is not None:
        wrong = [v for v in value if v not in allowed]
        if wrong:
            raise RoutingError(
                f"{where}: {', '.join(map(repr, wrong))} not one of {', '.join(allowed)}"
            )
    return frozenset(v.strip() for v in value)


def _number(value: Any, where: str, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise RoutingError(f"{where}: a number ≥ 0 is needed, not {value!r}")
    if high is not None and value > high:
        raise RoutingError(f"{where}: at most {high:g}, not {value!r}")
    return float(value)


def parse_rule(index: int, data: Any) -> Rule:
    where = f"routing.rules[{index}]"
    if not isinstance(data, Mapping):
        raise RoutingError(f"{where}: a table with `when` and `then` is needed")
    unknown = sorted(set(data) - _RULE)
    if unknown:
        raise RoutingError(f"{where}.{unknown[0]}: unknown field; a rule has name, when, then")
    when, then = data.get("when", {}), data.get("then")
    if not isinstance(when, Mapping):
        raise RoutingError(f"{where}.when: a table of conditions is needed")
    if not isinstance(then, Mapping) or not then:
        raise RoutingError(
            f"{where}.then: a table with queue, priority, sla_policy or tags is needed"
        )
    for key in when:
        if key not in _WHEN:
            raise RoutingError(
                f"{where}.when.{key}: unknown condition; one of {', '.join(sorted(_WHEN))}"
            )
    for key in then:
        if key not in _THEN:
            raise RoutingError(
                f"{where}.then.{key}: unknown action; one of {', '.join(sorted(_THEN))}"
            )
    lists: dict[str, frozenset[str]] = {}
    for key in _LISTS:
        if key in when:
            allowed = KINDS if key == "kinds" else _SENTIMENTS if key == "sentiment" else None
            lists[key] = _strings(when[key], f"{where}.when.{key}", allowed)
    priority = then.get("priority")
    if priority is not None and priority not in Priority.__members__:
        raise RoutingError(f"{where}.then.priority: {priority!r} not one of {', '.join(Priority)}")
    for key in ("queue", "sla_policy"):
        value = then.get(key)
        if value is not None and (not isinstance(value, str) or not 0 < len(value) <= 80):
            raise RoutingError(f"{where}.then.{key}: a name of 1 to 80 characters is needed")
    name = data.get("name", f"rule {index}")
    if not isinstance(name, str) or not name.strip():
        raise RoutingError(f"{where}.name: a non-empty name is needed")
    return Rule(
        index=index,
        name=name.strip(),
        min_fraud_score=(
            _number(when["min_fraud_score"], f"{where}.when.min_fraud_score", 1.0)
            if "min_fraud_score" in when
            else None
        ),
        min_amount=(
            _number(when["min_amount"], f"{where}.when.min_amount")
            if "min_amount" in when
            else None
        ),
        queue=then.get("queue"),
        priority=Priority(priority) if priority else None,
        sla_policy=then.get("sla_policy"),
        tags=tuple(sorted(_strings(then["tags"], f"{where}.then.tags"))) if "tags" in then else (),
        **lists,
    )


@dataclass(frozen=True, slots=True)
class Router:
    rules: tuple[Rule, ...] = field(default_factory=tuple)

    @classmethod
    def parse(cls, rules: Sequence[Any]) -> Router:
        return cls(tuple(parse_rule(i, data) for i, data in enumerate(rules)))

    def check_policies(self, known: Iterable[str]) -> None:
        names = set(known)
        for rule in self.rules:
            if rule.sla_policy is not None and rule.sla_policy not in names:
                raise RoutingError(
                    f"routing.rules[{rule.index}].then.sla_policy: {rule.sla_policy!r} is not "
                    f"a defined SLA policy ({', '.join(sorted(names))})"
                )

    def route(self, item: RouteInput) -> RouteDecision | None:
        """The first rule that fits, with the conditions that made it fit."""
        for rule in self.rules:
            why = rule.why(item)
            if why is not None:
                return RouteDecision(rule, tuple(why))
        return None


NO_ROUTES = Router()
