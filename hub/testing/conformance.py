"""The conformance kit: the standard tests every connector must pass.

A connector author writes a small harness (how to build a valid inbound request, a tampered
one, malformed ones, a valid config, an outbound message) and a test class::

    from hub.testing import ConnectorConformance, HttpConnectorHarness

    class KioskHarness(HttpConnectorHarness):
        connector = KioskConnector
        ...

    class TestKioskConformance(ConnectorConformance):
        harness = KioskHarness()

Every rule that breaks fails with ``conformance rule broken: <the rule>: <what happened>``.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from hub.registry import ConnectorError, build_config, discover
from hub.sdk import (
    Capabilities,
    ChannelConnector,
    ConnectorContext,
    DeliveryResult,
    DeliveryStatus,
    InboundEnvelope,
    OutboundMessage,
    TicketCommand,
    check_compatible,
)
from hub.testing.memory_ingest import InMemoryIngest
from hub.testing.peer import PeerAnswer, ScriptedPeer
from hub.testing.server import free_port
from normalizer import normalize
from ticket_core import SystemClock


@dataclass(frozen=True, slots=True)
class InboundRequest:
    """One HTTP request as the channel's peer would send it; ``path`` is relative to
    ``/channels/<name>``."""

    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    path: str = ""
    method: str = "POST"
    params: dict[str, str] = field(default_factory=dict)
    description: str = ""


class OutboundPeer(Protocol):
    """What the kit needs of a stand-in peer: ``ScriptedPeer`` for HTTP, or one that speaks
    the channel's own protocol (``hub.testing.standins.smtp.SmtpStandIn`` for mail)."""

    answer: PeerAnswer

    @property
    def url(self) -> str: ...

    @property
    def requests(self) -> Sequence[Any]: ...

    async def start(self) -> str: ...

    async def stop(self) -> None: ...


class ConnectorHarness(ABC):
    """What every connector's author provides to the kit."""

    connector: ClassVar[type[ChannelConnector[Any]]]
    outbound_timeout: ClassVar[float] = 0.5

    @property
    def name(self) -> str:
        return self.connector.name

    @abstractmethod
    def config(self, peer_url: str) -> dict[str, Any]:
        """A valid ``[connectors.<name>]`` table whose outbound peer is at ``peer_url``."""

    def invalid_configs(self) -> list[tuple[dict[str, Any], str]]:
        """Configs that must be refused, each with the field the error must name."""
        return []

    @abstractmethod
    def outbound_message(self, now: datetime) -> OutboundMessage:
        """A message to a recipient this connector can reach."""

    def make_peer(self) -> OutboundPeer:
        """The stand-in for the connector's outbound peer; ``config`` gets its ``url``. An
        HTTP ``ScriptedPeer`` unless the channel speaks another protocol (then override
        ``peer_answer`` too, in that protocol's codes)."""
        return ScriptedPeer()

    def peer_answer(self, scenario: str) -> PeerAnswer:
        """How this channel's peer answers in each scenario: ``success``, ``rate_limited``,
        ``server_error``, ``client_error``. Override for peers that signal errors in the
        body of a 200 (as WeChat's API does)."""
        return {
            "success": PeerAnswer(200, b'{"ok": true}'),
            "rate_limited": PeerAnswer(429, b'{"error": "slow down"}', {"retry-after": "3"}),
            "server_error": PeerAnswer(503, b'{"error": "unavailable"}'),
            "client_error": PeerAnswer(400, b'{"error": "bad recipient"}'),
        }[scenario]

    def sample_envelopes(self, now: datetime) -> list[InboundEnvelope]:
        """Envelopes as the connector would have produced them; HTTP connectors get theirs
        from ``valid_request`` and need not override this."""
        return []


