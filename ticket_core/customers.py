"""Customers and the identities they are known by, stored as keyed hashes with a masked form.

A customer is found by a verified identity only. Two customers become one only through a
merge (``merge_customers``): an agent's decision, or the CRM's customer number returned for
identities each channel verified. A merge records what it moved and why, writes an audit
event on every ticket of both customers, and can be undone exactly (``undo_merge``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ticket_core import audit
from ticket_core.errors import TicketCoreError
from ticket_core.intake import IdentityClaim
from ticket_core.models import Customer, CustomerIdentity, CustomerMerge, MergeKind, Ticket

CRM_CUSTOMER = "crm_customer"
"""Identity kind of the bank's customer number, as the CRM returned it for a verified identity."""

MERGED = "customer.merged"
MERGE_UNDONE = "customer.merge_undone"
_MAX_CHAIN = 20
_FILLABLE = ("display_name", "phone_masked", "crm_ref", "tier", "risk_level")
_LISTED_TICKETS = 50


class CustomerNotFound(TicketCoreError):
    def __init__(self, customer_id: int) -> None:
        super().__init__(f"no customer {customer_id}")
        self.customer_id = customer_id


class MergeNotFound(TicketCoreError):
    def __init__(self, merge_id: int) -> None:
        super().__init__(f"no customer merge {merge_id}")
        self.merge_id = merge_id


class MergeRefused(TicketCoreError):
    """A merge or an undo that would be wrong now; the text says why and what to do."""


def identity_hash(key: bytes, kind: str, value: str) -> str:
    """Keyed so a stolen table cannot be reversed by hashing every phone number."""
    normalized = value.strip().lower() if kind == "email" else value.strip()
    return hmac.new(key, f"{kind}:{normalized}".encode(), hashlib.sha256).hexdigest()


async def find_customer(
    session: AsyncSession, key: bytes, claims: tuple[IdentityClaim, ...]
) -> Customer | None:
    """The customer behind the first verified identity that is already known, locked.

    The lock makes a message wait for a merge of its customer that is committing now, and
    then find the survivor: a ticket never lands on a customer merged away a moment ago.
    """
    for claim in claims:
        if not claim.verified:
            continue
        owner = await _owner(session, claim.kind, identity_hash(key, claim.kind, claim.value))
        if owner is not None:
            return await surviving_customer(session, owner)
    return None


async def surviving_customer(session: AsyncSession, customer_id: int) -> Customer:
    """The customer, locked for update, or the one it was merged into (followed to the end)."""
    current = customer_id
    for _ in range(_MAX_CHAIN):
        customer = await _locked(session, current)
        if customer is None:
            raise CustomerNotFound(current)
        if customer.merged_into_id is None:
            return customer
        current = customer.merged_into_id
    raise MergeRefused(f"customer {customer_id} is merged through more than {_MAX_CHAIN} others")


async def lock_customer(session: AsyncSession, customer_id: int) -> Customer | None:
    """Exactly this customer, locked for update (merged away or not), freshly read."""
    return await _locked(session, customer_id)


