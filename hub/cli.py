"""The ``tongdao`` command: serve, worker, migrate, keys, staff, outbox, envelopes, connectors,
demo, import, audit, report."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlmodel import col, select

from hub import logs
from hub.settings import Settings
from hub.staff_commands import staff_app

if TYPE_CHECKING:
    from rich.progress import Progress, ProgressColumn, TaskID

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
app.add_typer(staff_app, name="staff")

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
    processes: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="HTTP processes sharing the port (PostgreSQL only)"),
    ] = None,
) -> None:
    """Run the HTTP service (and, on SQLite, the workers in the same process)."""
    import uvicorn

    from hub.app import create_app

    settings = _settings()
    count = processes or settings.server.processes
    if count > 1 and settings.database.is_sqlite:
        console.print(
            _error(
                f"{count} serve processes need PostgreSQL: SQLite has one writer, and each "
                "process would run its own workers; run one process, or move to PostgreSQL"
            )
        )
        raise typer.Exit(2)
    options = {
        "host": host or settings.server.host,
        "port": port if port is not None else settings.server.port,
        "log_level": settings.log.level.lower(),
        "access_log": False,
    }
    if count == 1:
        uvicorn.run(create_app(settings, warm_up=True), **options)
        return
    # Each process builds its own app from the same environment and configuration file;
    # uvicorn binds the port once and restarts a process that dies.
    uvicorn.run("hub.app:app_from_environment", factory=True, workers=count, **options)


@app.command()
def worker() -> None:
    """Run the envelope pipeline and the outbox dispatcher (any number, on PostgreSQL)."""
    from hub.runtime import Hub

    settings = _settings()

    async def main() -> None:
        hub = await Hub(settings).open(migrate=False)
        hub.warm_up()
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


# --- audit and regulatory reports ---------------------------------------------------------

audit_app = typer.Typer(
    help="The tamper-evident audit trail: verify it; export a ticket for an inspection.",
    no_args_is_help=True,
)
report_app = typer.Typer(help="Regulatory reports.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(report_app, name="report")
errors_console = Console(stderr=True, soft_wrap=True)
"""Messages beside a document written to standard output."""


def _error(text: object) -> str:
    """A message in red, with whatever the operator typed shown as text, not as markup."""
    from rich.markup import escape

    return f"[red]{escape(str(text))}[/red]"


def _cli_actor() -> str:
    """Who runs the command, for the audit trail, when ``--actor`` does not say."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):
        return "cli:operator"


def _write_output(text: str, output: str | None, *, encoding: str = "utf-8") -> None:
    """Write to the named file, or to standard output (without a byte-order mark)."""
    import sys
    from pathlib import Path

    if output is None:
        sys.stdout.write(text)
        return
    try:
        Path(output).write_text(text, encoding=encoding)
    except OSError as exc:
        errors_console.print(_error(f"cannot write {output}: {exc.strerror}"))
        raise typer.Exit(1) from None


