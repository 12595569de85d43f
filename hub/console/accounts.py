"""Staff accounts: argon2 password hashes and lock-out after repeated failures.

Sign-in answers the same for an unknown name and a wrong password, and spends the same
hashing work on both, so neither the answer nor its timing says which names exist.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Literal

import anyio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.auth import STAFF, Role
from hub.store import ConsoleSession, StaffAccount

_hasher = PasswordHasher()
_dummies: dict[int, str] = {}


def _dummy_hash() -> str:
    """A hash made with the current hasher's cost, checked for names that do not exist."""
    key = id(_hasher)
    if key not in _dummies:
        _dummies[key] = _hasher.hash("tongdao: a password nobody has")
    return _dummies[key]


MIN_PASSWORD = 12
Refusal = Literal["invalid", "locked", "disabled"]
_USERNAME = re.compile(r"[A-Za-z0-9._-]{1,120}")


class AccountError(ValueError):
    """An account cannot be created or changed as asked; the message says why."""


class SignInRefused(Exception):
    """Why a sign-in failed, as the sign-in page may tell it."""

    def __init__(self, reason: Refusal, locked_until: datetime | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.locked_until = locked_until


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")


async def create_account(
    session: AsyncSession,
    username: str,
    password: str,
    role: Role,
    now: datetime,
    *,
    display_name: str = "",
    language: str = "zh-CN",
) -> StaffAccount:
    if role not in STAFF:
        raise AccountError(f"console roles are {', '.join(r.value for r in STAFF)}, not {role}")
    if not _USERNAME.fullmatch(username):
        raise AccountError("a username is 1-120 letters, digits, '.', '-' or '_'")
    _check_password(password)
    existing = (
        await session.exec(select(StaffAccount).where(StaffAccount.username == username))
    ).first()
    if existing is not None:
        raise AccountError(f"an account named {username!r} exists")
    account = StaffAccount(
        username=username,
        display_name=display_name or username,
        role=role.value,
        password_hash=_hasher.hash(password),
        language=language,
        created_at=now,
    )
    session.add(account)
    await session.flush()
    return account


async def set_password(session: AsyncSession, username: str, password: str) -> StaffAccount:
    _check_password(password)
    account = await _named(session, username)
    account.password_hash = _hasher.hash(password)
    account.failed_logins = 0
    account.locked_until = None
    session.add(account)
    await _end_sessions(session, account)
    return account


async def set_disabled(
    session: AsyncSession, username: str, disabled: bool, now: datetime
) -> StaffAccount:
    account = await _named(session, username)
    account.disabled_at = now if disabled else None
    session.add(account)
    await _end_sessions(session, account)
    return account


async def _end_sessions(session: AsyncSession, account: StaffAccount) -> None:
    """A new password or a disabled account signs every browser of the account out."""
    await session.exec(delete(ConsoleSession).where(ConsoleSession.account_id == account.id))  # type: ignore[call-overload]


async def _named(session: AsyncSession, username: str) -> StaffAccount:
    account = (
        await session.exec(select(StaffAccount).where(StaffAccount.username == username))
    ).first()
    if account is None:
        raise AccountError(f"no account named {username!r}")
    return account


async def sign_in(
    session: AsyncSession,
    username: str,
    password: str,
    now: datetime,
    *,
    failures_to_lock: int,
    lock_for: timedelta,
) -> StaffAccount:
    """The account, or ``SignInRefused``. The caller commits either way: failures count.

    The hash is checked in a worker thread (it takes a good part of a second by design, and
    the event loop serves every channel meanwhile). A locked account says so only to someone
    who gave its right password; anyone else hears "invalid", as for an unknown name.
    """
    query = select(StaffAccount).where(StaffAccount.username == username)
    account = (await session.exec(query)).first()
    hashed = account.password_hash if account is not None else _dummy_hash()
    correct = await anyio.to_thread.run_sync(_verify, hashed, password)
    if account is None:
        raise SignInRefused("invalid")
    # Counted under the row's lock, so attempts racing each other all count.
    account = (await session.exec(query.with_for_update())).one()
    if account.locked_until is not None and account.locked_until > now:
        raise SignInRefused("locked" if correct else "invalid", account.locked_until)
    if not correct:
        account.failed_logins += 1
        if account.failed_logins >= failures_to_lock:
            account.locked_until = now + lock_for
            account.failed_logins = 0
        session.add(account)
        raise SignInRefused("invalid")
    if account.disabled_at is not None:
        raise SignInRefused("disabled")
    account.failed_logins = 0
    account.locked_until = None
    if _hasher.check_needs_rehash(account.password_hash):
        account.password_hash = await anyio.to_thread.run_sync(_hasher.hash, password)
    session.add(account)
    return account


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False
