"""What a provider's answer changes: the customer's context, who the customer is, the routing.

Applied in the transaction that records the delivery, so an answer is stored together with
everything it caused, or not at all. Every step is safe to repeat (a lookup delivered twice
after a crash changes nothing the second time), and every change is an audit event on the
ticket, written by ``system:<provider>``:

* ``context.received``: what arrived (tier, segments, score and reason codes, never names);
* ``customer.crm_linked``: the CRM named the customer's number for a verified identity;
* ``customer.merged``: that number already belonged to another customer, so the two are one
  (``ticket_core.customers.merge_customers``; undone only by a person, and then never redone
  automatically: ``customer.merge_declined`` records why);
* ``customer.crm_conflict``: the CRM named a different number than it did before; nothing is
  joined, an agent must look;
* ``ticket.priority_changed`` and ``ticket.flagged``: the bank's policy (``[context]``) for
  VIP and vulnerable customers and for a high fraud score, which also moves the ticket to the
  anti-fraud queue.

None of it is ever sent to the customer: these are not actions that produce notices, and the
public progress view shows none of these fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.sdk import ContextProvider, CustomerContext
from hub.settings import ContextSettings
from hub.store.upsert import dialect_insert
from normalizer.pii import mask_name, mask_opaque
from ticket_core import Customer, Priority, Status, Ticket
from ticket_core.audit import record as audit_record
from ticket_core.customers import (
    CRM_CUSTOMER,
    MergeRefused,
    attach_verified_identity,
    kept_apart,
    lock_customer,
    merge_customers,
    surviving_customer,
    verified_owner,
)
from ticket_core.models import CustomerContextRecord, MergeKind

RECEIVED = "context.received"
LINKED = "customer.crm_linked"
CONFLICT = "customer.crm_conflict"
DECLINED = "customer.merge_declined"
PRIORITY_CHANGED = "ticket.priority_changed"
FLAGGED = "ticket.flagged"

_ORDER = (Priority.low, Priority.normal, Priority.high, Priority.urgent)
_SETTLED = (Status.resolved, Status.closed)
_LOCK_TRIES = 3
_MATCH_REASON = "the CRM returned the same customer number for identities each channel verified"


@dataclass(frozen=True, slots=True)
class Answer:
    """One lookup's outcome as the delivery hands it to the applier."""

    context: CustomerContext
    from_cache: bool = False
    asked_by: tuple[str, ...] = ()
    """The kinds of the verified identities the provider was asked by (the join's evidence)."""


def _context_of(record: CustomerContextRecord) -> CustomerContext:
    """A stored answer as the provider gave it, for reuse from the cache (names stay masked)."""
    return CustomerContext(
        source=record.provider,
        fetched_at=record.fetched_at,
        found=record.found,
        customer_ref=record.customer_ref,
        name=record.name_masked,
        tier=record.tier,
        segments=tuple(record.segments),
        products=tuple(record.products),
        relationship_manager=record.relationship_manager,
        risk_score=record.risk_score,
        reasons=tuple(record.reasons),
        data=dict(record.details),
    )


def cached_answer(record: CustomerContextRecord) -> Answer:
    return Answer(_context_of(record), from_cache=True)


