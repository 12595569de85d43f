"""Due times for a new ticket.

This is the built-in ``cn-service-24-48-72`` template (consultation resolved in 24 h; complaint
first response in 48 h, resolution in 72 h), in calendar hours. Policies as data, business
calendars and the regulator's templates come with the compliance work.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ticket_core.models import Kind


@dataclass(frozen=True, slots=True)
class Targets:
    policy: str
    first_response: timedelta | None
    resolution: timedelta | None


DEFAULT_POLICY = "cn-service-24-48-72"

_TARGETS: dict[Kind, Targets] = {
    Kind.consultation: Targets(DEFAULT_POLICY, None, timedelta(hours=24)),
    Kind.complaint: Targets(DEFAULT_POLICY, timedelta(hours=48), timedelta(hours=72)),
    Kind.suggestion: Targets(DEFAULT_POLICY, None, timedelta(hours=72)),
}


def targets_for(kind: Kind) -> Targets:
    return _TARGETS[kind]


def due_times(kind: Kind, received_at: datetime) -> tuple[str, datetime | None, datetime | None]:
    t = targets_for(kind)
    first = received_at + t.first_response if t.first_response else None
    resolution = received_at + t.resolution if t.resolution else None
    return t.policy, first, resolution
