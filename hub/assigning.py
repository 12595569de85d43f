"""Automatic assignment: a reaction (see ``hub.reactions``) that gives each ticket that enters
a queue without an agent to the agent the desk chooses (``ticket_core.desk.assign_next``).

It reacts to ``ticket.created``, ``ticket.routed`` and ``ticket.escalated`` and runs only when
``[assignment] enabled = true``; the ``ticket.assigned`` event it causes says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from hub.settings import AssignmentSettings
from ticket_core import AuditEvent, Ticket
from ticket_core.assignment import Strategy
from ticket_core.desk import assign_next

TRIGGERS = frozenset({"ticket.created", "ticket.routed", "ticket.escalated"})


class AutoAssign:
    def __init__(self, settings: AssignmentSettings) -> None:
        self._settings = settings
        self.strategy = Strategy(settings.strategy)
        self.vip_tags = tuple(t.lower() for t in settings.vip_tags)

    async def __call__(
        self, session: AsyncSession, events: Sequence[AuditEvent], now: datetime
    ) -> None:
        if not self._settings.enabled:
            return
        seen: set[int] = set()
        for event in events:
            if event.action not in TRIGGERS or event.ticket_id is None:
                continue
            if event.ticket_id in seen:
                continue
            seen.add(event.ticket_id)
            ticket = await session.get(Ticket, event.ticket_id)
            if ticket is None or ticket.queue is None or ticket.assignee:
                continue
            await assign_next(session, ticket, now, self.strategy, vip_tags=self.vip_tags)
