"""SLA wiring: the scheduler's tick in the worker loop (the policy book: ``hub.policy_book``)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import structlog

from hub.metrics import SLA_EVENTS
from hub.reactions import Reactions
from hub.store import SessionFactory
from ticket_core import (
    Clock,
    PolicyBook,
    run_due,
)

if TYPE_CHECKING:
    from hub.settings import SlaSettings

log = structlog.get_logger(__name__)


class Scheduler:
    """Runs the SLA tick: warnings, breaches and escalation, automatic close."""

    def __init__(
        self,
        sessions: SessionFactory,
        clock: Clock,
        book: PolicyBook,
        reactions: Reactions,
        settings: SlaSettings,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._book = book
        self._reactions = reactions
        self._settings = settings

    async def tick(self) -> int:
        """One batch of due clocks in one transaction; returns how many things happened."""
        now = self._clock.now()
        async with self._sessions() as session, session.begin():
            events = await run_due(
                session,
                now,
                self._book,
                escalation_queue=self._settings.escalation_queue,
                limit=self._settings.scheduler_batch,
            )
            await self._reactions.run(session, now)
        for event in events:
            SLA_EVENTS.labels(event.clock, event.what).inc()
        if events:
            log.info("sla.tick", events=len(events))
        return len(events)


def auto_close_after(days: float | None) -> timedelta | None:
    return timedelta(days=days) if days is not None else None
