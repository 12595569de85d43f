"""The ``tongdao`` command: serve, worker, migrate, keys, outbox, envelopes, connectors, demo."""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlmodel import col, select

from hub import logs
from hub.settings import Settings

app = typer.Typer(
    help="Tongdao, the omnichannel hub for bank customer service.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
keys_app = typer.Typer(help="API keys for the REST API.", no_args_is_help=True)
outbox_app = typer.Typer(help="Outbound deliveries: list, replay.", no_args_is_help=True)
envelopes_app = typer.Typer(help="Stored inbound envelopes.", no_args_is_help=True)
connectors_app = typer.Typer(help="Installed connectors.", no_args_is_help=True)
webhooks_app = typer.Typer(help="Webhook subscriptions of core systems.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(outbox_app, name="outbox")
app.add_typer(envelopes_app, name="envelopes")
app.add_typer(connectors_app, name="connectors")
app.add_typer(webhooks_app, name="webhooks")

console = Console()


def _settings() -> Settings:
    try:
        settings = Settings()
    except Exception as exc:
        console.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None
    logs.configure(settings.log.level, settings.log.json_format)
    return settings


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on")] = None,
) -> None:
    """Run the HTTP service (and, on SQLite, the workers in the same process)."""
    import uvicorn

    from hub.app import create_app

    settings = _settings()
    uvicorn.run(
        create_app(settings),
        host=host or settings.server.host,
        port=port if port is not None else settings.server.port,
        log_level=settings.log.level.lower(),
        access_log=False,
    )


@app.command()
def worker() -> None:
    """Run the envelope pipeline and the outbox dispatcher (any number, on PostgreSQL)."""
    from hub.runtime import Hub

    settings = _settings()

    async def main() -> None:
        hub = await Hub(settings).open(migrate=False)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        console.print("worker started", style="green")
        try:
            await hub.run_workers(stop)
        finally:
            await hub.close()

    asyncio.run(main())


@app.command()
def migrate(
    new_revision: Annotated[
        str | None,
        typer.Option("--new-revision", help="developers: write a migration for model changes"),
    ] = None,
) -> None:
    """Bring the database schema up to date."""
    from hub.store import create_engine, current_revision, upgrade
    from hub.store.migrate import autogenerate

    settings = _settings()

    async def main() -> str | None:
        engine = create_engine(settings.database)
        try:
            await upgrade(engine)
            if new_revision:
                await autogenerate(engine, new_revision)
            return await current_revision(engine)
        finally:
            await engine.dispose()

    console.print(f"schema at revision {asyncio.run(main())}")


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="who or what uses the key")],
    role: Annotated[str, typer.Option(help="admin, agent, supervisor, auditor or integrator")],
) -> None:
    """Create an API key; the key is printed once, as the last line."""
    from hub.auth import Role, create_key
    from hub.store import create_engine, is_up_to_date, session_factory
    from ticket_core import SystemClock

    try:
        chosen = Role(role)
    except ValueError:
        console.print(
            f"[red]unknown role {role!r}[/red]; one of: {', '.join(r.value for r in Role)}"
        )
        raise typer.Exit(2) from None
    settings = _settings()

    async def main() -> str:
        engine = create_engine(settings.database)
        try:
            if not await is_up_to_date(engine):
                console.print("[red]the database is not migrated: run `tongdao migrate`[/red]")
                raise typer.Exit(1)
            async with session_factory(engine)() as session, session.begin():
                return await create_key(session, name, chosen, SystemClock().now())
        finally:
            await engine.dispose()

    key = asyncio.run(main())
    console.print(f"created {chosen.value} key for {name!r}; it is shown only now:")
    print(key)


def _with_sessions(fn):  # type: ignore[no-untyped-def]
    from hub.store import create_engine, session_factory

    settings = _settings()

    async def main():  # type: ignore[no-untyped-def]
        engine = create_engine(settings.database)
        try:
            return await fn(session_factory(engine))
        finally:
            await engine.dispose()

    return asyncio.run(main())


@outbox_app.command("list")
def outbox_list(
    status: Annotated[str | None, typer.Option(help="pending, delivered or dead")] = None,
    limit: int = 50,
) -> None:
    """Show outbound deliveries, newest first."""
    from hub.store import OutboxRow

    async def fetch(sessions):  # type: ignore[no-untyped-def]
        query = select(OutboxRow).order_by(col(OutboxRow.id).desc()).limit(limit)
        if status:
            query = query.where(OutboxRow.status == status)
        async with sessions() as session:
            return (await session.exec(query)).all()

    table = Table("id", "target", "purpose", "status", "attempts", "next attempt", "last error")
    for row in _with_sessions(fetch):
        table.add_row(
            str(row.id),
            row.target,
            row.purpose,
            row.status,
            str(row.attempts),
            row.next_attempt_at.isoformat(timespec="seconds"),
            row.last_error or "",
        )
    console.print(table)


