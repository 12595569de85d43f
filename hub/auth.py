"""API keys: ``Authorization: Bearer td_<prefix>_<secret>``; only a SHA-256 of the key is stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from fastapi import HTTPException, Request
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.store import ApiKey


class Role(StrEnum):
    admin = "admin"
    agent = "agent"
    supervisor = "supervisor"
    auditor = "auditor"
    integrator = "integrator"


STAFF = (Role.agent, Role.supervisor, Role.auditor, Role.admin)
WRITERS = (Role.agent, Role.supervisor, Role.admin)


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role

    @property
    def actor(self) -> str:
        return f"{self.role.value}:{self.name}"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create_key(session: AsyncSession, name: str, role: Role, now: datetime) -> str:
    prefix = secrets.token_hex(6)
    key = f"td_{prefix}_{secrets.token_urlsafe(24)}"
    session.add(
        ApiKey(name=name, role=role.value, prefix=prefix, secret_hash=_digest(key), created_at=now)
    )
    return key


async def authenticate(session: AsyncSession, key: str) -> Principal | None:
    parts = key.split("_")
    if len(parts) < 3 or parts[0] != "td":
        return None
    row = (await session.exec(select(ApiKey).where(ApiKey.prefix == parts[1]))).first()
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.secret_hash, _digest(key)):
        return None
    return Principal(row.name, Role(row.role))


def require(*roles: Role) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency that admits a valid key of one of ``roles``."""

    async def dependency(request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key:
            raise HTTPException(
                401,
                "an API key is required: Authorization: Bearer <key>",
                headers={"www-authenticate": "Bearer"},
            )
        async with request.app.state.hub.reads() as session:
            principal = await authenticate(session, key.strip())
        if principal is None:
            raise HTTPException(
                401, "the API key is unknown or revoked", headers={"www-authenticate": "Bearer"}
            )
        if principal.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise HTTPException(
                403, f"role {principal.role.value} may not do this (allowed: {allowed})"
            )
        return principal

    return dependency
