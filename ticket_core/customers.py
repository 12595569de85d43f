"""Customers and the identities they are known by, stored as keyed hashes with a masked form."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from ticket_core.intake import IdentityClaim
from ticket_core.models import Customer, CustomerIdentity


def identity_hash(key: bytes, kind: str, value: str) -> str:
    """Keyed so a stolen table cannot be reversed by hashing every phone number."""
    normalized = value.strip().lower() if kind == "email" else value.strip()
    return hmac.new(key, f"{kind}:{normalized}".encode(), hashlib.sha256).hexdigest()


async def find_customer(
    session: AsyncSession, key: bytes, claims: tuple[IdentityClaim, ...]
) -> Customer | None:
    """The customer behind the first verified identity that is already known."""
    for claim in claims:
        if not claim.verified:
            continue
        row = (
            await session.exec(
                select(CustomerIdentity).where(
                    CustomerIdentity.kind == claim.kind,
                    CustomerIdentity.value_hash == identity_hash(key, claim.kind, claim.value),
                    CustomerIdentity.verified == True,  # noqa: E712
                )
            )
        ).first()
        if row is not None:
            return await session.get(Customer, row.customer_id)
    return None


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
    await _remember(session, key, customer, claims, now)
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
