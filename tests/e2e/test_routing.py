"""Routing through the pipeline: a message pushed on the app channel is classified, routed by
the first matching rule, and the ticket records both (``ticket.created`` and
``ticket.routed``), with the rule's queue, priority and SLA policy applied."""

from __future__ import annotations

import httpx
import pytest
from sqlmodel import col, select

from hub.runtime import Hub
from hub.settings import Settings
from tests.app_pushes import app_message, push
from tests.conftest import drain
from ticket_core import AuditEvent, ManualClock, Ticket, verify_chain

RULES = [
    {
        "name": "card fraud",
        "when": {"kinds": ["complaint"], "causes": ["unauthorised_transaction"]},
        "then": {
            "queue": "card-fraud",
            "priority": "high",
            "sla_policy": "cn-nfra-order-3",
            "tags": ["fraud"],
        },
    },
    {"name": "praise", "when": {"kinds": ["praise"]}, "then": {"queue": "customer-voice"}},
]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"routing": Settings(routing={"rules": RULES}).routing})


async def _ticket_and_events(hub: Hub) -> tuple[Ticket, list[AuditEvent]]:
    async with hub.sessions() as session:
        ticket = (await session.exec(select(Ticket))).one()
        events = (
            await session.exec(
                select(AuditEvent)
                .where(AuditEvent.ticket_id == ticket.id)
                .order_by(col(AuditEvent.id))
            )
        ).all()
        return ticket, list(events)


async def test_a_routed_ticket_records_the_rule_and_gets_its_queue_priority_and_policy(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock
) -> None:
    response = await push(api, app_message("我的借记卡被盗刷了两万元，要求银行赔偿"), clock.now())
    assert response.status_code == 202
    await drain(hub)
    ticket, events = await _ticket_and_events(hub)
    assert (ticket.kind, ticket.queue, ticket.priority) == ("complaint", "card-fraud", "high")
    assert ticket.sla_policy == "cn-nfra-order-3"  # the rule's, not the book's default
    assert ticket.category == "cards"
    assert ticket.category_codes == {"business": "B01", "cause": "C03"}
    created = next(e for e in events if e.action == "ticket.created")
    assert created.after["classification"]["rule"] == "keywords.complaint"
    assert created.after["classification"]["cause"] == "unauthorised_transaction"
    routed = next(e for e in events if e.action == "ticket.routed")
    assert routed.after["rule"] == 0
    assert routed.after["name"] == "card fraud"
    assert routed.after["why"] == ["kind complaint", "cause unauthorised_transaction"]
    assert routed.after["tags"] == ["fraud"]
    assert routed.after["sla_policy"] == "cn-nfra-order-3"
    assert verify_chain(events, head=ticket.audit_head) == []


async def test_a_ticket_no_rule_fits_keeps_the_default_policy_and_no_routing_event(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock
) -> None:
    await push(api, app_message("请问大额存单的起存金额是多少？"), clock.now())
    await drain(hub)
    ticket, events = await _ticket_and_events(hub)
    assert (ticket.kind, ticket.queue, ticket.sla_policy) == (
        "consultation",
        None,
        "cn-service-24-48-72",
    )
    assert not any(e.action == "ticket.routed" for e in events)
