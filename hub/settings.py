"""Configuration: a TOML file named by ``TONGDAO_CONFIG``, overridden by the environment.

Environment variables are ``TONGDAO_<SECTION>__<KEY>``, e.g. ``TONGDAO_DATABASE__URL``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator
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
    processes: int = Field(
        default=1,
        ge=1,
        le=64,
        description="HTTP processes sharing the port; more than one needs PostgreSQL",
    )


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
    reopen_window_days: float = Field(
        default=7, ge=0, description="a reply this soon after resolution reopens the ticket"
    )
    auto_close_days: float | None = Field(
        default=7,
        gt=0,
        description="close a resolved ticket after this many quiet days; unset: never",
    )


class PolicySettings(BaseModel):
    """One SLA policy; for a built-in name, what is left out keeps the built-in's value."""

    model_config = ConfigDict(extra="forbid")

    description: str | None = None
    basis: str | None = Field(
        default=None, description="'calendar' (every hour counts) or a business calendar's name"
    )
    targets: dict[str, dict[str, str]] | None = Field(
        default=None,
        description="per kind, per clock: {complaint = {first_response = '48h', ...}}",
    )
    warnings: list[str] | None = Field(default=None, description="e.g. ['80%', '1h']")
    pauses: list[str] | None = Field(
        default=None, description="e.g. ['pending_customer', 'pending_internal:external_appraisal']"
    )
    extensions: list[str] | None = Field(default=None, description="one step per extension")
    approval_from: int | None = Field(default=None, ge=1)


class RuleSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policy: str
    kinds: list[str] = []
    channels: list[str] = []
    categories: list[str] = []
    flags: list[str] = []


class SlaSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    calendars: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="business calendars by name (periods, holidays, 调休)"
    )
    policies: dict[str, PolicySettings] = Field(
        default_factory=dict, description="new policies, or overrides of the built-in templates"
    )
    rules: list[RuleSettings] | None = Field(
        default=None, description="first match chooses a new ticket's policy; unset: built-in"
    )
    escalation_queue: str | None = Field(
        default="supervisors", description="where a breached ticket goes; unset: stays put"
    )
    scheduler_batch: int = Field(default=200, ge=1, le=10000)

    @model_validator(mode="after")
    def _policies_work(self) -> SlaSettings:
        from hub.policy_book import build_book

        build_book(self)  # raises naming the bad policy, rule or calendar
        return self


