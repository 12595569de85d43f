"""The SLA policy book from config: the built-in templates, overridden and extended.

Kept apart from the scheduler so that settings can validate policies at load without
importing the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ticket_core import (
    BUILTIN_POLICIES,
    BUILTIN_RULES,
    BusinessCalendar,
    DueWarning,
    Extensions,
    Kind,
    Pause,
    Policy,
    PolicyBook,
    PolicyError,
    Rule,
    parse_duration,
)
from ticket_core.policies import CLOCK_NAMES

if TYPE_CHECKING:
    from hub.settings import PolicySettings, SlaSettings


def build_book(settings: SlaSettings) -> PolicyBook:
    """The built-in templates, overridden and extended by config; errors name the entry."""
    calendars: dict[str, BusinessCalendar] = {}
    for name, data in settings.calendars.items():
        try:
            calendars[name] = BusinessCalendar.from_dict(data)
        except ValueError as exc:
            raise PolicyError(f"sla.calendars.{name}: {exc}") from None
    policies = dict(BUILTIN_POLICIES)
    for name, given in settings.policies.items():
        policies[name] = _policy(name, given, BUILTIN_POLICIES.get(name))
    rules = BUILTIN_RULES
    if settings.rules is not None:
        rules = tuple(
            Rule(
                r.policy,
                frozenset(r.kinds),
                frozenset(r.channels),
                frozenset(r.categories),
                frozenset(r.flags),
            )
            for r in settings.rules
        )
    return PolicyBook(policies, rules, calendars)


def _policy(name: str, given: PolicySettings, base: Policy | None) -> Policy:
    where = f"sla.policies.{name}"
    if base is None and given.targets is None:
        raise PolicyError(f"{where}: a new policy needs targets")
    targets = dict(base.targets) if base is not None else {}
    if given.targets is not None:
        targets = {}
        for kind, clocks in given.targets.items():
            if kind not in Kind.__members__:
                raise PolicyError(f"{where}.targets: unknown ticket kind {kind!r}")
            for clock in clocks:
                if clock not in CLOCK_NAMES:
                    raise PolicyError(
                        f"{where}.targets.{kind}: unknown clock {clock!r}; "
                        f"clocks are {', '.join(CLOCK_NAMES)}"
                    )
            targets[Kind(kind)] = {
                clock: parse_duration(value, f"{where}.targets.{kind}.{clock}")
                for clock, value in clocks.items()
            }
    warnings = base.warnings if base is not None else ()
    if given.warnings is not None:
        warnings = tuple(DueWarning.parse(w, f"{where}.warnings") for w in given.warnings)
    pauses = base.pauses if base is not None else ()
    if given.pauses is not None:
        pauses = tuple(Pause.parse(p) for p in given.pauses)
    extensions = base.extensions if base is not None else None
    if given.extensions is not None or given.approval_from is not None:
        steps = (
            tuple(parse_duration(s, f"{where}.extensions") for s in given.extensions)
            if given.extensions is not None
            else (extensions.steps if extensions else ())
        )
        approval = given.approval_from or (extensions.approval_from if extensions else 2)
        extensions = Extensions(steps, approval) if steps else None
    return Policy(
        name=name,
        targets=targets,
        basis=given.basis or (base.basis if base is not None else "calendar"),
        warnings=warnings,
        pauses=pauses,
        extensions=extensions,
        description=given.description or (base.description if base is not None else ""),
    )
