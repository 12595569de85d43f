"""Configuration: a TOML file named by ``TONGDAO_CONFIG``, overridden by the environment.

Environment variables are ``TONGDAO_<SECTION>__<KEY>``, e.g. ``TONGDAO_DATABASE__URL``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/tongdao.db"


class DatabaseSettings(BaseModel):
    url: str = DEFAULT_DATABASE_URL
    echo: bool = False
    sqlite_synchronous: str = Field(
        default="FULL",
        pattern="^(OFF|NORMAL|FULL|EXTRA)$",
        description="FULL survives power loss; NORMAL only process crashes",
    )
    pool_size: int = Field(default=10, ge=1)

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")


class ServerSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)


class WorkerSettings(BaseModel):
    in_process: bool | None = Field(
        default=None, description="run workers inside `serve`; default: yes on SQLite only"
    )
    poll_interval: float = Field(default=0.5, gt=0)
    batch_size: int = Field(default=50, ge=1, le=1000)
    envelope_max_attempts: int = Field(default=10, ge=1)
    envelope_backoff_initial: float = Field(default=1.0, gt=0, description="seconds")
    envelope_backoff_max: float = Field(default=3600.0, gt=0, description="seconds")


class OutboxSettings(BaseModel):
    max_attempts: int = Field(default=12, ge=1, description="attempts before dead-lettering")
    backoff_initial: float = Field(default=2.0, gt=0, description="seconds before the 2nd attempt")
    backoff_max: float = Field(default=3600.0, gt=0)
    lease_seconds: float = Field(
        default=60.0, gt=0, description="a claimed row's lock; longer than any one send"
    )
    concurrency: int = Field(default=16, ge=1)
    http_timeout: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _lease_outlasts_a_send(self) -> OutboxSettings:
        # httpx applies the timeout to connect, write and read in turn.
        if self.lease_seconds < 3 * self.http_timeout:
            raise ValueError(
                f"outbox.lease_seconds ({self.lease_seconds:g}) must be at least three times "
                f"outbox.http_timeout ({self.http_timeout:g}), or a slow send outlives its claim"
            )
        return self


class WebhookSettings(BaseModel):
    max_attempts: int = Field(default=16, ge=1, description="about a day with the defaults")
    backoff_initial: float = Field(default=10.0, gt=0)
    backoff_max: float = Field(default=4 * 3600.0, gt=0)
    breaker_failures: int = Field(
        default=5, ge=1, description="consecutive failures that pause an endpoint"
    )
    breaker_pause_seconds: float = Field(default=300.0, gt=0)
    disable_after_hours: float = Field(
        default=24.0, gt=0, description="an endpoint failing this long is disabled"
    )
    allow_private_targets: bool = Field(
        default=False, description="allow private, loopback and link-local endpoint addresses"
    )


class SecuritySettings(BaseModel):
    identity_key: str | None = Field(
        default=None,
        description="key that hashes customer identities; default: generated, kept in the database",
    )


class TicketSettings(BaseModel):
    reopen_window_days: float = Field(default=7, ge=0)


class LogSettings(BaseModel):
    level: str = "INFO"
    json_format: bool = Field(default=False, alias="json")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TONGDAO_", env_nested_delimiter="__", extra="forbid", populate_by_name=True
    )

    database: DatabaseSettings = DatabaseSettings()
    server: ServerSettings = ServerSettings()
    worker: WorkerSettings = WorkerSettings()
    outbox: OutboxSettings = OutboxSettings()
    webhooks: WebhookSettings = WebhookSettings()
    security: SecuritySettings = SecuritySettings()
    tickets: TicketSettings = TicketSettings()
    log: LogSettings = LogSettings()
    connectors: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="one table per connector, validated by that connector's own config model",
    )

    @property
    def workers_in_process(self) -> bool:
        if self.worker.in_process is not None:
            return self.worker.in_process
        return self.database.is_sqlite

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = os.environ.get("TONGDAO_CONFIG")
        if path:
            if not Path(path).is_file():
                raise FileNotFoundError(f"TONGDAO_CONFIG names {path!r}, which is not a file")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)
