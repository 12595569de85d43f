"""Assignment within a queue: which agent takes which ticket (pure decisions, no storage yet).

An agent fits a ticket when present, below capacity, in the ticket's queue, with every skill
the ticket needs (its category) and its language. Among those who fit: the agent who handled
the customer's last ticket (sticky) when they fit, else the least loaded (ties: the one who
waited longest since their last assignment, which is round-robin among equals), or strict
round-robin when asked. The backlog is served VIP and vulnerable first, then by priority,
then oldest first. When an agent goes away, their open tickets are offered again.

Every choice says why, for the ``ticket.assigned`` audit event the caller records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from ticket_core.models import Priority

_PRIORITY_RANK = {Priority.urgent: 0, Priority.high: 1, Priority.normal: 2, Priority.low: 3}


class Presence(StrEnum):
    available = "available"
    busy = "busy"  # present but taking nothing new
    away = "away"


class Strategy(StrEnum):
    least_loaded = "least_loaded"
    round_robin = "round_robin"


@dataclass(frozen=True, slots=True)
class Agent:
    name: str
    queues: frozenset[str]
    skills: frozenset[str] = frozenset()
    languages: frozenset[str] = frozenset({"zh-CN"})
    capacity: int = 10
    presence: Presence = Presence.available


@dataclass(frozen=True, slots=True)
class Work:
    """A ticket waiting for an agent, as assignment sees it."""

    number: str
    queue: str
    created_at: datetime
    customer_id: int
    priority: Priority = Priority.normal
    language: str = "zh-CN"
    skills: frozenset[str] = frozenset()
    vip: bool = False
    vulnerable: bool = False


@dataclass(frozen=True, slots=True)
class Assignment:
    number: str
    agent: str | None
    why: str


@dataclass
class Desk:
    """The agents of a queue and what they hold now."""

    agents: Sequence[Agent]
    load: dict[str, int] = field(default_factory=dict)
    """Open tickets each agent holds."""
    last_assigned: dict[str, datetime] = field(default_factory=dict)
    last_agent_of: Mapping[int, str] = field(default_factory=dict)
    """The agent who handled each customer's last ticket."""
    strategy: Strategy = Strategy.least_loaded
    _turn: int = 0

    def fits(self, agent: Agent, work: Work) -> str | None:
        """Why ``agent`` cannot take ``work``, or ``None`` when they can."""
        if agent.presence != Presence.available:
            return f"{agent.name} is {agent.presence.value}"
        if work.queue not in agent.queues:
            return f"{agent.name} does not work queue {work.queue}"
        if self.load.get(agent.name, 0) >= agent.capacity:
            return f"{agent.name} is at capacity ({agent.capacity})"
        missing = work.skills - agent.skills
        if missing:
            return f"{agent.name} lacks {', '.join(sorted(missing))}"
        if work.language not in agent.languages:
            return f"{agent.name} does not speak {work.language}"
        return None

    def choose(self, work: Work, now: datetime) -> Assignment:
        candidates = [a for a in self.agents if self.fits(a, work) is None]
        if not candidates:
            return Assignment(
                work.number,
                None,
                "no present agent with the skills, language and room for it; it waits in the queue",
            )
        sticky = self.last_agent_of.get(work.customer_id)
        chosen = next((a for a in candidates if a.name == sticky), None)
        if chosen is not None:
            why = f"sticky: {chosen.name} handled this customer's last ticket"
        elif self.strategy == Strategy.round_robin:
            names = sorted(a.name for a in self.agents)
            order = names[self._turn % len(names) :] + names[: self._turn % len(names)]
            chosen = next(a for name in order for a in candidates if a.name == name)
            self._turn = names.index(chosen.name) + 1
            why = f"round-robin: {chosen.name}'s turn among {len(candidates)} who fit"
        else:
            epoch = datetime.min.replace(tzinfo=now.tzinfo)
            chosen = min(
                candidates,
                key=lambda a: (
                    self.load.get(a.name, 0) / max(a.capacity, 1),
                    self.last_assigned.get(a.name, epoch),
                    a.name,
                ),
            )
            why = (
                f"least loaded: {chosen.name} holds {self.load.get(chosen.name, 0)} of "
                f"{chosen.capacity}, among {len(candidates)} who fit"
            )
        self.load[chosen.name] = self.load.get(chosen.name, 0) + 1
        self.last_assigned[chosen.name] = now
        return Assignment(work.number, chosen.name, why)

    def assign(self, backlog: Iterable[Work], now: datetime) -> list[Assignment]:
        """Offer the backlog in service order; what nobody can take stays unassigned."""
        return [self.choose(work, now) for work in service_order(backlog)]

    def agent_left(self, name: str, held: Iterable[Work], now: datetime) -> list[Assignment]:
        """``name`` went away: their open tickets are offered to the others, in service
        order; the departed agent is no longer sticky for these customers."""
        self.agents = [
            Agent(a.name, a.queues, a.skills, a.languages, a.capacity, Presence.away)
            if a.name == name
            else a
            for a in self.agents
        ]
        self.load[name] = 0
        self.last_agent_of = {c: a for c, a in self.last_agent_of.items() if a != name}
        return self.assign(held, now)


def service_order(backlog: Iterable[Work]) -> list[Work]:
    """VIP and vulnerable customers first, then by priority, then the oldest first."""
    return sorted(
        backlog,
        key=lambda w: (
            not (w.vip or w.vulnerable),
            _PRIORITY_RANK.get(w.priority, 2),
            w.created_at,
            w.number,
        ),
    )


__all__ = ["Agent", "Assignment", "Desk", "Presence", "Strategy", "Work", "service_order"]