class ReportSettings(BaseModel):
    """Regulatory statistics: where a report's days begin, and names for JR/T 0169 codes."""

    timezone: str = Field(
        default="Asia/Shanghai", description="IANA zone in which report days, weeks and months run"
    )
    code_labels: dict[Literal["channel", "business", "cause"], dict[str, str]] = Field(
        default_factory=dict,
        description="names of JR/T 0169-2018 codes by family and code, shown beside the code",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; e.g. Asia/Shanghai") from None
        return value


class NoticeSettings(BaseModel):
    """Texts sent to customers: see docs/operators.md, "Customer notices and templates"."""

    template_dir: Path | None = Field(
        default=None,
        description="operator templates over the built-in ones: <language>/[<channel>/]<event>.txt",
    )
    timezone: str = Field(
        default="Asia/Shanghai", description="IANA zone in which customers are shown times"
    )
    progress_url: HttpUrl | None = Field(
        default=None, description="public address of the progress page, named in acknowledgements"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; e.g. Asia/Shanghai") from None
        return value

    @field_validator("template_dir")
    @classmethod
    def _is_directory(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"{value} is not a directory")
        return value


class ProgressLookupSettings(BaseModel):
    """The public progress page and API: see docs/operators.md, "Progress lookup"."""

    enabled: bool = Field(default=True, description="serve /progress and /api/v1/progress")
    max_attempts_per_number: int = Field(
        default=10, ge=1, description="lookups of one ticket number per window"
    )
    max_attempts_per_client: int = Field(
        default=30, ge=1, description="lookups from one client address (IPv6: its /64) per window"
    )
    window_seconds: float = Field(default=900.0, gt=0, description="the sliding window")


PriorityName = Literal["low", "normal", "high", "urgent"]


class ContextSettings(BaseModel):
    """Customer context from the CRM and anti-fraud providers, and what it does to routing:
    see docs/context-providers.md."""

    vip_segments: list[str] = Field(
        default_factory=lambda: ["vip"], description="CRM segments that mark a VIP"
    )
    vip_tiers: list[str] = Field(
        default_factory=list, description="CRM tiers that count as VIP too, e.g. private_banking"
    )
    vip_priority: PriorityName | None = Field(
        default="high", description="a VIP's ticket is raised to at least this; unset: no change"
    )
    vulnerable_segments: list[str] = Field(
        default_factory=lambda: ["elderly", "foreign", "disabled"],
        description="CRM segments that mark a vulnerable customer (the ticket is flagged)",
    )
    vulnerable_priority: PriorityName | None = Field(
        default="high", description="a vulnerable customer's ticket is raised to at least this"
    )
    fraud_threshold: float = Field(
        default=0.8, gt=0, le=1, description="a risk score at or above this flags the ticket"
    )
    fraud_queue: str | None = Field(
        default="anti-fraud", max_length=80, description="where a flagged ticket goes; unset: stays"
    )
    call_timeout: float = Field(
        default=10.0,
        gt=0,
        le=120,
        description="seconds; the hub's own limit on one lookup, at most outbox.lease_seconds/3",
    )
    cache_ttl_seconds: float = Field(
        default=900.0, ge=0, description="a customer's CRM answer is reused this long; 0: never"
    )
    max_attempts: int = Field(default=48, ge=1, description="then the lookup waits for recovery")
    backoff_initial: float = Field(default=5.0, gt=0, description="seconds before the 2nd try")
    backoff_max: float = Field(default=1800.0, gt=0)
    breaker_failures: int = Field(
        default=5, ge=1, description="failures in a row that pause calls to a provider"
    )
    breaker_pause_seconds: float = Field(default=60.0, gt=0)

    @field_validator("vip_segments", "vulnerable_segments", "vip_tiers")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return sorted({item.strip().lower() for item in value if item.strip()})


class ClassifySettings(BaseModel):
    """How messages are classified: see docs/routing.md."""

    model_config = ConfigDict(extra="forbid")

    taxonomy: Path | None = Field(
        default=None, description="a keyword and phrase taxonomy (TOML); unset: the built-in one"
    )
    plugins: list[str] = Field(
        default_factory=list,
        description="the bank's classifier models, as dotted paths (package.module:Name)",
    )
    min_confidence: float = Field(
        default=0.8, ge=0, le=1, description="a model overrules the rules from this confidence"
    )

    @model_validator(mode="after")
    def _loads(self) -> ClassifySettings:
        from normalizer.classify import build_understanding

        build_understanding(
            str(self.taxonomy) if self.taxonomy else None, self.plugins, self.min_confidence
        )
        return self


class RoutingSettings(BaseModel):
    """Routing rules as data, first match wins: see docs/routing.md."""

    model_config = ConfigDict(extra="forbid")

    rules: list[dict[str, Any]] = Field(
        default_factory=list,
        description="[[routing.rules]] with name, when = {...}, then = {...}, in order",
    )

    @field_validator("rules")
    @classmethod
    def _rules_work(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from normalizer.routing import Router, RoutingError

        try:
            Router.parse(value)  # raises naming routing.rules[i].field
        except RoutingError as exc:
            raise ValueError(with_config_line(str(exc))) from None
        return value


_RULE_INDEX = re.compile(r"routing\.rules\[(\d+)\]")
_RULE_HEADER = re.compile(r"^\s*\[\[\s*routing\s*\.\s*rules\s*\]\]")


def with_config_line(message: str) -> str:
    """Add the line of the ``[[routing.rules]]`` table a message names, when the rules come
    from the TOML file in ``TONGDAO_CONFIG`` (tomllib keeps no positions, so count headers)."""
    match = _RULE_INDEX.search(message)
    path = os.environ.get("TONGDAO_CONFIG")
    if match is None or not path:
        return message
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError:
        return message
    headers = [n for n, line in enumerate(lines, start=1) if _RULE_HEADER.match(line)]
    index = int(match[1])
    if index >= len(headers):
        return message
    return f"{message} ({Path(path).name}, line {headers[index]})"


class AssignmentSettings(BaseModel):
    """Automatic assignment within a queue: see docs/routing.md."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        default=False,
        description="give each new, routed or escalated ticket with a queue to an agent",
    )
    strategy: Literal["least_loaded", "round_robin"] = Field(
        default="least_loaded", description="among the agents who fit (sticky agent first)"
    )
    vip_tags: list[str] = Field(
        default_factory=lambda: ["vip"],
        description="customer tags (or tiers) served first, with vulnerable customers",
    )


class ConsoleSettings(BaseModel):
    """The agent console at ``/console``: staff accounts (``tongdao staff add``), sessions."""

    enabled: bool = True
    secure_cookie: bool = Field(
        default=True,
        description="send the session cookie over HTTPS only; turn off only behind no TLS at all",
    )
    session_hours: float = Field(
        default=12, gt=0, description="a session ends this long after sign-in"
    )
    idle_minutes: float = Field(default=30, gt=0, description="or after this long unused")
    lockout_failures: int = Field(default=5, ge=1, description="failed sign-ins that lock")
    lockout_minutes: float = Field(default=15, gt=0, description="how long a lock lasts")
    sign_ins_per_minute: int = Field(
        default=30, ge=1, description="sign-in attempts one client address may make a minute"
    )
    refresh_seconds: int = Field(default=15, ge=2, description="the queue reloads its rows")
    at_risk_hours: float = Field(
        default=24, gt=0, description="a ticket due within this long shows as at risk"
    )
    page_size: int = Field(default=50, ge=10, le=500)
    reveal_roles: list[str] = Field(
        default_factory=lambda: ["supervisor", "admin"],
        description="roles that may reveal masked personal data (each reveal is audited)",
    )


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
    sla: SlaSettings = SlaSettings()
    reports: ReportSettings = ReportSettings()
    notices: NoticeSettings = NoticeSettings()
    progress_lookup: ProgressLookupSettings = ProgressLookupSettings()
    context: ContextSettings = ContextSettings()
    classify: ClassifySettings = ClassifySettings()
    routing: RoutingSettings = RoutingSettings()
    assignment: AssignmentSettings = AssignmentSettings()
    console: ConsoleSettings = ConsoleSettings()
    log: LogSettings = LogSettings()
    connectors: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="one table per connector, validated by that connector's own config model",
    )

    @model_validator(mode="after")
    def _routes_name_known_policies(self) -> Settings:
        from hub.policy_book import build_book
        from normalizer.routing import Router, RoutingError

        try:
            Router.parse(self.routing.rules).check_policies(build_book(self.sla).policies)
        except RoutingError as exc:
            raise ValueError(with_config_line(str(exc))) from None
        return self

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