@outbox_app.command("replay")
def outbox_replay(
    row_id: Annotated[int | None, typer.Argument(help="the row to send again")] = None,
    dead: Annotated[bool, typer.Option("--dead", help="every dead-lettered row")] = False,
) -> None:
    """Send a delivery again with a fresh retry budget and the same idempotency key."""
    from hub import outbox
    from ticket_core import SystemClock

    if (row_id is None) == (not dead):
        console.print("[red]give a row id or --dead[/red]")
        raise typer.Exit(2)

    async def run(sessions):  # type: ignore[no-untyped-def]
        now = SystemClock().now()
        async with sessions() as session, session.begin():
            if dead:
                return await outbox.replay_dead(session, now)
            return 1 if await outbox.replay(session, row_id, now) else 0

    count = _with_sessions(run)
    if count == 0 and not dead:
        console.print(f"[red]no outbox row {row_id}[/red]")
        raise typer.Exit(1)
    console.print(f"{count} deliver{'y' if count == 1 else 'ies'} queued again")


@envelopes_app.command("list")
def envelopes_list(
    status: Annotated[str | None, typer.Option(help="pending, processed or failed")] = None,
    limit: int = 50,
) -> None:
    """Show stored inbound envelopes, newest first."""
    from hub.store import Envelope

    async def fetch(sessions):  # type: ignore[no-untyped-def]
        query = select(Envelope).order_by(col(Envelope.id).desc()).limit(limit)
        if status:
            query = query.where(Envelope.status == status)
        async with sessions() as session:
            return (await session.exec(query)).all()

    table = Table("id", "channel", "receipt", "status", "attempts", "ticket", "last error")
    for row in _with_sessions(fetch):
        table.add_row(
            str(row.id),
            row.channel,
            row.receipt,
            row.status,
            str(row.attempts),
            row.ticket_number or "",
            row.last_error or "",
        )
    console.print(table)


@connectors_app.command("list")
def connectors_list() -> None:
    """Show installed connectors: package, version, capabilities, and health when enabled."""
    from hub.registry import discover

    settings = _settings()
    found = discover()
    health = asyncio.run(_health(settings, [n for n in found if n in settings.connectors]))
    table = Table("name", "kind", "package", "version", "sdk", "capabilities", "health")
    for name, item in sorted(found.items()):
        caps = getattr(item.cls, "capabilities", None)
        state = health.get(name)
        table.add_row(
            name,
            item.kind,
            item.distribution or "?",
            item.version or "?",
            item.cls.sdk_version,
            caps.describe() if caps else "context lookup",
            "not enabled" if state is None else ("ok" if state[0] else "FAILING") + f": {state[1]}",
        )
    console.print(table)


@connectors_app.command("check")
def connectors_check(name: Annotated[str, typer.Argument(help="the connector to check")]) -> None:
    """Validate a connector's configuration and ask its peer whether it answers."""
    settings = _settings()
    if name not in settings.connectors:
        console.print(f"[red]no [connectors.{name}] table in the configuration[/red]")
        raise typer.Exit(2)
    health = asyncio.run(_health(settings, [name]))
    ok, detail = health[name]
    console.print(f"{name}: configuration valid; peer {'ok' if ok else 'FAILING'}: {detail}")
    if not ok:
        raise typer.Exit(1)


async def _health(settings: Settings, names: list[str]) -> dict[str, tuple[bool, str]]:
    """Build the named connectors from the configuration (refusing bad config) and ask each
    for its health."""
    import httpx

    from hub.registry import ConnectorError, Registry
    from hub.sdk import ConnectorContext
    from hub.testing.memory_ingest import InMemoryIngest
    from ticket_core import SystemClock

    wanted = {name: settings.connectors[name] for name in names}
    async with httpx.AsyncClient(timeout=settings.outbox.http_timeout) as http:
        try:
            registry = Registry.from_config(
                wanted,
                lambda name: ConnectorContext(name, InMemoryIngest(), http, SystemClock()),
            )
        except ConnectorError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
        report = await registry.health()
    return {name: (h.ok, h.detail) for name, h in report.items()}


@connectors_app.command("new")
def connectors_new(
    name: Annotated[str, typer.Argument(help="the channel's name, e.g. kiosk")],
    directory: Annotated[str, typer.Option("--dir", help="where to create the package")] = ".",
) -> None:
    """Scaffold a connector as its own package, with tests that already run the kit."""
    from pathlib import Path

    from hub.scaffold import ScaffoldError, create_connector_package

    try:
        target = create_connector_package(name, Path(directory))
    except ScaffoldError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(f"created {target}")
    console.print(f"next: pip install -e {target} && pytest {target}/tests")


