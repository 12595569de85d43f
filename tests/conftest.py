"""Fixtures shared by the suite: databases (SQLite always, PostgreSQL when reachable), a hub
on a manual clock, a stand-in app backend, and the HTTP API on a real loopback port."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy.engine import make_url

from hub.app import create_app
from hub.auth import Role, create_key
from hub.console import accounts
from hub.runtime import Hub
from hub.settings import DatabaseSettings, Settings
from hub.store import create_engine, upgrade
from hub.testing import SignedWebhookReceiver, serving
from tests.app_pushes import APP_SECRET
from ticket_core import ManualClock

PG_URL = os.environ.get(
    "TONGDAO_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REQUIRE_PG = os.environ.get("TONGDAO_TEST_REQUIRE_POSTGRES") == "1"
_pg_state: dict[str, Any] = {}
_sqlite_state: dict[str, Path] = {}
_PLAIN_HTTP = False
"""The API is served over plain HTTP on loopback; skipping the CA bundle saves each test
tens of milliseconds."""


def _dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


async def _pg_setup_template() -> str:
    template = f"tongdao_tpl_{os.getpid()}"
    conn = await asyncpg.connect(_dsn(PG_URL), timeout=3)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{template}"')
    finally:
        await conn.close()
    engine = create_engine(DatabaseSettings(url=str(make_url(PG_URL).set(database=template))))
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    return template


async def _postgres_template() -> str:
    """Migrate one template database per run; each test copies it. Skips (or, in CI, fails)
    plainly when no PostgreSQL answers."""
    if "template" in _pg_state:
        return _pg_state["template"]
    if "error" not in _pg_state:
        try:
            _pg_state["template"] = await _pg_setup_template()
            return _pg_state["template"]
        except Exception as exc:
            _pg_state["error"] = (
                f"PostgreSQL not reachable at {PG_URL} ({type(exc).__name__}: {exc})"
            )
    message = _pg_state["error"] + "; set TONGDAO_TEST_POSTGRES_URL to run these tests"
    if REQUIRE_PG:
        pytest.fail(message)
    pytest.skip(message)


async def _sqlite_template(factory: pytest.TempPathFactory) -> Path:
    """Migrate one SQLite file per process; each test copies it (the engine's close
    checkpoints the WAL into the file)."""
    if "sqlite" not in _sqlite_state:
        path = factory.mktemp("sqlite-template") / "tongdao.db"
        engine = create_engine(DatabaseSettings(url=f"sqlite+aiosqlite:///{path}"))
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()
        _sqlite_state["sqlite"] = path
    return _sqlite_state["sqlite"]


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(_dsn(PG_URL), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A fresh, migrated database on each backend."""
    if request.param == "sqlite":
        shutil.copyfile(await _sqlite_template(tmp_path_factory), tmp_path / "tongdao.db")
        yield f"sqlite+aiosqlite:///{tmp_path}/tongdao.db"
        return
    template = await _postgres_template()
    name = f"tongdao_t_{uuid.uuid4().hex[:12]}"
    await _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield str(make_url(PG_URL).set(database=name).render_as_string(hide_password=False))
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/tongdao.db"


@pytest.fixture(autouse=True)
def _quick_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 at its production cost takes most of a second per hash on this machine; no
    test proves anything about the cost, so console accounts hash cheaply in tests."""
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
async def receiver(clock: ManualClock) -> AsyncIterator[SignedWebhookReceiver]:
    """The stand-in app backend behind ``callback_url``."""
    stand_in = SignedWebhookReceiver(secret=APP_SECRET, now=clock.now)
    await stand_in.start()
    yield stand_in
    await stand_in.stop()


@pytest.fixture
def settings(database_url: str, receiver: SignedWebhookReceiver) -> Settings:
    return Settings(
        database={"url": database_url},
        worker={"in_process": False},
        outbox={"backoff_initial": 2, "max_attempts": 4, "http_timeout": 2},
        connectors={"app": {"secret": APP_SECRET, "callback_url": receiver.url}},
    )


@pytest.fixture
async def hub(settings: Settings, clock: ManualClock) -> AsyncIterator[Hub]:
    instance = await Hub(settings, clock=clock).open(migrate=True)
    yield instance
    await instance.close()


@pytest.fixture
async def api(hub: Hub) -> AsyncIterator[httpx.AsyncClient]:
    """The whole app over real HTTP on loopback; workers are driven by the test (``drain``)."""
    async with (
        serving(create_app(hub=hub, run_workers=False)) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=10, verify=_PLAIN_HTTP) as client,
    ):
        yield client


@pytest.fixture
def make_key(hub: Hub) -> Callable[[Role], Awaitable[dict[str, str]]]:
    async def make(role: Role) -> dict[str, str]:
        async with hub.sessions() as session, session.begin():
            key = await create_key(session, f"test-{role.value}", role, hub.clock.now())
        return {"authorization": f"Bearer {key}"}

    return make


async def drain(hub: Hub, rounds: int = 50) -> None:
    """Run both workers until nothing is due (time does not move)."""
    for _ in range(rounds):
        if not await hub.work_once():
            return
    raise AssertionError(f"workers still busy after {rounds} rounds")


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Each process (every xdist worker too) drops the template database it made."""
    name = _pg_state.get("template")
    if name:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if "error" in _pg_state:
        terminalreporter.write_line(
            f"NOTE: PostgreSQL tests were skipped: {_pg_state['error']}", yellow=True
        )
    elif "template" in _pg_state:
        terminalreporter.write_line(f"PostgreSQL tests ran against {make_url(PG_URL).host}")