@audit_app.command("verify")
def audit_verify(
    ticket: Annotated[
        str | None, typer.Option("--ticket", help="only this ticket, e.g. TD-20261123-000001")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Recompute every audit event's hash and follow each ticket's chain to its head.

    Exits 1 when an event was edited, removed, reordered or inserted, 0 when all verify.
    """
    import json

    from hub.inspection import standalone_hub, verify_audit
    from hub.registry import ConnectorError
    from hub.runtime import NotMigrated
    from ticket_core import TicketNotFound
    from ticket_core.audit import AuditVerification

    settings = _settings()

    async def main() -> AuditVerification:
        async with standalone_hub(settings) as hub:
            return await verify_audit(hub, ticket)

    try:
        result = asyncio.run(main())
    except (NotMigrated, ConnectorError, TicketNotFound) as exc:
        # Exit 1 means "the trail does not verify"; a command that could not check says 2.
        console.print(_error(exc), soft_wrap=True)
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
    else:
        scope = f"ticket {ticket}" if ticket else f"{result.tickets_checked} tickets"
        print(f"checked {scope}, {result.events_checked} audit events")
        if result.ok:
            print("the audit trail verifies: no event edited, removed, reordered or inserted")
        else:
            print(f"{result.problem_count} problems:")
            for problem in result.problems:
                print(f"  [{problem.kind.value}] {problem}")
            hidden = result.problem_count - len(result.problems)
            if hidden:
                print(f"  … and {hidden} more")
    if not result.ok:
        raise typer.Exit(1)


@audit_app.command("export")
def audit_export(
    number: Annotated[str, typer.Argument(help="the ticket, e.g. TD-20261123-000001")],
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="file to write; default: standard output")
    ] = None,
    actor: Annotated[
        str | None,
        typer.Option(help="who exports, for the audit trail; default: cli:<login name>"),
    ] = None,
) -> None:
    """Export a ticket's whole history as one JSON document for an inspection.

    The export is recorded on the ticket as a ``ticket.exported`` audit event.
    """
    import json

    from rich.markup import escape

    from hub.inspection import export_ticket, standalone_hub
    from hub.registry import ConnectorError
    from hub.runtime import NotMigrated
    from ticket_core import TicketNotFound

    settings = _settings()

    async def main() -> dict[str, object]:
        async with standalone_hub(settings) as hub:
            return await export_ticket(hub, number, actor=actor or _cli_actor())

    try:
        document = asyncio.run(main())
    except (NotMigrated, ConnectorError) as exc:
        errors_console.print(_error(exc))
        raise typer.Exit(2) from None
    except TicketNotFound as exc:
        errors_console.print(_error(exc))
        raise typer.Exit(1) from None
    _write_output(json.dumps(document, ensure_ascii=False, indent=2) + "\n", output)
    verification = document["verification"]
    assert isinstance(verification, dict)
    if output is not None:
        errors_console.print(escape(f"exported {number} to {output}"))
    if not verification["ok"]:
        errors_console.print(
            f"[yellow]warning: the audit chain of {escape(number)} does not verify "
            f"({len(verification['problems'])} problems); see `verification` in the export[/yellow]"
        )


@report_app.command("statistics")
def report_statistics(
    first: Annotated[str, typer.Option("--from", help="first day, YYYY-MM-DD")],
    last: Annotated[str, typer.Option("--to", help="last day (included), YYYY-MM-DD")],
    group: Annotated[str, typer.Option(help="day, week, month or quarter")] = "month",
    by: Annotated[
        list[str] | None,
        typer.Option(
            "--by",
            help="break down by (repeat): kind, channel, category, channel_code, "
            "business_code, cause_code; default all but channel_code",
        ),
    ] = None,
    tz: Annotated[
        str | None, typer.Option("--tz", help="IANA time zone; default reports.timezone")
    ] = None,
    output_format: Annotated[str, typer.Option("--format", help="csv or json")] = "csv",
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="file to write; default: standard output")
    ] = None,
) -> None:
    """Tickets received per period by kind, channel, business category and cause (JR/T 0169
    codes), with counts received/decided/open, first-response and resolution attainment and
    the share decided in time."""
    import json
    from datetime import date

    from rich.markup import escape

    from hub.inspection import standalone_hub, statistics
    from hub.registry import ConnectorError
    from hub.runtime import NotMigrated
    from ticket_core.reports import (
        DEFAULT_DIMENSIONS,
        Dimension,
        Grouping,
        ReportError,
        StatisticsReport,
    )

    def refuse(message: str) -> typer.Exit:
        errors_console.print(_error(message))
        return typer.Exit(2)

    def day(option: str, value: str) -> date:
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise refuse(f"{option} {value!r} is not a date like 2026-11-01") from None

    def choice(option: str, value: str, kind: type[Grouping] | type[Dimension]) -> str:
        allowed = [m.value for m in kind]
        if value not in allowed:
            raise refuse(f"{option} {value!r} is not one of: {', '.join(allowed)}")
        return value

    if output_format not in ("csv", "json"):
        raise refuse(f"--format {output_format!r} is not one of: csv, json")
    start, end = day("--from", first), day("--to", last)
    grouping = Grouping(choice("--group", group, Grouping))
    dimensions = (
        tuple(Dimension(choice("--by", b, Dimension)) for b in by) if by else DEFAULT_DIMENSIONS
    )
    settings = _settings()

    async def main() -> StatisticsReport:
        async with standalone_hub(settings) as hub:
            return await statistics(
                hub, start, end, grouping=grouping, dimensions=dimensions, timezone=tz
            )

    try:
        report = asyncio.run(main())
    except (ReportError, NotMigrated, ConnectorError) as exc:
        raise refuse(str(exc)) from None
    if output_format == "json":
        text = json.dumps(report.as_json(), ensure_ascii=False, indent=2) + "\n"
        _write_output(text, output)
    else:
        # In a file, with a byte-order mark, so spreadsheet programs read Chinese as UTF-8.
        _write_output(report.as_csv(), output, encoding="utf-8-sig")
    if output is not None:
        errors_console.print(
            escape(
                f"wrote statistics for {len(report.periods)} periods, "
                f"{report.total().received} tickets, to {output}"
            )
        )


# --- import: files of records through a connector's batch import ---------------------------

PROGRESS_FROM_ROWS = 1000
"""Files with at least this many rows show a progress bar (unless --no-progress)."""


class _ImportProgress:
    """An import's progress bar, started on the first report only if ``wanted(total)``;
    ``count`` is the column that shows how far (rows, or bytes of the file)."""

    def __init__(self, name: str, count: ProgressColumn, wanted: Callable[[int], bool]) -> None:
        self._name = name
        self._count = count
        self._wanted = wanted
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            if not self._wanted(total):
                return
            from rich.progress import BarColumn, Progress, TimeRemainingColumn

            self._bar = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                self._count,
                TimeRemainingColumn(),
                console=console,
            )
            self._bar.start()
            self._task = self._bar.add_task(f"importing {self._name}", total=total)
        assert self._task is not None
        self._bar.update(self._task, completed=done)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()


@app.command("import")
def import_file(
    connector: Annotated[
        str,
        typer.Argument(
            help="the connector that reads it, e.g. hotline12378; or `tickets` for historical "
            "tickets from another system"
        ),
    ],
    file: Annotated[Path, typer.Argument(help="CSV (UTF-8 or GB18030), XLSX or JSON Lines")],
    mapping: Annotated[
        Path | None,
        typer.Option(help="a TOML file: columns (heading = field), defaults, sheet, encoding"),
    ] = None,
    rejects: Annotated[
        Path | None, typer.Option(help="where bad rows go (default: FILE.rejects.csv or .jsonl)")
    ] = None,
    file_format: Annotated[
        str | None, typer.Option("--format", help="csv, xlsx or jsonl (default: by extension)")
    ] = None,
    assignments: Annotated[
        list[str] | None,
        typer.Option("--set", help="field=value for rows that leave it empty (repeatable)"),
    ] = None,
    progress: Annotated[
        bool | None, typer.Option("--progress/--no-progress", help="default: on large files")
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(help="tickets: the system they come from (part of the dedup key)"),
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option(help="tickets: zone of times without an offset (default: reports.timezone)"),
    ] = None,
    encoding: Annotated[
        str | None, typer.Option(help="tickets: the file's encoding (default: detected)")
    ] = None,
    batch_size: Annotated[
        int, typer.Option(help="tickets: tickets per transaction (and per checkpoint)")
    ] = 10_000,
    restart: Annotated[
        bool,
        typer.Option(help="tickets: read the file from the top again, ignoring its checkpoint"),
    ] = False,
    actor: Annotated[
        str | None, typer.Option(help="tickets: who imports, for the audit trail")
    ] = None,
) -> None:
    """Load a file of records: good rows are stored (a record already there counts as a
    duplicate and changes nothing), bad rows go to the reject file with the reason. Exit 0
    when every row loaded, 1 when some were rejected, 2 when the file could not be loaded.

    `tongdao import tickets FILE --source NAME` loads historical tickets with their
    messages (CSV or JSON Lines, see docs/import.md); interrupted, the same command goes on
    where the last committed batch ended."""
    from hub.ticket_import import TICKETS

    if connector == TICKETS:
        if mapping is not None or assignments:
            console.print("[red]import refused:[/red] --mapping and --set are for connectors")
            raise typer.Exit(2)
        _import_tickets(
            file,
            source=source,
            rejects=rejects,
            file_format=file_format,
            progress=progress,
            timezone=timezone,
            encoding=encoding,
            batch_size=batch_size,
            restart=restart,
            actor=actor or _cli_actor(),
        )
        return
    from rich.markup import escape
    from rich.progress import MofNCompleteColumn

    from hub.importing import (
        ImportFailed,
        load_mapping,
        mapping_from,
        parse_assignments,
        run_import,
    )

    settings = _settings()
    report_progress = _ImportProgress(
        file.name,
        MofNCompleteColumn(),
        wanted=lambda total: progress or (progress is None and total >= PROGRESS_FROM_ROWS),
    )

    try:
        chosen = mapping_from(
            parse_assignments(assignments or []), load_mapping(mapping) if mapping else None
        )
        report = asyncio.run(
            run_import(
                settings,
                connector,
                file,
                file_format=file_format,
                mapping=chosen,
                rejects_path=rejects,
                progress=report_progress,
            )
        )
    except ImportFailed as exc:
        console.print(f"[red]import refused:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    finally:
        report_progress.stop()
    encoding = f", {report.encoding}" if report.encoding else ""
    console.print(
        escape(f"{file.name} ({report.format}{encoding}): {report.rows} row(s)"), highlight=False
    )
    if report.ignored_columns:
        console.print(escape("ignored columns: " + ", ".join(report.ignored_columns)))
    console.print(report.summary(), highlight=False)
    if report.rejected:
        console.print(escape(f"rejected rows and their reasons: {report.rejects_path}"))
        raise typer.Exit(1)
    if report.loaded:
        console.print("a running `tongdao serve` or `tongdao worker` turns them into tickets")


def _import_tickets(
    file: Path,
    *,
    source: str | None,
    rejects: Path | None,
    file_format: str | None,
    progress: bool | None,
    timezone: str | None,
    encoding: str | None,
    batch_size: int,
    restart: bool,
    actor: str,
) -> None:
    from rich.markup import escape
    from rich.progress import DownloadColumn

    from hub.registry import ConnectorError
    from hub.runtime import NotMigrated
    from hub.ticket_import import ImportFailed, run_ticket_import

    if not source:
        console.print(
            "[red]import refused:[/red] give --source, the system the tickets come from "
            "(e.g. --source legacy-crm): with each ticket's id there it keeps reruns harmless"
        )
        raise typer.Exit(2)
    settings = _settings()
    report_progress = _ImportProgress(
        file.name, DownloadColumn(), wanted=lambda _: progress is not False
    )

    try:
        report = asyncio.run(
            run_ticket_import(
                settings,
                file,
                source=source,
                actor=actor,
                file_format=file_format,
                encoding=encoding,
                zone=timezone,
                rejects_path=rejects,
                batch_size=batch_size,
                restart=restart,
                progress=report_progress,
            )
        )
    except (ImportFailed, NotMigrated, ConnectorError) as exc:
        console.print(f"[red]import refused:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    finally:
        report_progress.stop()
    if report.already_finished is not None:
        console.print(
            escape(
                f"{file.name} was imported from {source} already "
                f"({report.already_finished:%Y-%m-%d %H:%M} UTC): {report.summary()}; "
                "--restart reads it again (what is stored counts as duplicate)"
            ),
            highlight=False,
        )
    else:
        resumed = f", resumed at line {report.resumed_at_line}" if report.resumed_at_line else ""
        console.print(
            escape(f"{file.name} ({report.format}, {report.encoding}{resumed})"), highlight=False
        )
        if report.ignored_columns:
            console.print(escape("ignored columns: " + ", ".join(report.ignored_columns)))
        console.print(escape(report.summary()), highlight=False)
        if report.seconds:
            console.print(
                f"{report.customers_created} new customers; {report.seconds:.1f} s", highlight=False
            )
    if report.rejected:
        console.print(escape(f"rejected tickets and their reasons: {report.rejects_path}"))
        raise typer.Exit(1)


classify_app = typer.Typer(help="Message classification: evaluate it.", no_args_is_help=True)
app.add_typer(classify_app, name="classify")


@classify_app.command("eval")
def classify_eval(
    file: Annotated[
        Path, typer.Argument(help="labelled JSON Lines: text, kind[, category, cause]")
    ],
    misses: Annotated[int, typer.Option(help="show this many misclassified lines")] = 0,
) -> None:
    """Score the configured classifier: per-class precision, recall, F1 and a confusion table."""
    from rich.markup import escape as _escape

    from normalizer.classify import TaxonomyError, build_understanding
    from normalizer.evaluate import EvalFileError, evaluate, read_examples

    settings = _settings()
    taxonomy = settings.classify.taxonomy
    try:
        understanding = build_understanding(
            str(taxonomy) if taxonomy else None,
            settings.classify.plugins,
            settings.classify.min_confidence,
        )
        examples = read_examples(file)
    except (EvalFileError, TaxonomyError, OSError) as exc:
        console.print(f"[red]cannot evaluate:[/red] {_escape(str(exc))}")
        raise typer.Exit(2) from None
    report = evaluate(understanding, examples)
    scores = Table(title=f"{file.name}: {report.total} messages")
    for heading in ("kind", "precision", "recall", "F1", "support"):
        scores.add_column(heading, justify="left" if heading == "kind" else "right")
    for score in report.scores:
        scores.add_row(
            score.label,
            f"{score.precision:.2f}",
            f"{score.recall:.2f}",
            f"{score.f1:.2f}",
            str(score.support),
        )
    console.print(scores)
    confusion = Table(title="confusion (rows: labelled, columns: predicted)")
    confusion.add_column("labelled \\ predicted")
    for label in report.labels:
        confusion.add_column(label, justify="right")
    for gold in report.labels:
        confusion.add_row(gold, *(str(report.confusion[gold][p]) for p in report.labels))
    console.print(confusion)
    for example, predicted in report.misses[:misses]:
        console.print(
            _escape(f"line {example.line}: {example.kind} → {predicted}: {example.text}"),
            highlight=False,
        )
    if report.category_accuracy is not None:
        console.print(
            f"category accuracy: {report.category_accuracy:.2f} ({report.category_total} labelled)",
            highlight=False,
        )
    if report.cause_accuracy is not None:
        console.print(
            f"cause accuracy: {report.cause_accuracy:.2f} ({report.cause_total} labelled)",
            highlight=False,
        )
    console.print(f"kind accuracy: {report.kind_accuracy:.2f}", highlight=False)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