class HttpConnectorHarness(ConnectorHarness):
    """For connectors the peer calls over HTTP."""

    @abstractmethod
    def valid_request(self, now: datetime) -> InboundRequest: ...

    @abstractmethod
    def tampered_request(self, now: datetime) -> InboundRequest:
        """A request whose signature does not match (wrong key or altered body)."""

    @abstractmethod
    def malformed_requests(self, now: datetime) -> list[InboundRequest]:
        """Correctly signed requests whose content is broken (bad JSON, missing fields, ...)."""

    def duplicate_request(self, first: InboundRequest, now: datetime) -> InboundRequest:
        """The peer's retry of ``first``; by default the very same request."""
        return first


def rule(holds: bool, name: str, what_happened: str) -> None:
    if not holds:
        pytest.fail(f"conformance rule broken: {name}: {what_happened}", pytrace=False)


@dataclass
class Kit:
    connector: ChannelConnector[Any]
    ingest: InMemoryIngest
    peer: OutboundPeer
    client: httpx.AsyncClient
    prefix: str

    async def call(self, request: InboundRequest) -> httpx.Response:
        return await self.client.request(
            request.method,
            self.prefix + request.path,
            content=request.body,
            headers=request.headers,
            params=request.params,
        )


def _context(name: str, ingest: InMemoryIngest, http: httpx.AsyncClient) -> ConnectorContext:
    return ConnectorContext(name=name, ingest=ingest, http=http, clock=SystemClock())


@contextlib.asynccontextmanager
async def _with_dead_peer(harness: ConnectorHarness) -> AsyncIterator[ChannelConnector[Any]]:
    """The connector configured with its peer on a loopback port nobody listens on."""
    async with httpx.AsyncClient(timeout=harness.outbound_timeout) as http:
        config = harness.config(f"http://127.0.0.1:{free_port()}")
        yield harness.connector(
            build_config(harness.name, harness.connector, config),
            _context(harness.name, InMemoryIngest(), http),
        )


