"""What to ask a provider about one ticket: its customer's identities, in clear, and its message.

The hub keeps identities only as keyed hashes, so the values a provider needs are read again
from where they arrived: the ticket's first stored envelope, parsed once more by its channel's
connector (``parse`` is pure and repeatable by contract). No new copy of a phone number or an
openid is written anywhere for enrichment. Only identities the channel verified are passed on:
a number the customer typed never names a customer, in the CRM or here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.logs import redact_text
from hub.registry import Registry
from hub.sdk import ContextProvider, ContextRequest, InboundEnvelope, InboundMessage
from hub.store import Envelope
from ticket_core import Customer, Direction, Message, Ticket
from ticket_core.models import CustomerContextRecord


class NothingToLookUp(Exception):
    """This ticket gives a provider nothing to go on; the lookup ends as ``skipped``."""


class ChannelNotHere(Exception):
    """The channel whose envelope holds the identities is not enabled in this process."""


@dataclass(frozen=True, slots=True)
class Subject:
    ticket_id: int
    customer_id: int
    request: ContextRequest | None
    """What to send; ``None`` when ``cached`` answers instead."""
    cached: CustomerContextRecord | None = None


async def subject_for(
    session: AsyncSession,
    registry: Registry,
    provider: ContextProvider[Any],
    *,
    ticket_id: int,
    request_id: str,
    cache_ttl: timedelta,
    now: datetime,
) -> Subject:
    """The request for one ticket's lookup, or the customer's recent answer to reuse."""
    ticket = await session.get(Ticket, ticket_id)
    if ticket is None:
        raise NothingToLookUp(f"ticket {ticket_id} no longer exists")
    customer = await session.get(Customer, ticket.customer_id)
    assert customer is not None and customer.id is not None
    if not provider.message_scoped and cache_ttl > timedelta(0):
        recent = (
            await session.exec(
                select(CustomerContextRecord)
                .where(CustomerContextRecord.customer_id == customer.id)
                .where(CustomerContextRecord.provider == provider.name)
                .where(CustomerContextRecord.fetched_at > now - cache_ttl)
            )
        ).first()
        if recent is not None:
            return Subject(ticket_id, customer.id, None, recent)
    first = (
        await session.exec(
            select(Message)
            .where(Message.ticket_id == ticket_id)
            .where(Message.direction == Direction.inbound)
            .order_by(col(Message.id))
            .limit(1)
        )
    ).first()
    if first is None or first.external_id is None:
        raise NothingToLookUp("the ticket has no message from the customer")
    parsed = await _parsed(session, registry, first)
    verified = tuple(i for i in parsed.identities if i.verified and i.value)
    if not verified:
        raise NothingToLookUp("the customer's message carries no identity its channel verified")
    return Subject(
        ticket_id,
        customer.id,
        ContextRequest(
            request_id=request_id,
            identities=verified,
            ticket_number=ticket.number or "",
            channel=ticket.channel,
            kind=str(ticket.kind),
            text=first.text,
            received_at=first.created_at,
            customer_ref=customer.crm_ref,
        ),
    )


async def _parsed(session: AsyncSession, registry: Registry, message: Message) -> InboundMessage:
    row = (
        await session.exec(
            select(Envelope)
            .where(Envelope.channel == message.channel)
            .where(Envelope.external_id == message.external_id)
        )
    ).first()
    if row is None:
        raise NothingToLookUp("the customer's message is no longer stored as it arrived")
    connector = registry.get(row.channel)
    if connector is None:
        raise ChannelNotHere(f"channel {row.channel!r} is not enabled in this process")
    envelope = InboundEnvelope(
        channel=row.channel,
        external_id=row.external_id,
        body=row.body,
        content_type=row.content_type,
        received_at=row.received_at,
        headers=row.headers,
        metadata=row.meta,
    )
    try:
        parsed = connector.parse(envelope)
    except Exception as exc:
        problem = redact_text(f"{type(exc).__name__}: {exc}")[:300]
        raise NothingToLookUp(f"the stored message no longer parses: {problem}") from None
    if not isinstance(parsed, InboundMessage):
        raise NothingToLookUp("the ticket's first envelope is a command, not a customer's message")
    return parsed
