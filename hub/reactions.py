"""What the hub does, in the same transaction, about each change the ticket core made.

Every change is an audit event. The session remembers the events it flushes; before commit,
``Reactions.run`` hands them to each reaction (webhook events, the regulator's feedback,
progress messages to the customer), which write their effects, usually outbox rows, into the
same transaction. A reaction's own changes are audit events too and get their turn, so a
progress message is also a ``message.created`` webhook event.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from ticket_core import AuditEvent

Reaction = Callable[[AsyncSession, Sequence[AuditEvent], datetime], Awaitable[None]]
_PENDING = "tongdao_audit_events"
_MAX_ROUNDS = 5


@event.listens_for(Session, "after_flush")
def _collect_audit_events(session: Session, _: Any) -> None:
    new = [obj for obj in session.new if isinstance(obj, AuditEvent)]
    if new:
        session.info.setdefault(_PENDING, []).extend(new)


def forget_pending(session: AsyncSession) -> None:
    """Drop collected audit events (their savepoint was rolled back)."""
    session.sync_session.info.pop(_PENDING, None)


class Reactions:
    def __init__(self, reactions: Sequence[Reaction]) -> None:
        self._reactions = tuple(reactions)

    async def run(self, session: AsyncSession, now: datetime) -> None:
        for _ in range(_MAX_ROUNDS):
            await session.flush()
            events: list[AuditEvent] = session.sync_session.info.pop(_PENDING, [])
            if not events:
                return
            for reaction in self._reactions:
                await reaction(session, events, now)
        raise RuntimeError(f"reactions still changing tickets after {_MAX_ROUNDS} rounds")