class ConnectorConformance:
    """The standard tests; subclass it with ``harness = YourHarness()``."""

    harness: ClassVar[ConnectorHarness]

    @pytest_asyncio.fixture
    async def kit(self) -> AsyncIterator[Kit]:
        harness = self.harness
        peer = harness.make_peer()
        await peer.start()
        ingest = InMemoryIngest()
        http = httpx.AsyncClient(timeout=harness.outbound_timeout)
        config = build_config(harness.name, harness.connector, harness.config(peer.url))
        connector = harness.connector(config, _context(harness.name, ingest, http))
        await connector.start()
        app = FastAPI()
        router = connector.router()
        prefix = f"/channels/{harness.name}"
        if router is not None:
            app.include_router(router, prefix=prefix)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://hub")
        try:
            yield Kit(connector, ingest, peer, client, prefix)
        finally:
            await client.aclose()
            await connector.stop()
            await http.aclose()
            await peer.stop()

    def _http(self) -> HttpConnectorHarness:
        if not isinstance(self.harness, HttpConnectorHarness):
            pytest.skip("the connector takes nothing in over HTTP")
        return self.harness

    # --- registration and configuration -------------------------------------------------

    def test_connector_is_registered_through_the_entry_point(self) -> None:
        found = discover().get(self.harness.name)
        rule(
            found is not None and found.cls is self.harness.connector,
            "the connector is registered through the tongdao.connectors entry points",
            f"entry point {self.harness.name!r} resolves to "
            f"{found.cls.__qualname__ if found else 'nothing'}",
        )

    def test_connector_declares_a_compatible_sdk_version_and_capabilities(self) -> None:
        cls = self.harness.connector
        try:
            check_compatible(cls.name, cls.sdk_version)
            problem = ""
        except Exception as exc:
            problem = str(exc)
        rule(not problem, "the connector declares an sdk_version this hub accepts", problem)
        rule(
            isinstance(cls.capabilities, Capabilities),
            "the connector declares its capabilities",
            f"capabilities is {cls.capabilities!r}",
        )

    def test_config_errors_are_refused_naming_the_field(self) -> None:
        harness = self.harness
        for raw, fieldname in harness.invalid_configs():
            try:
                build_config(harness.name, harness.connector, raw)
            except ConnectorError as exc:
                rule(
                    f"connectors.{harness.name}.{fieldname}" in str(exc),
                    "config errors are refused and name the field",
                    f"the error for {raw!r} does not name {fieldname!r}: {exc}",
                )
            else:
                rule(False, "config errors are refused and name the field", f"{raw!r} was accepted")

    # --- inbound ------------------------------------------------------------------------

    @pytest.mark.asyncio
    async def test_valid_request_is_acknowledged_and_stored(self, kit: Kit) -> None:
        harness = self._http()
        response = await kit.call(harness.valid_request(datetime.now(UTC)))
        rule(
            200 <= response.status_code < 300 and len(kit.ingest.envelopes) == 1,
            "a valid request is acknowledged (2xx) and stored once",
            f"answered {response.status_code} {response.text[:200]!r}, "
            f"stored {len(kit.ingest.envelopes)} envelope(s)",
        )
        stored = kit.ingest.envelopes[0]
        rule(
            stored.channel == harness.name and bool(stored.external_id),
            "a stored envelope names its channel and a stable external id",
            f"channel={stored.channel!r} external_id={stored.external_id!r}",
        )

    @pytest.mark.asyncio
    async def test_signature_refusal_stores_nothing(self, kit: Kit) -> None:
        harness = self._http()
        response = await kit.call(harness.tampered_request(datetime.now(UTC)))
        rule(
            response.status_code in (401, 403) and not kit.ingest.envelopes,
            "a request with a bad signature is refused (401/403) and nothing is stored",
            f"the tampered request was answered {response.status_code} and "
            f"{len(kit.ingest.envelopes)} envelope(s) were stored",
        )

    @pytest.mark.asyncio
    async def test_duplicate_stores_one_message(self, kit: Kit) -> None:
        harness = self._http()
        now = datetime.now(UTC)
        first = harness.valid_request(now)
        answers = [(await kit.call(first)).status_code]
        answers.append((await kit.call(harness.duplicate_request(first, now))).status_code)
        rule(
            all(200 <= code < 300 for code in answers) and len(kit.ingest.envelopes) == 1,
            "a duplicate is acknowledged again and stores one message",
            f"answers {answers}, stored {len(kit.ingest.envelopes)} envelope(s)",
        )

    @pytest.mark.asyncio
    async def test_malformed_input_gets_4xx_and_no_crash(self, kit: Kit) -> None:
        harness = self._http()
        requests = harness.malformed_requests(datetime.now(UTC))
        rule(
            bool(requests),
            "the harness offers malformed requests to try",
            "malformed_requests() returned none",
        )
        for request in requests:
            response = await kit.call(request)
            rule(
                400 <= response.status_code < 500 and not kit.ingest.envelopes,
                "malformed input gets a 4xx, never a 5xx, and nothing is stored",
                f"{request.description or request.body[:80]!r} was answered "
                f"{response.status_code} and {len(kit.ingest.envelopes)} envelope(s) stored",
            )

    @pytest.mark.asyncio
    async def test_envelope_normalizes_into_a_valid_message(self, kit: Kit) -> None:
        harness = self.harness
        now = datetime.now(UTC)
        envelopes = harness.sample_envelopes(now)
        if isinstance(harness, HttpConnectorHarness):
            await kit.call(harness.valid_request(now))
            envelopes = [*kit.ingest.envelopes, *envelopes]
        rule(bool(envelopes), "the connector yields envelopes to parse", "none were produced")
        for envelope in envelopes:
            first = kit.connector.parse(envelope)
            rule(
                first == kit.connector.parse(envelope),
                "parsing an envelope is pure and repeatable",
                "two parses differ",
            )
            if isinstance(first, TicketCommand):
                rule(
                    bool(first.ticket_number) and bool(first.actor),
                    "a command names its ticket and who acts",
                    f"ticket_number={first.ticket_number!r} actor={first.actor!r}",
                )
                continue
            rule(
                any(identity.verified for identity in first.identities),
                "a parsed message carries an identity the channel verified",
                f"identities: {[(i.kind, i.verified) for i in first.identities]}",
            )
            if first.opens_ticket:
                try:
                    incoming = normalize(envelope, first)
                    problem = ""
                except Exception as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                rule(not problem, "a stored envelope normalizes into a valid message", problem)
                rule(
                    incoming.channel == harness.name
                    and incoming.external_id == envelope.external_id,
                    "the normalized message keeps its channel and external id",
                    f"{incoming.channel!r}, {incoming.external_id!r}",
                )

    # --- outbound -----------------------------------------------------------------------

    async def _send(self, kit: Kit, answer: PeerAnswer | None) -> DeliveryResult:
        if answer is not None:
            kit.peer.answer = answer
        try:
            return await kit.connector.send(self.harness.outbound_message(datetime.now(UTC)))
        except Exception as exc:
            pytest.fail(
                "conformance rule broken: send never raises for the peer's behaviour: "
                f"it raised {type(exc).__name__}: {exc}",
                pytrace=False,
            )

    @pytest.mark.asyncio
    @pytest.mark.parametrize(
        ("scenario", "expected"),
        [
            ("success", DeliveryStatus.delivered),
            ("rate_limited", DeliveryStatus.retry),
            ("server_error", DeliveryStatus.retry),
            ("client_error", DeliveryStatus.give_up),
        ],
    )
    async def test_outbound_result_is_classified(
        self, kit: Kit, scenario: str, expected: DeliveryStatus
    ) -> None:
        if not self.harness.connector.capabilities.outbound:
            pytest.skip("the connector sends nothing")
        result = await self._send(kit, self.harness.peer_answer(scenario))
        rule(
            result.status == expected,
            f"a peer's {scenario.replace('_', ' ')} answer is read as {expected.value}",
            f"got {result.status.value} ({result.reason})",
        )
        rule(
            bool(kit.peer.requests),
            "outbound messages reach the configured peer",
            "the stand-in peer received nothing",
        )
        if expected != DeliveryStatus.delivered:
            rule(bool(result.reason), "a failed delivery says why", "reason is empty")

    @pytest.mark.asyncio
    async def test_outbound_timeout_is_retried(self, kit: Kit) -> None:
        if not self.harness.connector.capabilities.outbound:
            pytest.skip("the connector sends nothing")
        success = self.harness.peer_answer("success")
        slow = PeerAnswer(
            success.status, success.body, success.headers, delay=self.harness.outbound_timeout * 4
        )
        result = await self._send(kit, slow)
        rule(
            result.status == DeliveryStatus.retry,
            "a peer that times out is retried later",
            f"got {result.status.value} ({result.reason})",
        )

    @pytest.mark.asyncio
    async def test_outbound_to_an_unreachable_peer_is_retried(self) -> None:
        harness = self.harness
        if not harness.connector.capabilities.outbound:
            pytest.skip("the connector sends nothing")
        async with _with_dead_peer(harness) as connector:
            result = await connector.send(harness.outbound_message(datetime.now(UTC)))
        rule(
            result.status == DeliveryStatus.retry,
            "a peer that cannot be reached is retried",
            f"got {result.status.value} ({result.reason})",
        )

    # --- health -------------------------------------------------------------------------

    @pytest.mark.asyncio
    async def test_health_reports_a_dead_peer(self) -> None:
        harness = self.harness
        if not harness.connector.capabilities.outbound:
            pytest.skip("the connector has no peer of its own to reach")
        async with _with_dead_peer(harness) as connector:
            health = await connector.health()
        rule(
            not health.ok and bool(health.detail),
            "health reports a dead peer, saying why",
            f"health was ok={health.ok} detail={health.detail!r}",
        )

    @pytest.mark.asyncio
    async def test_health_reports_a_live_peer(self, kit: Kit) -> None:
        kit.peer.answer = self.harness.peer_answer("success")
        health = await kit.connector.health()
        rule(health.ok, "health reports a live peer as ok", f"detail={health.detail!r}")
