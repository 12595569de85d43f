"""Connector discovery through the ``tongdao.connectors`` entry points, config, lifecycle, health.

Built-in connectors are found exactly like third-party ones: through their package's entry
points. An entry point names either a ``ChannelConnector`` or a ``ContextProvider`` subclass.
A connector is enabled when the configuration has a ``[connectors.<name>]`` table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pydantic import ValidationError

from hub.sdk import (
    ChannelConnector,
    ConnectorContext,
    ContextProvider,
    Health,
    check_compatible,
)

ENTRY_POINT_GROUP = "tongdao.connectors"


class ConnectorError(Exception):
    """A connector that cannot be used as configured; the text names the connector and why."""


Plugin = ChannelConnector[Any] | ContextProvider[Any]


@dataclass(frozen=True, slots=True)
class Discovered:
    name: str
    cls: type[ChannelConnector[Any]] | type[ContextProvider[Any]]
    distribution: str | None
    version: str | None

    @property
    def kind(self) -> str:
        return "channel" if issubclass(self.cls, ChannelConnector) else "context"


def installed() -> list[str]:
    """Names of the installed connectors, without importing them."""
    return sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})


def discover(only: Iterable[str] | None = None) -> dict[str, Discovered]:
    """Import the installed connectors (or just those named in ``only``): a broken connector
    that is not enabled must not stop the hub."""
    wanted = set(only) if only is not None else None
    found: dict[str, Discovered] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if wanted is None or ep.name in wanted:
            found[ep.name] = _load(ep)
    return found


def _load(ep: EntryPoint) -> Discovered:
    try:
        cls = ep.load()
    except Exception as exc:
        raise ConnectorError(f"connector {ep.name!r} ({ep.value}) failed to import: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, ChannelConnector | ContextProvider)):
        raise ConnectorError(
            f"connector {ep.name!r} ({ep.value}) is neither a hub.sdk.ChannelConnector nor a "
            "hub.sdk.ContextProvider subclass"
        )
    dist = ep.dist
    return Discovered(ep.name, cls, dist.name if dist else None, dist.version if dist else None)


def build_config(name: str, cls: type[Plugin], raw: dict[str, Any]) -> Any:
    try:
        return cls.Config.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"connectors.{name}.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            for err in exc.errors(include_url=False)
        )
        raise ConnectorError(f"connector {name!r} is misconfigured: {problems}") from exc


class Registry:
    """The connectors enabled in this process, by name: channels and context providers."""

    def __init__(self, plugins: dict[str, Plugin] | None = None) -> None:
        plugins = dict(plugins or {})
        self._connectors = {n: p for n, p in plugins.items() if isinstance(p, ChannelConnector)}
        self._providers = {n: p for n, p in plugins.items() if isinstance(p, ContextProvider)}

    @classmethod
    def from_config(
        cls,
        configured: dict[str, dict[str, Any]],
        context_for: Any,
        available: dict[str, Discovered] | None = None,
    ) -> Registry:
        """Instantiate every configured connector; ``context_for(name)`` builds its context."""
        names = installed() if available is None else sorted(available)
        available = discover(configured) if available is None else available
        connectors: dict[str, Plugin] = {}
        for name, raw in configured.items():
            if name not in available:
                known = ", ".join(names) or "none"
                raise ConnectorError(
                    f"[connectors.{name}] is configured but no connector named {name!r} is "
                    f"installed (installed: {known})"
                )
            found = available[name]
            try:
                check_compatible(name, found.cls.sdk_version)
            except Exception as exc:
                raise ConnectorError(str(exc)) from exc
            config = build_config(name, found.cls, raw or {})
            context: ConnectorContext = context_for(name)
            connectors[name] = found.cls(config, context)
        return cls(connectors)

    def __contains__(self, name: str) -> bool:
        return name in self._connectors

    def get(self, name: str) -> ChannelConnector[Any] | None:
        return self._connectors.get(name)

    def items(self) -> list[tuple[str, ChannelConnector[Any]]]:
        """The enabled channels."""
        return sorted(self._connectors.items())

    def providers(self) -> list[tuple[str, ContextProvider[Any]]]:
        return sorted(self._providers.items())

    def provider(self, name: str) -> ContextProvider[Any] | None:
        """The enabled context provider of that name (CRM, anti-fraud), if any."""
        return self._providers.get(name)

    def pollers(self) -> list[tuple[str, ChannelConnector[Any]]]:
        return [(n, c) for n, c in self.items() if c.poll_interval]

    def _all(self) -> list[tuple[str, Plugin]]:
        return sorted([*self._connectors.items(), *self._providers.items()])

    async def start(self) -> None:
        for _, plugin in self._all():
            await plugin.start()

    async def stop(self) -> None:
        for _, plugin in self._all():
            await plugin.stop()

    async def health(self) -> dict[str, Health]:
        report: dict[str, Health] = {}
        for name, connector in self._all():
            try:
                report[name] = await connector.health()
            except Exception as exc:
                report[name] = Health(ok=False, detail=f"health check raised {type(exc).__name__}")
        return report