@webhooks_app.command("create")
def webhooks_create(
    url: Annotated[str, typer.Option(help="the endpoint, http(s)")],
    events: Annotated[
        list[str], typer.Option("--event", help="an event or pattern, e.g. ticket.*")
    ],
    description: Annotated[str, typer.Option(help="what this endpoint is")] = "",
    clear_text: Annotated[bool, typer.Option(help="deliver message text unmasked")] = False,
) -> None:
    """Subscribe an endpoint; the secret is printed once, as the last line."""
    from hub import webhooks
    from ticket_core import SystemClock

    settings = _settings()
    unknown = webhooks.check_patterns(events)
    if unknown:
        console.print(
            f"[red]no event matches {', '.join(unknown)}[/red]; events: "
            + ", ".join(webhooks.EVENT_TYPES)
        )
        raise typer.Exit(2)
    try:
        asyncio.run(webhooks.check_target(url, settings.webhooks.allow_private_targets))
    except webhooks.TargetRefused as exc:
        console.print(f"[red]url refused: {exc}[/red]")
        raise typer.Exit(2) from None

    async def create(sessions):  # type: ignore[no-untyped-def]
        now = SystemClock().now()
        subscription = webhooks.new_subscription(url, events, description, clear_text, now)
        async with sessions() as session, session.begin():
            session.add(subscription)
        return subscription

    subscription = _with_sessions(create)
    console.print(
        f"subscription {subscription.id} created for {url}; its secret is shown only now:"
    )
    print(subscription.secret)


@webhooks_app.command("list")
def webhooks_list() -> None:
    """Show subscriptions with their state (active, paused, disabled and why)."""
    from hub.store import WebhookSubscription

    async def fetch(sessions):  # type: ignore[no-untyped-def]
        async with sessions() as session:
            return (await session.exec(select(WebhookSubscription))).all()

    table = Table("id", "url", "events", "state", "failures", "description")
    for row in _with_sessions(fetch):
        state = "active" if row.active else f"disabled: {row.disabled_reason or ''}"
        if row.active and row.paused_until:
            state = f"paused until {row.paused_until.isoformat(timespec='seconds')}"
        table.add_row(
            str(row.id),
            row.url,
            ", ".join(row.events),
            state,
            str(row.consecutive_failures),
            row.description,
        )
    console.print(table)


@webhooks_app.command("rotate")
def webhooks_rotate(
    subscription_id: Annotated[int, typer.Argument()],
    overlap_hours: Annotated[
        float, typer.Option(help="the old secret keeps signing this long")
    ] = 24,
) -> None:
    """Give a subscription a new secret, printed once as the last line."""
    from hub import webhooks
    from hub.store import WebhookSubscription
    from ticket_core import SystemClock

    async def rotate(sessions):  # type: ignore[no-untyped-def]
        now = SystemClock().now()
        async with sessions() as session, session.begin():
            row = await session.get(WebhookSubscription, subscription_id)
            if row is None:
                return None
            try:
                secret = webhooks.rotate_secret(row, now, overlap_hours)
            except webhooks.RotationOverlap as exc:
                return exc
            session.add(row)
            return secret

    secret = _with_sessions(rotate)
    if secret is None:
        console.print(f"[red]no subscription {subscription_id}[/red]")
        raise typer.Exit(1)
    if isinstance(secret, Exception):
        console.print(f"[red]{secret}[/red]")
        raise typer.Exit(1)
    console.print(
        f"new secret for subscription {subscription_id}; the old one signs too for "
        f"{overlap_hours:g} h:"
    )
    print(secret)


@webhooks_app.command("replay")
def webhooks_replay(
    subscription_id: Annotated[int, typer.Argument()],
    since: Annotated[str, typer.Option(help="ISO time, e.g. 2026-11-23T00:00:00+08:00")],
) -> None:
    """Deliver again everything a subscription was sent since a time (same webhook ids)."""
    from datetime import datetime

    from hub import webhooks
    from ticket_core import SystemClock

    try:
        moment = datetime.fromisoformat(since)
    except ValueError:
        console.print(f"[red]{since!r} is not an ISO time[/red]")
        raise typer.Exit(2) from None
    if moment.tzinfo is None:
        console.print("[red]give the time with its zone, e.g. +08:00[/red]")
        raise typer.Exit(2)

    async def run(sessions):  # type: ignore[no-untyped-def]
        async with sessions() as session, session.begin():
            return await webhooks.requeue_since(
                session, subscription_id, moment, SystemClock().now()
            )

    console.print(f"{_with_sessions(run)} deliveries queued again")


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="port for the hub")] = 8000,
    messages: Annotated[int, typer.Option(help="demo messages to push")] = 3,
) -> None:
    """Run the hub on SQLite with the app channel and a stand-in app backend, and push a
    little demo traffic through the real, signed app channel."""
    from hub.demo import prepare_config, run_demo

    prepare_config()
    asyncio.run(run_demo(port=port, messages=messages, console=console))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