class ContextApplier:
    def __init__(self, settings: ContextSettings, identity_key: bytes) -> None:
        self._settings = settings
        self._key = identity_key

    async def apply(
        self,
        session: AsyncSession,
        *,
        ticket_id: int,
        provider: ContextProvider[Any],
        answer: Answer,
        now: datetime,
    ) -> Ticket | None:
        """Store the answer and act on it; returns the ticket (locked), or None if it is gone.

        Locks are taken customers first, then the ticket, as the pipeline does, so an answer
        and a message of the same customer never wait for each other in a cycle.
        """
        actor = f"system:{provider.name}"
        context = answer.context
        current = (
            await session.exec(
                select(Ticket.customer_id).where(Ticket.id == ticket_id)  # type: ignore[arg-type]
            )
        ).first()
        if current is None:
            return None
        notes: list[tuple[str, dict[str, Any]]] = []
        if provider.links_customers and context.found and context.customer_ref:
            await self._link(session, current, ticket_id, provider.name, answer, now, notes)
        ticket, customer = await self._lock(session, ticket_id)
        if not answer.from_cache:
            await self._store(session, customer, provider.name, context)
        self._summarise(customer, provider, context)
        session.add(customer)
        for action, after in notes:
            audit_record(session, ticket, actor=actor, action=action, at=now, after=after)
        audit_record(
            session,
            ticket,
            actor=actor,
            action=RECEIVED,
            at=now,
            after=_received(provider.name, context, answer.from_cache),
        )
        self._route(session, ticket, provider.name, context, actor, now)
        return ticket

    async def _lock(self, session: AsyncSession, ticket_id: int) -> tuple[Ticket, Customer]:
        """The ticket and its customer, locked in that order: customer, then ticket."""
        for _ in range(_LOCK_TRIES):
            customer_id = (
                await session.exec(
                    select(Ticket.customer_id).where(Ticket.id == ticket_id)  # type: ignore[arg-type]
                )
            ).one()
            customer = await lock_customer(session, customer_id)
            ticket = (
                await session.exec(
                    select(Ticket)
                    .where(Ticket.id == ticket_id)
                    .with_for_update()
                    .execution_options(populate_existing=True)
                )
            ).one()
            if customer is not None and ticket.customer_id == customer.id:
                return ticket, customer
            # A merge moved the ticket between the two reads; lock its new customer instead.
        raise RuntimeError(f"ticket {ticket_id} kept changing customers; trying again later")

    async def _link(
        self,
        session: AsyncSession,
        customer_id: int,
        ticket_id: int,
        provider: str,
        answer: Answer,
        now: datetime,
        notes: list[tuple[str, dict[str, Any]]],
    ) -> None:
        """The CRM named this customer's number: attach it, or join the customer who has it."""
        ref = answer.context.customer_ref
        assert ref is not None
        masked = mask_opaque(ref)
        evidence = {
            "provider": provider,
            "customer_ref": masked,
            "asked_by": list(answer.asked_by),
            "ticket_id": ticket_id,
        }
        owner = await verified_owner(session, self._key, CRM_CUSTOMER, ref)
        if owner is None:
            customer = await surviving_customer(session, customer_id)
            if customer.crm_ref and customer.crm_ref != ref:
                notes.append(
                    (
                        CONFLICT,
                        {
                            "customer_id": customer.id,
                            "known_ref": mask_opaque(customer.crm_ref),
                            "answered_ref": masked,
                            "note": "the CRM named a different customer number than before; "
                            "nothing was joined",
                        },
                    )
                )
                return
            try:
                async with session.begin_nested():
                    await attach_verified_identity(
                        session,
                        self._key,
                        customer,
                        kind=CRM_CUSTOMER,
                        value=ref,
                        masked=masked,
                        now=now,
                    )
            except IntegrityError:
                # Another worker attached the number to another customer a moment ago (the
                # unique index on verified identities): join that customer instead.
                owner = await verified_owner(session, self._key, CRM_CUSTOMER, ref)
                if owner is None:
                    raise
            else:
                customer.crm_ref = ref
                session.add(customer)
                notes.append((LINKED, {"customer_id": customer.id, **evidence}))
                return
        await self._join(session, customer_id, owner, provider, evidence, now, notes)

    async def _join(
        self,
        session: AsyncSession,
        customer_id: int,
        owner: int,
        provider: str,
        evidence: dict[str, Any],
        now: datetime,
        notes: list[tuple[str, dict[str, Any]]],
    ) -> None:
        """Merge this customer into the one the CRM number belongs to, unless a person has
        said they are two people (an undone merge) or the merge is refused."""
        # Both customers, in id order as every merge locks them, so two joins cannot deadlock.
        first, second = sorted((owner, customer_id))
        locked = {first: await surviving_customer(session, first)}
        locked[second] = await surviving_customer(session, second)
        survivor, here = locked[owner], locked[customer_id]
        if survivor.id == here.id:
            return
        assert survivor.id is not None and here.id is not None
        declined = {"customer_id": here.id, "other_customer": survivor.id, **evidence}
        undone = await kept_apart(session, here.id, survivor.id)
        if undone is not None:
            notes.append(
                (
                    DECLINED,
                    {
                        **declined,
                        "undone_merge": undone.id,
                        "note": "a person undid a merge of these customers; only a person "
                        "may merge them again",
                    },
                )
            )
            return
        try:
            await merge_customers(
                session,
                source_id=here.id,
                target_id=survivor.id,
                kind=MergeKind.crm_match,
                actor=f"system:{provider}",
                reason=_MATCH_REASON,
                evidence=evidence,
                now=now,
            )
        except MergeRefused as exc:
            notes.append((DECLINED, {**declined, "note": str(exc)}))

    async def _store(
        self, session: AsyncSession, customer: Customer, provider: str, context: CustomerContext
    ) -> None:
        values = {
            "found": context.found,
            "customer_ref": context.customer_ref,
            "name_masked": mask_name(context.name)[:200] if context.name else None,
            "tier": context.tier,
            "segments": [s.lower() for s in context.segments],
            "products": list(context.products),
            "relationship_manager": context.relationship_manager,
            "risk_score": context.risk_score,
            "reasons": list(context.reasons),
            "details": dict(context.data),
            "fetched_at": context.fetched_at,
        }
        insert = dialect_insert(session, CustomerContextRecord.__table__).values(
            customer_id=customer.id, provider=provider, **values
        )
        await session.exec(
            insert.on_conflict_do_update(index_elements=["customer_id", "provider"], set_=values)
        )

    def _summarise(
        self, customer: Customer, provider: ContextProvider[Any], context: CustomerContext
    ) -> None:
        """The customer's own fields agents scan first: tier, tags, risk level."""
        if provider.links_customers and context.found:
            customer.tier = context.tier or customer.tier
            segments = {s.lower() for s in context.segments}
            if not segments <= set(customer.tags):
                customer.tags = sorted({*customer.tags, *segments})
        if context.risk_score is not None:
            # One risky message marks the customer; a calm one later does not clear it (an
            # agent does, after looking).
            if context.risk_score >= self._settings.fraud_threshold:
                customer.risk_level = "high"
            elif customer.risk_level is None:
                customer.risk_level = "normal"

    def _route(
        self,
        session: AsyncSession,
        ticket: Ticket,
        provider: str,
        context: CustomerContext,
        actor: str,
        now: datetime,
    ) -> None:
        """The bank's policy: VIP and vulnerable customers first; high risk to anti-fraud."""
        settings = self._settings
        segments = {s.lower() for s in context.segments}
        settled = Status(ticket.status) in _SETTLED
        vip = bool(segments & set(settings.vip_segments)) or (
            (context.tier or "").lower() in set(settings.vip_tiers)
        )
        vulnerable = sorted(segments & set(settings.vulnerable_segments))
        wanted: list[tuple[Priority, str]] = []
        if vip and settings.vip_priority:
            wanted.append((Priority(settings.vip_priority), "vip"))
        if vulnerable and settings.vulnerable_priority:
            wanted.append((Priority(settings.vulnerable_priority), "vulnerable customer"))
        current = Priority(ticket.priority)
        raised = [(p, why) for p, why in wanted if _ORDER.index(p) > _ORDER.index(current)]
        if raised and not settled:
            target = max((p for p, _ in raised), key=_ORDER.index)
            ticket.priority = target
            ticket.updated_at = now
            audit_record(
                session,
                ticket,
                actor=actor,
                action=PRIORITY_CHANGED,
                at=now,
                before={"priority": current.value},
                after={
                    "priority": target.value,
                    "reason": f"customer context ({provider}): "
                    + ", ".join(why for _, why in raised),
                },
            )
        if vulnerable and not ticket.is_vulnerable:
            ticket.is_vulnerable = True
            ticket.updated_at = now
            audit_record(
                session,
                ticket,
                actor=actor,
                action=FLAGGED,
                at=now,
                before={"vulnerable_customer": False},
                after={"vulnerable_customer": True, "segments": vulnerable},
            )
        score = context.risk_score
        if (
            score is not None
            and score >= settings.fraud_threshold
            and not ticket.is_suspected_fraud
        ):
            before = {"suspected_fraud": False, "queue": ticket.queue}
            ticket.is_suspected_fraud = True
            if settings.fraud_queue and not settled:
                ticket.queue = settings.fraud_queue
            ticket.updated_at = now
            audit_record(
                session,
                ticket,
                actor=actor,
                action=FLAGGED,
                at=now,
                before=before,
                after={
                    "suspected_fraud": True,
                    "queue": ticket.queue,
                    "risk_score": score,
                    "threshold": settings.fraud_threshold,
                    "reasons": list(context.reasons),
                },
            )
        session.add(ticket)


def _received(provider: str, context: CustomerContext, from_cache: bool) -> dict[str, Any]:
    """What the audit trail keeps of an answer: facts for routing decisions, no personal data."""
    after: dict[str, Any] = {"provider": provider, "found": context.found, "from_cache": from_cache}
    if context.customer_ref:
        after["customer_ref"] = mask_opaque(context.customer_ref)
    if context.tier:
        after["tier"] = context.tier
    if context.segments:
        after["segments"] = sorted({s.lower() for s in context.segments})
    if context.risk_score is not None:
        after["risk_score"] = context.risk_score
        after["reasons"] = list(context.reasons)
    return after
