"""When a ticket opens, schedule one lookup per context provider, after the ack.

A reaction (``hub.reactions``): it runs in the transaction that opened the ticket and only
writes rows, an outbox row per provider and the ticket's ``ticket_context`` row in state
``pending``, so the ticket and its pending lookups commit together and no provider is ever
called on the way to the customer's acknowledgement.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from hub.registry import Registry
from hub.store import OutboxRow
from ticket_core import AuditEvent
from ticket_core.models import ContextState, TicketContext

CONTEXT_KIND = "context"
LOOKUP_PURPOSE = "context.lookup"


def context_target(provider: str) -> str:
    return f"{CONTEXT_KIND}:{provider}"


class LookupScheduler:
    """The reaction; only providers enabled in this process are scheduled (every process of
    one installation has the same configuration)."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    async def __call__(
        self, session: AsyncSession, events: Sequence[AuditEvent], now: datetime
    ) -> None:
        providers = [name for name, _ in self._registry.providers()]
        if not providers:
            return
        for event in events:
            if event.action != "ticket.created" or event.ticket_id is None:
                continue
            for provider in providers:
                await schedule_lookup(session, event.ticket_id, provider, now)


async def schedule_lookup(
    session: AsyncSession, ticket_id: int, provider: str, now: datetime
) -> TicketContext:
    """Queue one provider's lookup for a ticket, inside the caller's transaction."""
    row = OutboxRow(
        idempotency_key=f"ctx_{uuid.uuid4().hex}",
        target=context_target(provider),
        purpose=LOOKUP_PURPOSE,
        payload={"ticket_id": ticket_id},
        ticket_id=ticket_id,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(row)
    await session.flush()
    pending = TicketContext(
        ticket_id=ticket_id,
        provider=provider,
        state=ContextState.pending,
        outbox_id=row.id,
        requested_at=now,
        updated_at=now,
    )
    session.add(pending)
    return pending
