"""Customer merges and CRM links in the store, on SQLite and PostgreSQL: refusals, exact
undo, and two workers naming one CRM number at the same moment."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.enrichment import Answer, ContextApplier
from hub.identity_key import load_identity_key
from hub.runtime import Hub
from hub.sdk import CustomerContext, InboundEnvelope
from hub.settings import ContextSettings
from tests.app_pushes import app_message
from tests.conftest import drain
from ticket_core import AuditEvent, Customer, CustomerIdentity, ManualClock, Ticket
from ticket_core.customers import (
    CRM_CUSTOMER,
    MergeRefused,
    attach_verified_identity,
    merge_customers,
    undo_merge,
)
from ticket_core.models import CustomerMerge, MergeKind


class _Crm:
    """Just what the applier reads of a provider."""

    name = "crm"
    links_customers = True
    message_scoped = False


async def _customers(hub: Hub, clock: ManualClock, *users: str) -> list[int]:
    for user in users:
        await hub.envelopes.accept(
            InboundEnvelope(
                channel="app",
                external_id=f"m-{user}",
                body=app_message(user_id=user),
                content_type="application/json",
                received_at=clock.now(),
            )
        )
    await drain(hub)
    async with hub.reads() as session:
        tickets = (await session.exec(select(Ticket).order_by(col(Ticket.id)))).all()
    return [t.customer_id for t in tickets]


async def _identity_key(hub: Hub) -> bytes:
    return await load_identity_key(hub.sessions, hub.settings.security)


async def test_merges_are_refused_when_they_would_be_wrong(hub: Hub, clock: ManualClock) -> None:
    a, b, c = await _customers(hub, clock, "user-merge-a1", "user-merge-b2", "user-merge-c3")
    now = clock.now()

    async def merge(source: int, target: int) -> CustomerMerge:
        async with hub.sessions() as session, session.begin():
            return await merge_customers(
                session,
                source_id=source,
                target_id=target,
                kind=MergeKind.agent,
                actor="supervisor:test",
                reason="test",
                evidence={},
                now=now,
            )

    with pytest.raises(MergeRefused, match="into itself"):
        await merge(a, a)
    async with hub.sessions() as session, session.begin():
        for customer_id, ref in ((a, "C1"), (b, "C2")):
            customer = await session.get(Customer, customer_id)
            assert customer is not None
            customer.crm_ref = ref
    with pytest.raises(MergeRefused, match="different customer numbers"):
        await merge(a, b)
    await merge(a, c)
    with pytest.raises(MergeRefused, match="already merged into customer"):
        await merge(a, b)
    with pytest.raises(MergeRefused, match="merge into that one instead"):
        await merge(b, a)


async def test_an_undo_takes_back_only_what_the_merge_filled_in_and_added(
    hub: Hub, clock: ManualClock
) -> None:
    a, b = await _customers(hub, clock, "user-fill-a1", "user-fill-b2")
    async with hub.sessions() as session, session.begin():
        source = await session.get(Customer, a)
        target = await session.get(Customer, b)
        assert source is not None and target is not None
        source.crm_ref, source.tier, source.tags = "C42", "gold", ["vip", "elderly"]
        target.tags = ["elderly"]
        target.display_name = "王*"
    async with hub.sessions() as session, session.begin():
        merge = await merge_customers(
            session,
            source_id=a,
            target_id=b,
            kind=MergeKind.agent,
            actor="supervisor:test",
            reason="test",
            evidence={},
            now=clock.now(),
        )
    assert merge.filled == {"crm_ref": "C42", "tier": "gold"}
    assert merge.tags_added == ["vip"]
    async with hub.sessions() as session, session.begin():
        target = await session.get(Customer, b)
        assert target is not None
        assert (target.crm_ref, target.tier, target.tags) == ("C42", "gold", ["elderly", "vip"])
        target.tier = "platinum"  # changed since the merge: the undo leaves it alone
    async with hub.sessions() as session, session.begin():
        await undo_merge(
            session, merge.id or 0, actor="supervisor:test", reason="wrong", now=clock.now()
        )
    async with hub.reads() as session:
        source = await session.get(Customer, a)
        target = await session.get(Customer, b)
        identities = (
            await session.exec(select(CustomerIdentity).order_by(col(CustomerIdentity.id)))
        ).all()
    assert source is not None and target is not None
    assert source.merged_into_id is None and (source.crm_ref, source.tier) == ("C42", "gold")
    assert (target.crm_ref, target.tier, target.tags) == (None, "platinum", ["elderly"])
    assert target.display_name == "王*"
    assert [i.customer_id for i in identities] == [a, b]


async def test_a_crm_number_attached_elsewhere_at_the_same_moment_joins_instead_of_failing(
    hub: Hub, clock: ManualClock, database_url: str
) -> None:
    """One worker has attached C-9 to customer X and not yet committed; another applies the
    CRM's answer C-9 for customer Y. On PostgreSQL the second insert waits on the unique index
    and then fails; it must join X instead of failing its round."""
    x, y = await _customers(hub, clock, "user-race-x1", "user-race-y2")
    key = await _identity_key(hub)
    now = clock.now()
    applier = ContextApplier(ContextSettings(), key)
    async with hub.reads() as session:
        y_ticket = (await session.exec(select(Ticket).where(Ticket.customer_id == y))).one()
    answer = Answer(
        CustomerContext(source="crm", fetched_at=now, found=True, customer_ref="C-9"),
        asked_by=("app_user",),
    )

    async def second_worker() -> None:
        async with hub.sessions() as session, session.begin():
            await applier.apply(
                session,
                ticket_id=y_ticket.id or 0,
                provider=_Crm(),  # type: ignore[arg-type]
                answer=answer,
                now=now + timedelta(seconds=1),
            )

    async with hub.sessions() as first, first.begin():
        owner = await first.get(Customer, x)
        assert owner is not None
        await attach_verified_identity(
            first, key, owner, kind=CRM_CUSTOMER, value="C-9", masked="C-9", now=now
        )
        owner.crm_ref = "C-9"
        racing = asyncio.create_task(second_worker())
        if database_url.startswith("postgresql"):
            await _until_blocked_on_a_lock(first)
        else:
            await asyncio.sleep(0)  # SQLite: the second writer waits for this one's commit
    await racing
    async with hub.reads() as session:
        tickets = (await session.exec(select(Ticket))).all()
        merges = (await session.exec(select(CustomerMerge))).all()
        linked = (
            await session.exec(select(AuditEvent).where(AuditEvent.action == "customer.crm_linked"))
        ).all()
    assert {t.customer_id for t in tickets} == {x}
    assert [(m.source_id, m.target_id, m.kind) for m in merges] == [(y, x, "crm_match")]
    assert linked == []  # the first worker linked it (outside the applier); none twice


async def _until_blocked_on_a_lock(session: AsyncSession) -> None:
    """Wait (yielding, never sleeping on time) until another connection waits for a lock."""
    async with asyncio.timeout(10):
        while True:
            waiting = (
                await session.exec(text("SELECT count(*) FROM pg_locks WHERE NOT granted"))
            ).one()[0]
            if waiting:
                return
            await asyncio.sleep(0.01)
