"""Console sessions: a random token in a cookie, its hash in the database, a CSRF token per
session, and the dependency that admits staff of given roles.

The cookie is HttpOnly, SameSite=Strict and (by default) Secure; every state-changing
request must carry the session's CSRF token, as a form field or the ``X-CSRF-Token`` header
htmx sends, so a page on another site cannot act in a signed-in agent's name.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.auth import Principal, Role
from hub.runtime import Hub
from hub.store import ConsoleSession, StaffAccount

COOKIE = "tongdao_console"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
POLL_HEADER = "x-tongdao-poll"
_TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Staff:
    """Who is signed in to this request."""

    session_id: int
    account_id: int
    username: str
    display_name: str
    role: Role
    language: str
    csrf_token: str

    @property
    def principal(self) -> Principal:
        return Principal(self.username, self.role)

    def may(self, *roles: Role) -> bool:
        return self.role in roles


class ConsoleRefusal(Exception):
    """Rendered by the console's handler: a sign-in page for 401, an explanation otherwise."""

    def __init__(self, status: int, message: str, staff: Staff | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.staff = staff


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def open_session(session: AsyncSession, account: StaffAccount, hub: Hub) -> str:
    """A new session for ``account``; returns the cookie's token. The caller commits."""
    now = hub.clock.now()
    token = secrets.token_urlsafe(32)
    session.add(
        ConsoleSession(
            token_hash=_digest(token),
            account_id=account.id or 0,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=hub.settings.console.session_hours),
        )
    )
    # Old sessions of anyone are swept here rather than by a job: sign-ins are rare.
    await session.exec(delete(ConsoleSession).where(ConsoleSession.expires_at < now))  # type: ignore[call-overload]
    return token


async def close_session(hub: Hub, staff: Staff) -> None:
    async with hub.sessions() as session, session.begin():
        await session.exec(delete(ConsoleSession).where(ConsoleSession.id == staff.session_id))  # type: ignore[call-overload]


async def current_staff(request: Request) -> Staff | None:
    token = request.cookies.get(COOKIE)
    if not token or len(token) > 100:
        return None
    hub: Hub = request.app.state.hub
    now = hub.clock.now()
    idle = timedelta(minutes=hub.settings.console.idle_minutes)
    async with hub.sessions() as session, session.begin():
        row = (
            await session.exec(
                select(ConsoleSession, StaffAccount)
                .join(StaffAccount, StaffAccount.id == ConsoleSession.account_id)  # type: ignore[arg-type]
                .where(ConsoleSession.token_hash == _digest(token))
            )
        ).first()
        if row is None:
            return None
        record, account = row
        if record.expires_at <= now or record.last_seen_at + idle <= now or account.disabled_at:
            await session.delete(record)
            return None
        # The queue's own refresh is not someone at the desk: it must not keep a session alive.
        polled = request.headers.get(POLL_HEADER) == "1"
        if not polled and now - record.last_seen_at >= _TOUCH_EVERY:
            record.last_seen_at = now
            session.add(record)
    return Staff(
        session_id=record.id or 0,
        account_id=account.id or 0,
        username=account.username,
        display_name=account.display_name,
        role=Role(account.role),
        language=account.language,
        csrf_token=record.csrf_token,
    )


def staff_only(*roles: Role) -> Callable[[Request], Awaitable[Staff]]:
    """A dependency admitting signed-in staff of ``roles`` (all staff when none are given);
    state-changing methods must also carry the session's CSRF token."""

    async def dependency(request: Request) -> Staff:
        staff = await current_staff(request)
        if staff is None:
            raise ConsoleRefusal(401, "sign in to continue")
        if roles and staff.role not in roles:
            names = " or ".join(r.value for r in roles)
            raise ConsoleRefusal(403, f"this needs the role {names}", staff)
        if request.method not in ("GET", "HEAD"):
            await _check_csrf(request, staff)
        return staff

    return dependency


Anyone = Annotated[Staff, Depends(staff_only())]
"""Any signed-in staff member."""


async def _check_csrf(request: Request, staff: Staff) -> None:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent.encode(), staff.csrf_token.encode()):
        raise ConsoleRefusal(403, "the form has expired or did not come from this console", staff)
