"""Progress to customers: a notice on the ticket's own channel at each step they should know of.

A reaction (see ``hub.reactions``): it reads the audit events of the transaction and, for the
steps a customer is told of, writes an outbound message from the channel's template in the
ticket's language and queues it in the same transaction. What it sends is built only from the
ticket's public fields and the event (never notes, assignees' names or internal reasons), and
nothing goes out for a ticket under review: its resolution notice waits for the approval.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from hub import notices
from hub.outbox import enqueue_message
from hub.registry import Registry
from ticket_core import (
    AuditEvent,
    Status,
    Ticket,
    add_outbound,
    latest_reply_address,
)

_PURPOSE = {"survey": "survey"}


def notices_for(
    event: AuditEvent, same_transaction: Sequence[AuditEvent]
) -> list[tuple[str, dict[str, Any]]]:
    """The notices one audit event calls for, with the fields their templates may use."""
    action, before, after = event.action, event.before, event.after
    if action == "ticket.assigned":
        if after.get("assignee") and not before.get("assignee"):
            return [("assigned", {})]
        return []
    if action == "sla.extended":
        due = datetime.fromisoformat(str(after["due_at"]))
        return [("extended", {"due_at": due, "reason": after.get("reason")})]
    if action != "ticket.status_changed":
        return []
    status, was = after.get("status"), before.get("status")
    if status == Status.resolved.value:
        return [("resolved", {"outcome": after.get("outcome")}), ("survey", {})]
    if status == Status.closed.value and after.get("reason") == "auto_close":
        return [("auto_closed", {})]
    if status == Status.in_progress.value and was in (Status.new.value, Status.open.value):
        answered = any(
            e.ticket_id == event.ticket_id and e.action in ("message.reply", "ticket.contacted")
            for e in same_transaction
        )
        return [] if answered else [("in_progress", {})]
    if status == Status.pending_customer.value and after.get("reason"):
        # The reason of a move to pending_customer is what we ask the customer for.
        return [("pending_customer", {"request": after["reason"]})]
    if status == Status.reopened.value:
        return [("reopened", {})]
    return []


class ProgressNotices:
    def __init__(self, registry: Registry, reopen_window_days: float) -> None:
        self._registry = registry
        self._days = round(reopen_window_days) or None

    def _reaches_customer(self, channel: str) -> bool:
        connector = self._registry.get(channel)
        # A channel not enabled in this process may be enabled in another one that sends.
        return connector is None or connector.capabilities.customer_messages

    async def __call__(
        self, session: AsyncSession, events: Sequence[AuditEvent], now: datetime
    ) -> None:
        for event in events:
            if event.ticket_id is None:
                continue
            wanted = notices_for(event, events)
            if not wanted:
                continue
            ticket = await session.get(Ticket, event.ticket_id)
            if ticket is None or not self._reaches_customer(ticket.channel):
                continue
            address = await latest_reply_address(session, ticket)
            for name, fields in wanted:
                if name == "resolved":
                    fields = {**fields, "summary": ticket.outcome_summary, "days": self._days}
                text = notices.render(name, ticket, channel=ticket.channel, **fields)
                message = await add_outbound(
                    session,
                    ticket,
                    text=text,
                    author="system",
                    purpose=_PURPOSE.get(name, "progress"),
                    reply_to=address,
                    now=now,
                )
                enqueue_message(
                    session,
                    ticket,
                    message,
                    now,
                    metadata={"notice": name, "status": ticket.status, "language": ticket.language},
                )
