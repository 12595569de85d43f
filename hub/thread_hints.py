"""Threading by the messages a new one answers (``InboundMessage.thread_hints``, SDK 1.1).

A mail's In-Reply-To and References name earlier mails by Message-ID; an earlier mail the hub
took in is stored as a ticket message whose external id is that Message-ID. Only the hub can
tell which ticket holds it, so the connector passes the ids and the pipeline asks here. The
answer is a ticket *number*, handed to the core as the message's ticket reference: the core
still joins the ticket only when it belongs to the same customer and accepts follow-ups, so a
hint never joins anyone else's ticket.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ticket_core import Message, Ticket

MAX_HINTS = 50


async def ticket_for_hints(session: AsyncSession, channel: str, hints: Sequence[str]) -> str | None:
    """The number of the ticket holding the first of ``hints`` (nearest first) that is a
    message of ``channel``; None when the hub holds none of them."""
    wanted = [hint for hint in dict.fromkeys(hints) if hint and len(hint) <= 200][:MAX_HINTS]
    if not wanted:
        return None
    rows = await session.exec(
        select(Message.external_id, Ticket.number)
        .join(Ticket, col(Ticket.id) == col(Message.ticket_id))
        .where(Message.channel == channel)
        .where(col(Message.external_id).in_(wanted))
    )
    found = {external_id: number for external_id, number in rows.all()}
    return next((found[hint] for hint in wanted if found.get(hint)), None)