async def _locked(session: AsyncSession, customer_id: int) -> Customer | None:
    query = (
        select(Customer)
        .where(Customer.id == customer_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.exec(query)).first()


async def resolve_customer(
    session: AsyncSession,
    key: bytes,
    claims: tuple[IdentityClaim, ...],
    *,
    display_name: str | None,
    phone_masked: str | None,
    now: datetime,
    tags: tuple[str, ...] = (),
) -> Customer:
    """Find the customer by a verified identity or create one.

    Unverified claims (a phone number typed into an app form) are remembered on the
    customer but never used to join two customers.
    """
    if not any(c.verified for c in claims):
        raise ValueError("a message needs at least one identity its channel verified")
    found = await find_customer(session, key, claims)
    if found is not None:
        await _remember(session, key, found, claims, now)
        if tags and not set(tags) <= set(found.tags):
            found.tags = sorted({*found.tags, *tags})
            session.add(found)
        return found
    customer = Customer(
        display_name=display_name, phone_masked=phone_masked, tags=sorted(set(tags)), created_at=now
    )
    session.add(customer)
    await session.flush()
    # A customer made just now has no identities yet, and ``find_customer`` has just found no
    # owner for any verified claim: each is added without asking again (two queries less).
    added: set[tuple[str, str]] = set()
    for claim in claims:
        digest = identity_hash(key, claim.kind, claim.value)
        if claim.verified:
            if (claim.kind, digest) in added:
                continue
            added.add((claim.kind, digest))
        session.add(
            CustomerIdentity(
                customer_id=customer.id,  # type: ignore[arg-type]
                kind=claim.kind,
                value_hash=digest,
                masked=claim.masked,
                verified=claim.verified,
                created_at=now,
            )
        )
    # Two workers racing on one new customer: the unique index on verified identities makes
    # the loser fail here; its envelope is retried and then finds the winner's customer.
    await session.flush()
    return customer


async def _owner(session: AsyncSession, kind: str, digest: str) -> int | None:
    row = (
        await session.exec(
            select(CustomerIdentity.customer_id).where(
                CustomerIdentity.kind == kind,
                CustomerIdentity.value_hash == digest,
                CustomerIdentity.verified == True,  # noqa: E712
            )
        )
    ).first()
    return row


async def verified_owner(session: AsyncSession, key: bytes, kind: str, value: str) -> int | None:
    """The id of the customer who holds this verified identity, if anyone does."""
    return await _owner(session, kind, identity_hash(key, kind, value))


async def attach_verified_identity(
    session: AsyncSession,
    key: bytes,
    customer: Customer,
    *,
    kind: str,
    value: str,
    masked: str,
    now: datetime,
) -> CustomerIdentity:
    """Give the customer an identity vouched for elsewhere (the CRM's customer number).

    The caller has checked that nobody holds it (``verified_owner``); two workers racing to
    attach it to two customers meet the unique index on verified identities, and the loser's
    transaction is retried, then finds the winner.
    """
    assert customer.id is not None
    identity = CustomerIdentity(
        customer_id=customer.id,
        kind=kind,
        value_hash=identity_hash(key, kind, value),
        masked=masked,
        verified=True,
        created_at=now,
    )
    session.add(identity)
    await session.flush()
    return identity


async def _remember(
    session: AsyncSession,
    key: bytes,
    customer: Customer,
    claims: tuple[IdentityClaim, ...],
    now: datetime,
) -> None:
    assert customer.id is not None
    known = {
        (row.kind, row.value_hash)
        for row in (
            await session.exec(
                select(CustomerIdentity).where(CustomerIdentity.customer_id == customer.id)
            )
        ).all()
    }
    for claim in claims:
        digest = identity_hash(key, claim.kind, claim.value)
        if (claim.kind, digest) in known:
            continue
        if claim.verified and await _owner(session, claim.kind, digest) is not None:
            # Verified elsewhere: joining two customers is an explicit, audited merge,
            # never a side effect of a message.
            continue
        session.add(
            CustomerIdentity(
                customer_id=customer.id,
                kind=claim.kind,
                value_hash=digest,
                masked=claim.masked,
                verified=claim.verified,
                created_at=now,
            )
        )


# --- merges --------------------------------------------------------------------------------


async def _lock_pair(session: AsyncSession, first: int, second: int) -> tuple[Customer, Customer]:
    """Both customers, locked in id order so two merges of the same pair cannot deadlock."""
    locked: dict[int, Customer] = {}
    for customer_id in sorted({first, second}):
        customer = await _locked(session, customer_id)
        if customer is None:
            raise CustomerNotFound(customer_id)
        locked[customer_id] = customer
    return locked[first], locked[second]


async def _tickets_of(session: AsyncSession, customer_ids: Sequence[int]) -> list[Ticket]:
    query = (
        select(Ticket)
        .where(col(Ticket.customer_id).in_(customer_ids))
        .order_by(col(Ticket.id))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return list((await session.exec(query)).all())


def _listed(tickets: Sequence[Ticket]) -> list[str]:
    return [t.number or str(t.id) for t in tickets[:_LISTED_TICKETS]]


async def kept_apart(session: AsyncSession, first: int, second: int) -> CustomerMerge | None:
    """An undone merge of these two customers: someone decided they are not one person, so
    nothing automatic may join them again."""
    query = (
        select(CustomerMerge)
        .where(col(CustomerMerge.undone_at).is_not(None))
        .where(
            or_(
                (col(CustomerMerge.source_id) == first) & (col(CustomerMerge.target_id) == second),
                (col(CustomerMerge.source_id) == second) & (col(CustomerMerge.target_id) == first),
            )
        )
        .order_by(col(CustomerMerge.id).desc())
    )
    return (await session.exec(query)).first()


async def merge_customers(
    session: AsyncSession,
    *,
    source_id: int,
    target_id: int,
    kind: MergeKind,
    actor: str,
    reason: str,
    evidence: dict[str, Any],
    now: datetime,
) -> CustomerMerge:
    """Move every identity and ticket of ``source`` to ``target`` and record the merge.

    Refused (``MergeRefused``) for a customer and itself, a customer already merged away on
    either side, and two customers the CRM knows by different customer numbers. Every ticket
    of both customers gets a ``customer.merged`` audit event naming the merge, its kind, who
    made it and on what evidence.
    """
    if source_id == target_id:
        raise MergeRefused("a customer cannot be merged into itself")
    source, target = await _lock_pair(session, source_id, target_id)
    if source.merged_into_id is not None:
        raise MergeRefused(
            f"customer {source_id} is already merged into customer {source.merged_into_id}"
        )
    if target.merged_into_id is not None:
        raise MergeRefused(
            f"customer {target_id} was merged into customer {target.merged_into_id}; "
            "merge into that one instead"
        )
    if source.crm_ref and target.crm_ref and source.crm_ref != target.crm_ref:
        raise MergeRefused(
            f"the CRM knows customers {source_id} and {target_id} by different customer "
            "numbers, so they are two people; correct the CRM first"
        )
    identities = list(
        (
            await session.exec(
                select(CustomerIdentity)
                .where(CustomerIdentity.customer_id == source_id)
                .order_by(col(CustomerIdentity.id))
                .with_for_update()
            )
        ).all()
    )
    tickets = await _tickets_of(session, [source_id, target_id])
    moved = [t for t in tickets if t.customer_id == source_id]
    for identity in identities:
        identity.customer_id = target_id
        session.add(identity)
    for ticket in moved:
        ticket.customer_id = target_id
    filled = {
        name: getattr(source, name)
        for name in _FILLABLE
        if getattr(target, name) is None and getattr(source, name) is not None
    }
    for name, value in filled.items():
        setattr(target, name, value)
    tags_added = sorted(set(source.tags) - set(target.tags))
    if tags_added:
        target.tags = sorted({*target.tags, *tags_added})
    source.merged_into_id = target_id
    session.add_all([source, target])
    merge = CustomerMerge(
        source_id=source_id,
        target_id=target_id,
        kind=kind,
        reason=reason,
        evidence=evidence,
        actor=actor,
        created_at=now,
        moved_identities=[i.id for i in identities if i.id is not None],
        moved_tickets=[t.id for t in moved if t.id is not None],
        filled=filled,
        tags_added=tags_added,
    )
    session.add(merge)
    await session.flush()
    after = {
        "merge_id": merge.id,
        "kind": kind.value,
        "from_customer": source_id,
        "into_customer": target_id,
        "reason": reason,
        "evidence": evidence,
        "identities_moved": len(identities),
        "tickets_moved": _listed(moved),
        "tickets_moved_count": len(moved),
    }
    moved_ids = set(merge.moved_tickets)
    for ticket in tickets:
        was = source_id if ticket.id in moved_ids else target_id
        audit.record(
            session,
            ticket,
            actor=actor,
            action=MERGED,
            at=now,
            before={"customer_id": was},
            after={"customer_id": target_id, **after},
        )
    return merge


async def undo_merge(
    session: AsyncSession, merge_id: int, *, actor: str, reason: str, now: datetime
) -> CustomerMerge:
    """Move back exactly what the merge moved, and take back what it filled in and added.

    Refused while something the merge moved has moved on since (a later merge took the
    survivor's identities elsewhere: that one must be undone first), so an undo never
    scatters someone else's identities. Every ticket of both customers gets a
    ``customer.merge_undone`` audit event.
    """
    merge = (
        await session.exec(
            select(CustomerMerge)
            .where(CustomerMerge.id == merge_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).first()
    if merge is None:
        raise MergeNotFound(merge_id)
    if merge.undone_at is not None:
        raise MergeRefused(
            f"merge {merge_id} was already undone at {merge.undone_at.isoformat()} "
            f"by {merge.undone_by}"
        )
    source, target = await _lock_pair(session, merge.source_id, merge.target_id)
    if source.merged_into_id != target.id:
        raise MergeRefused(
            f"customer {source.id} is no longer merged into customer {target.id}; "
            "the merge cannot be undone as it was"
        )
    identities = list(
        (
            await session.exec(
                select(CustomerIdentity)
                .where(col(CustomerIdentity.id).in_(merge.moved_identities))
                .with_for_update()
            )
        ).all()
    )
    tickets = await _tickets_of(session, [source.id, target.id])  # type: ignore[list-item]
    returning = [t for t in tickets if t.id in set(merge.moved_tickets)]
    elsewhere = len(identities) != len(merge.moved_identities) or any(
        i.customer_id != target.id for i in identities
    )
    if elsewhere or len(returning) != len(merge.moved_tickets):
        raise MergeRefused(await _moved_on(session, merge))
    for identity in identities:
        identity.customer_id = merge.source_id
        session.add(identity)
    for ticket in returning:
        ticket.customer_id = merge.source_id
    for name, value in merge.filled.items():
        if getattr(target, name) == value:
            setattr(target, name, None)
    if merge.tags_added:
        target.tags = [t for t in target.tags if t not in set(merge.tags_added)]
    source.merged_into_id = None
    merge.undone_at = now
    merge.undone_by = actor
    merge.undo_reason = reason
    session.add_all([source, target, merge])
    after = {
        "merge_id": merge.id,
        "kind": merge.kind,
        "from_customer": merge.source_id,
        "into_customer": merge.target_id,
        "reason": reason,
        "identities_returned": len(identities),
        "tickets_returned": _listed(returning),
        "tickets_returned_count": len(returning),
    }
    back = set(merge.moved_tickets)
    for ticket in tickets:
        now_with = merge.source_id if ticket.id in back else merge.target_id
        audit.record(
            session,
            ticket,
            actor=actor,
            action=MERGE_UNDONE,
            at=now,
            before={"customer_id": merge.target_id},
            after={"customer_id": now_with, **after},
        )
    await session.flush()
    return merge


async def _moved_on(session: AsyncSession, merge: CustomerMerge) -> str:
    later = (
        await session.exec(
            select(CustomerMerge)
            .where(CustomerMerge.source_id == merge.target_id)
            .where(col(CustomerMerge.undone_at).is_(None))
            .where(col(CustomerMerge.id) > merge.id)
            .order_by(col(CustomerMerge.id).desc())
        )
    ).first()
    if later is not None:
        return (
            f"customer {merge.target_id} was merged into customer {later.target_id} by merge "
            f"{later.id} since; undo merge {later.id} first"
        )
    return (
        f"what merge {merge.id} moved has moved on since (identities or tickets no longer "
        f"with customer {merge.target_id}); it cannot be undone exactly"
    )
