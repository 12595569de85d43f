"""Configuration sources (hub/settings.py) and connector discovery and config (hub/registry.py)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.app import AppConfig, AppConnector
from hub.registry import ConnectorError, Discovered, Registry, discover
from hub.sdk import (
    SDK_VERSION,
    ChannelConnector,
    ConnectorConfig,
    ConnectorContext,
    DeliveryResult,
    InboundEnvelope,
    InboundMessage,
    OutboundMessage,
    check_compatible,
)
from hub.settings import DEFAULT_DATABASE_URL, Settings
from ticket_core import SystemClock

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_SECRET = "whsec_c2VjcmV0LW9mLXNvbWVib2R5LWVsc2UtZW50aXJlbHk="

ContextFor = Callable[[str], ConnectorContext]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No TONGDAO_* variable from the outer shell may leak into these tests."""
    for name in list(os.environ):
        if name.upper().startswith("TONGDAO_"):
            monkeypatch.delenv(name)


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "tongdao.toml"
    path.write_text(
        f"""
[database]
url = "sqlite+aiosqlite:///{tmp_path}/from-file.db"

[server]
port = 9123

[outbox]
max_attempts = 5

[connectors.app]
secret = "{SECRET}"
callback_url = "http://127.0.0.1:9/callback"
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("TONGDAO_CONFIG", str(path))
    return path


def test_toml_file_named_by_tongdao_config_is_read(config_file: Path, tmp_path: Path) -> None:
    settings = Settings()
    assert settings.database.url == f"sqlite+aiosqlite:///{tmp_path}/from-file.db"
    assert settings.server.port == 9123
    assert settings.outbox.max_attempts == 5
    assert settings.connectors == {
        "app": {"secret": SECRET, "callback_url": "http://127.0.0.1:9/callback"}
    }


def test_database_url_env_var_overrides_the_file(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TONGDAO_DATABASE__URL", "postgresql+asyncpg://db.internal/tongdao")
    settings = Settings()
    assert settings.database.url == "postgresql+asyncpg://db.internal/tongdao"
    assert settings.server.port == 9123


def test_connector_secret_env_var_overrides_the_file_and_keeps_other_keys(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TONGDAO_CONNECTORS__APP__SECRET", OTHER_SECRET)
    assert Settings().connectors["app"] == {
        "secret": OTHER_SECRET,
        "callback_url": "http://127.0.0.1:9/callback",
    }


def test_tongdao_config_naming_a_missing_file_is_an_error_naming_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nowhere" / "tongdao.toml"
    monkeypatch.setenv("TONGDAO_CONFIG", str(missing))
    with pytest.raises(FileNotFoundError) as caught:
        Settings()
    assert str(missing) in str(caught.value)


def test_without_a_config_file_the_database_defaults_to_sqlite_in_var() -> None:
    settings = Settings()
    assert settings.database.url == DEFAULT_DATABASE_URL
    assert "./var/" in settings.database.url


@pytest.mark.parametrize(
    ("url", "in_process"),
    [
        ("sqlite+aiosqlite:///./var/tongdao.db", True),
        ("postgresql+asyncpg://postgres@127.0.0.1:5432/tongdao", False),
    ],
)
def test_workers_run_in_process_by_default_only_on_sqlite(url: str, in_process: bool) -> None:
    assert Settings(database={"url": url}).workers_in_process is in_process


def test_explicit_worker_in_process_overrides_the_default() -> None:
    settings = Settings(
        database={"url": "postgresql+asyncpg://db/tongdao"}, worker={"in_process": True}
    )
    assert settings.workers_in_process is True


def test_env_var_decides_workers_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TONGDAO_DATABASE__URL", "postgresql+asyncpg://db/tongdao")
    assert Settings().workers_in_process is False


# --- registry -------------------------------------------------------------------------------


@pytest.fixture
async def context_for() -> AsyncIterator[ContextFor]:
    async with httpx.AsyncClient() as http:
        yield lambda name: ConnectorContext(
            name=name, ingest=object(), http=http, clock=SystemClock()
        )


def test_discover_finds_the_builtin_app_connector_through_its_entry_point() -> None:
    found = discover()
    assert "app" in found
    app = found["app"]
    assert app.name == "app"
    assert app.cls is AppConnector
    assert app.distribution == "tongdao"
    assert app.version


async def test_from_config_builds_the_configured_app_connector(context_for: ContextFor) -> None:
    registry = Registry.from_config(
        {"app": {"secret": SECRET, "callback_url": "http://127.0.0.1:9/cb"}}, context_for
    )
    connector = registry.get("app")
    assert isinstance(connector, AppConnector)
    assert isinstance(connector.config, AppConfig)
    assert connector.config.secret == SECRET
    assert connector.context.name == "app"
    assert "app" in registry


async def test_unconfigured_connector_is_not_enabled(context_for: ContextFor) -> None:
    registry = Registry.from_config({}, context_for)
    assert "app" not in registry
    assert registry.items() == []


async def test_configuring_an_uninstalled_connector_names_it_and_lists_installed(
    context_for: ContextFor,
) -> None:
    with pytest.raises(ConnectorError) as caught:
        Registry.from_config({"kiosk": {"token": "t"}}, context_for)
    message = str(caught.value)
    assert "[connectors.kiosk]" in message
    assert "'kiosk'" in message
    installed = message.split("(installed: ", 1)[1].rstrip(")").split(", ")
    assert {"app", "crm", "antifraud"} <= set(installed)


async def test_uninstalled_connector_with_nothing_installed_says_none(
    context_for: ContextFor,
) -> None:
    with pytest.raises(ConnectorError, match=r"installed: none"):
        Registry.from_config({"wechat": {}}, context_for, available={})


@pytest.mark.parametrize(
    ("raw", "field", "why"),
    [
        ({}, "secret", "Field required"),
        ({"secret": "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, "secret", "whsec_"),
        ({"secret": SECRET, "callbak_url": "http://x"}, "callbak_url", "Extra inputs"),
        ({"secret": SECRET, "previous_secrets": ["old"]}, "previous_secrets.0", "whsec_"),
        ({"secret": SECRET, "callback_url": "not a url"}, "callback_url", "URL"),
        ({"secret": SECRET, "max_body_bytes": 0}, "max_body_bytes", "greater than 0"),
    ],
    ids=["missing-secret", "secret-without-whsec", "unknown-key", "bad-previous", "bad-url", "0"],
)
async def test_bad_app_config_names_the_field(
    context_for: ContextFor, raw: dict[str, Any], field: str, why: str
) -> None:
    with pytest.raises(ConnectorError) as caught:
        Registry.from_config({"app": raw}, context_for)
    message = str(caught.value)
    assert message.startswith("connector 'app' is misconfigured: ")
    assert f"connectors.app.{field}: " in message
    assert why in message


class _Nothing(ConnectorConfig):
    pass


def _connector_for(version: str) -> type[ChannelConnector[Any]]:
    class Versioned(ChannelConnector[_Nothing]):
        name = "versioned"
        sdk_version = version
        Config = _Nothing

        def parse(self, envelope: InboundEnvelope) -> InboundMessage:
            raise NotImplementedError

        async def send(self, message: OutboundMessage) -> DeliveryResult:
            return DeliveryResult.give_up("not used")

    return Versioned


def _available(version: str) -> dict[str, Discovered]:
    return {"versioned": Discovered("versioned", _connector_for(version), "acme-versioned", "3")}


@pytest.mark.parametrize("version", ["2.0", "1.9", "0.9"])
async def test_connector_built_for_another_sdk_is_refused_naming_both_versions(
    context_for: ContextFor, version: str
) -> None:
    with pytest.raises(ConnectorError) as caught:
        Registry.from_config({"versioned": {}}, context_for, available=_available(version))
    message = str(caught.value)
    assert "'versioned'" in message
    assert f"hub.sdk {version}" in message
    assert f"provides {SDK_VERSION}" in message


@pytest.mark.parametrize("version", ["1", "1.0.1", "one.zero"])
async def test_malformed_sdk_version_is_refused(context_for: ContextFor, version: str) -> None:
    with pytest.raises(ConnectorError, match=r"expected 'MAJOR\.MINOR'"):
        Registry.from_config({"versioned": {}}, context_for, available=_available(version))


async def test_connector_built_for_the_current_sdk_is_accepted(context_for: ContextFor) -> None:
    registry = Registry.from_config({"versioned": {}}, context_for, available=_available("1.0"))
    assert "versioned" in registry


def test_check_compatible_accepts_the_current_version() -> None:
    check_compatible("app", "1.0")


def test_check_compatible_accepts_an_older_minor_of_the_same_major() -> None:
    check_compatible("app", "1.0", provided="1.3")


def test_outbox_lease_shorter_than_three_timeouts_is_refused() -> None:
    with pytest.raises(ValueError, match=r"lease_seconds .* at least three times"):
        Settings(outbox={"lease_seconds": 20, "http_timeout": 10})
