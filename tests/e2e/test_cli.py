"""The ``tongdao`` command as an operator runs it, in a real subprocess."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.auth import authenticate
from hub.settings import DatabaseSettings
from hub.store import create_engine, head_revision, session_factory
from hub.testing import free_port
from tests.tongdao_cli import run

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_migrate_then_keys_create_prints_a_working_key_as_last_line(tmp_path: Path) -> None:
    migrated = run(tmp_path, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert f"schema at revision {head_revision()}" in migrated.stdout
    created = run(tmp_path, "keys", "create", "--name", "ops-desk", "--role", "supervisor")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("td_")

    async def check() -> None:
        engine = create_engine(DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/cli.db"))
        async with session_factory(engine)() as session:
            principal = await authenticate(session, key)
        await engine.dispose()
        assert principal is not None
        assert (principal.name, principal.role.value) == ("ops-desk", "supervisor")

    import asyncio

    asyncio.run(check())


def test_keys_create_refuses_an_unknown_role_naming_the_valid_ones(tmp_path: Path) -> None:
    run(tmp_path, "migrate")
    result = run(tmp_path, "keys", "create", "--name", "x", "--role", "wizard")
    assert result.returncode == 2
    assert "admin, agent, supervisor, auditor, integrator" in result.stdout


def test_keys_create_on_an_unmigrated_database_says_to_migrate(tmp_path: Path) -> None:
    result = run(tmp_path, "keys", "create", "--name", "x", "--role", "admin")
    assert result.returncode == 1
    assert "tongdao migrate" in result.stdout


def test_config_file_that_does_not_exist_is_named(tmp_path: Path) -> None:
    result = run(tmp_path, "migrate", TONGDAO_CONFIG=str(tmp_path / "missing.toml"))
    assert result.returncode == 2
    assert "missing.toml" in result.stdout


def test_connectors_list_shows_installed_connectors_with_health(tmp_path: Path) -> None:
    result = run(tmp_path, "connectors", "list", TONGDAO_CONNECTORS__APP__SECRET=SECRET)
    assert result.returncode == 0, result.stderr
    app = next(line for line in result.stdout.splitlines() if " app " in line)
    assert "tongdao" in app and "ok: inbound only: no callback_url configured" in app
    sms = next(line for line in result.stdout.splitlines() if " sms " in line)
    assert "tongdao-sms-gateway" in sms and "not enabled" in sms


def test_connectors_check_reports_a_dead_peer(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        "connectors",
        "check",
        "app",
        TONGDAO_CONNECTORS__APP__SECRET=SECRET,
        TONGDAO_CONNECTORS__APP__CALLBACK_URL=f"http://127.0.0.1:{free_port()}/cb",
    )
    assert result.returncode == 1
    assert "app: configuration valid; peer FAILING: callback_url unreachable" in result.stdout


def test_connectors_check_names_a_config_error(tmp_path: Path) -> None:
    result = run(tmp_path, "connectors", "check", "app", TONGDAO_CONNECTORS__APP__SECRET="nope")
    assert result.returncode == 2
    assert "connectors.app.secret" in result.stdout


@pytest.mark.parametrize(
    "command", [("outbox", "list"), ("envelopes", "list"), ("outbox", "replay", "--dead")]
)
def test_operator_commands_run_on_an_empty_hub(tmp_path: Path, command: tuple[str, ...]) -> None:
    run(tmp_path, "migrate")
    result = run(tmp_path, *command)
    assert result.returncode == 0, result.stdout + result.stderr


def test_webhooks_create_list_rotate_and_replay(tmp_path: Path) -> None:
    run(tmp_path, "migrate")
    private = {"TONGDAO_WEBHOOKS__ALLOW_PRIVATE_TARGETS": "true"}
    refused = run(tmp_path, "webhooks", "create", "--url", "http://127.0.0.1:9/x", "--event", "*")
    assert refused.returncode == 2 and "loopback" in refused.stdout
    created = run(
        tmp_path,
        "webhooks",
        "create",
        "--url",
        "http://127.0.0.1:9/x",
        "--event",
        "ticket.*",
        "--description",
        "core banking",
        **private,
    )
    assert created.returncode == 0, created.stdout + created.stderr
    assert created.stdout.strip().splitlines()[-1].startswith("whsec_")
    listed = run(tmp_path, "webhooks", "list")
    assert "core banking" in listed.stdout and "active" in listed.stdout
    rotated = run(tmp_path, "webhooks", "rotate", "1", "--overlap-hours", "2")
    assert rotated.returncode == 0
    assert rotated.stdout.strip().splitlines()[-1] != created.stdout.strip().splitlines()[-1]
    replayed = run(tmp_path, "webhooks", "replay", "1", "--since", "2026-01-01T00:00:00+08:00")
    assert "0 deliveries queued again" in replayed.stdout


def test_webhooks_rotate_refuses_a_second_rotation_during_the_overlap(tmp_path: Path) -> None:
    run(tmp_path, "migrate")
    run(
        tmp_path,
        "webhooks",
        "create",
        "--url",
        "http://127.0.0.1:9/x",
        "--event",
        "*",
        TONGDAO_WEBHOOKS__ALLOW_PRIVATE_TARGETS="true",
    )
    assert run(tmp_path, "webhooks", "rotate", "1").returncode == 0
    again = run(tmp_path, "webhooks", "rotate", "1")
    assert again.returncode == 1
    assert "overlap is still running" in again.stdout
