"""``tongdao staff``: the console's accounts (add, password, disable, enable, list).

Passwords are read from a prompt, or with ``--password-stdin`` from standard input (for
provisioning scripts), never from the command line where ``ps`` and shell history see them.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.auth import STAFF, Role
from hub.console.accounts import AccountError, create_account, set_disabled, set_password
from hub.settings import Settings
from hub.store import StaffAccount, create_engine, is_up_to_date, session_factory
from ticket_core import SystemClock

staff_app = typer.Typer(help="Staff accounts for the agent console.", no_args_is_help=True)
_out = Console()
T = TypeVar("T")
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="read the password from standard input")
]


def _in_transaction(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    try:
        settings = Settings()
    except Exception as exc:
        _out.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None

    async def main() -> T:
        engine = create_engine(settings.database)
        try:
            if not await is_up_to_date(engine):
                _out.print("[red]the database is not migrated: run `tongdao migrate`[/red]")
                raise typer.Exit(1)
            async with session_factory(engine)() as session, session.begin():
                return await work(session)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except AccountError as exc:
        _out.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt("password", hide_input=True, confirmation_prompt=True)


@staff_app.command("add")
def add(
    username: str,
    role: Annotated[str, typer.Option(help="agent, supervisor, auditor or admin")],
    display_name: Annotated[str, typer.Option(help="shown in the console")] = "",
    language: Annotated[str, typer.Option(help="zh-CN or en")] = "zh-CN",
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a console account. An agent who also takes tickets by assignment needs an
    agent of the same name (``PUT /api/v1/agents/{name}``)."""
    if role not in {r.value for r in STAFF}:
        _out.print(f"[red]unknown role {role!r}[/red]; one of: {', '.join(r.value for r in STAFF)}")
        raise typer.Exit(2)
    if language not in ("zh-CN", "en"):
        _out.print("[red]language is zh-CN or en[/red]")
        raise typer.Exit(2)
    password = _password(password_stdin)

    async def work(session: AsyncSession) -> None:
        await create_account(
            session,
            username,
            password,
            Role(role),
            SystemClock().now(),
            display_name=display_name,
            language=language,
        )

    _in_transaction(work)
    _out.print(f"created {role} account {username!r}")


@staff_app.command("password")
def password(username: str, password_stdin: PasswordStdin = False) -> None:
    """Set a new password; this also lifts a lock-out."""
    new = _password(password_stdin)

    async def work(session: AsyncSession) -> None:
        await set_password(session, username, new)

    _in_transaction(work)
    _out.print(f"password of {username!r} changed")


@staff_app.command("disable")
def disable(username: str) -> None:
    """Stop an account signing in; its open sessions end at their next request."""

    async def work(session: AsyncSession) -> None:
        await set_disabled(session, username, True, SystemClock().now())

    _in_transaction(work)
    _out.print(f"{username!r} disabled")


@staff_app.command("enable")
def enable(username: str) -> None:
    async def work(session: AsyncSession) -> None:
        await set_disabled(session, username, False, SystemClock().now())

    _in_transaction(work)
    _out.print(f"{username!r} enabled")


@staff_app.command("list")
def list_accounts() -> None:
    async def work(session: AsyncSession) -> list[StaffAccount]:
        return list(
            (await session.exec(select(StaffAccount).order_by(col(StaffAccount.username)))).all()
        )

    table = Table("username", "name", "role", "language", "locked until", "disabled")
    for a in _in_transaction(work):
        table.add_row(
            a.username,
            escape(a.display_name),
            a.role,
            a.language,
            a.locked_until.isoformat() if a.locked_until else "",
            "yes" if a.disabled_at else "",
        )
    _out.print(table)
