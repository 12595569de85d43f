"""The conformance kit for context providers (CRM, anti-fraud, a bank's own systems).

The hub calls a provider after the ack, in a worker, and trusts it with two things: to give
an answer or say it cannot, quickly; and never to pass on what its peer sent without reading
it first. These are the rules that hold it to that. A provider's author writes a harness::

    from hub.testing import ContextProviderConformance, ContextProviderHarness

    class CrmHarness(ContextProviderHarness):
        provider = CrmProvider
        def config(self, peer_url): ...
        def request(self, now): ...            # a ContextRequest the peer will know
        def peer_answer(self, scenario): ...   # "found", "not_found"
        def hostile_answers(self): ...         # [(description, PeerAnswer), ...]

    class TestCrmConformance(ContextProviderConformance):
        harness = CrmHarness()

Every rule that breaks fails with ``conformance rule broken: <the rule>: <what happened>``.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx
import pytest
import pytest_asyncio

from hub.registry import ConnectorError, build_config, discover
from hub.sdk import (
    ConnectorContext,
    ContextProvider,
    ContextRefused,
    ContextRequest,
    ContextUnavailable,
    CustomerContext,
    Identity,
    check_compatible,
)
from hub.testing.conformance import rule
from hub.testing.memory_ingest import InMemoryIngest
from hub.testing.peer import PeerAnswer, ReceivedRequest, ScriptedPeer
from hub.testing.server import free_port
from ticket_core import SystemClock

_JSON = {"content-type": "application/json"}


class ContextProviderHarness(ABC):
    """What every context provider's author gives the kit."""

    provider: ClassVar[type[ContextProvider[Any]]]
    timeout: ClassVar[float] = 0.5
    """The provider's own time limit in ``config``; the kit checks it is kept."""

    @property
    def name(self) -> str:
        return self.provider.name

    @abstractmethod
    def config(self, peer_url: str) -> dict[str, Any]:
        """A valid ``[connectors.<name>]`` table whose peer is at ``peer_url``, with a time
        limit of ``timeout`` seconds."""

    def invalid_configs(self) -> list[tuple[dict[str, Any], str]]:
        """Configs that must be refused, each with the field the error must name."""
        return []

    @abstractmethod
    def request(self, now: datetime) -> ContextRequest:
        """A request with at least one verified identity."""

    @abstractmethod
    def peer_answer(self, scenario: str) -> PeerAnswer | None:
        """The peer's answer in ``found`` (it knows the customer) and ``not_found`` (it does
        not; ``None`` if the peer has no such answer)."""

    def hostile_answers(self) -> list[tuple[str, PeerAnswer]]:
        """2xx answers in the right media type whose content must be refused (wrong types,
        values out of range, control characters). The kit adds generic ones."""
        return []

    def check_found(self, context: CustomerContext) -> str:
        """A problem with the ``found`` answer's context, or "" if it carries what it should."""
        return ""

    def check_request(self, received: ReceivedRequest, sent: ContextRequest) -> str:
        """A problem with what reached the peer (its authentication, its content), or ""."""
        return ""


@dataclass
class ProviderKit:
    provider: ContextProvider[Any]
    peer: ScriptedPeer


def _context(name: str, http: httpx.AsyncClient) -> ConnectorContext:
    return ConnectorContext(name=name, ingest=InMemoryIngest(), http=http, clock=SystemClock())


def _generic_hostile(found: PeerAnswer, max_bytes: int) -> list[tuple[str, PeerAnswer]]:
    nested = b"[" * 20_000 + b"]" * 20_000
    padded = json.loads(found.body)
    padded["_padding"] = "x" * max_bytes
    return [
        ("an HTML page with status 200", PeerAnswer(200, b"<html>login</html>", {})),
        ("text/html claiming to be JSON", PeerAnswer(200, b"{}", {"content-type": "text/html"})),
        ("truncated JSON", PeerAnswer(200, b'{"found": tr', _JSON)),
        ("a JSON array", PeerAnswer(200, b"[]", _JSON)),
        ("a JSON string", PeerAnswer(200, b'"ok"', _JSON)),
        ("NaN", PeerAnswer(200, b"NaN", _JSON)),
        ("JSON nested 100,000 deep", PeerAnswer(200, nested, _JSON)),
        ("invalid UTF-8", PeerAnswer(200, b'{"a": "\xff\xfe"}', _JSON)),
        (
            f"a valid answer padded beyond {max_bytes} bytes",
            PeerAnswer(200, json.dumps(padded).encode(), _JSON),
        ),
    ]


class ContextProviderConformance:
    """The standard tests; subclass it with ``harness = YourHarness()``."""

    harness: ClassVar[ContextProviderHarness]
    max_hostile_bytes: ClassVar[int] = 1024 * 1024
    """A valid answer padded to this size must be refused: providers cap what they read."""

    @pytest_asyncio.fixture
    async def kit(self) -> AsyncIterator[ProviderKit]:
        harness = self.harness
        peer = ScriptedPeer()
        await peer.start()
        http = httpx.AsyncClient(timeout=harness.timeout * 4)
        config = build_config(harness.name, harness.provider, harness.config(peer.url))
        provider = harness.provider(config, _context(harness.name, http))
        await provider.start()
        try:
            yield ProviderKit(provider, peer)
        finally:
            await provider.stop()
            await http.aclose()
            await peer.stop()

    async def _ask(self, kit: ProviderKit, answer: PeerAnswer | None = None) -> Any:
        """The provider's context, or the exception it raised (never re-raised)."""
        if answer is not None:
            kit.peer.answer = answer
        try:
            return await kit.provider.context_for(self.harness.request(datetime.now(UTC)))
        except Exception as exc:
            return exc

    # --- registration and configuration ---------------------------------------------------

    def test_provider_is_registered_through_the_entry_point(self) -> None:
        found = discover().get(self.harness.name)
        rule(
            found is not None and found.cls is self.harness.provider and found.kind == "context",
            "the provider is registered through the tongdao.connectors entry points",
            f"entry point {self.harness.name!r} resolves to "
            f"{found.cls.__qualname__ if found else 'nothing'}",
        )

    def test_provider_declares_a_compatible_sdk_version_and_its_nature(self) -> None:
        cls = self.harness.provider
        try:
            check_compatible(cls.name, cls.sdk_version)
            problem = ""
        except Exception as exc:
            problem = str(exc)
        rule(not problem, "the provider declares an sdk_version this hub accepts", problem)
        rule(
            isinstance(cls.links_customers, bool) and isinstance(cls.message_scoped, bool),
            "the provider says whether it names customers and whether answers depend on the "
            "message",
            f"links_customers={cls.links_customers!r} message_scoped={cls.message_scoped!r}",
        )

    def test_config_errors_are_refused_naming_the_field(self) -> None:
        harness = self.harness
        for raw, fieldname in harness.invalid_configs():
            try:
                build_config(harness.name, harness.provider, raw)
            except ConnectorError as exc:
                rule(
                    f"connectors.{harness.name}.{fieldname}" in str(exc),
                    "config errors are refused and name the field",
                    f"the error for {sorted(raw)} does not name {fieldname!r}: {exc}",
                )
            else:
                rule(False, "config errors are refused and name the field", f"{raw!r} accepted")

    # --- answers ------------------------------------------------------------------------

    @pytest.mark.asyncio
    async def test_a_known_customer_is_found(self, kit: ProviderKit) -> None:
        answer = self.harness.peer_answer("found")
        assert answer is not None, "the harness must give a 'found' answer"
        sent = self.harness.request(datetime.now(UTC))
        context = await self._ask(kit, answer)
        rule(
            isinstance(context, CustomerContext) and context.found,
            "a customer the peer knows comes back found",
            f"got {context!r}",
        )
        rule(
            context.source == self.harness.name and context.fetched_at.tzinfo is not None,
            "the context names its source and when it was fetched (with a time zone)",
            f"source={context.source!r} fetched_at={context.fetched_at!r}",
        )
        if self.harness.provider.links_customers:
            rule(
                bool(context.customer_ref),
                "a provider that names customers returns the customer number",
                "customer_ref is empty",
            )
        rule(bool(kit.peer.requests), "the lookup reaches the peer", "the peer received nothing")
        problem = self.harness.check_found(context)
        rule(not problem, "the found context carries what the peer said", problem)
        problem = self.harness.check_request(kit.peer.requests[-1], sent)
        rule(not problem, "the request is authenticated and carries what it should", problem)

    @pytest.mark.asyncio
    async def test_an_unknown_customer_is_not_found_and_no_error(self, kit: ProviderKit) -> None:
        answer = self.harness.peer_answer("not_found")
        if answer is None:
            pytest.skip("the peer has no 'not found' answer")
        context = await self._ask(kit, answer)
        rule(
            isinstance(context, CustomerContext) and not context.found,
            "a customer the peer does not know comes back with found=False, not an error",
            f"got {context!r}",
        )

    @pytest.mark.asyncio
    async def test_only_verified_identities_leave_the_hub(self, kit: ProviderKit) -> None:
        kit.peer.answer = self.harness.peer_answer("found") or PeerAnswer()
        request = self.harness.request(datetime.now(UTC))
        typed = "13999990000-typed-by-someone"
        with_typed = ContextRequest(
            request_id=request.request_id,
            identities=(*request.identities, Identity("phone", typed, verified=False)),
            ticket_number=request.ticket_number,
            channel=request.channel,
            kind=request.kind,
            text=request.text,
            received_at=request.received_at,
            customer_ref=request.customer_ref,
        )
        try:
            await kit.provider.context_for(with_typed)
        except Exception as exc:
            rule(False, "a request with an unverified identity is still answered", repr(exc))
        leaked = [r for r in kit.peer.requests if typed.encode() in r.body]
        rule(
            not leaked,
            "an identity the channel did not verify is never sent to the peer",
            "the unverified phone number was in the request body",
        )

    # --- failures -----------------------------------------------------------------------

    @pytest.mark.asyncio
    @pytest.mark.parametrize(
        ("scenario", "answer", "expected"),
        [
            ("server error", PeerAnswer(503, b'{"error": "down"}', _JSON), ContextUnavailable),
            ("bad gateway", PeerAnswer(502, b"<html>bad gateway</html>", {}), ContextUnavailable),
            (
                "rate limit",
                PeerAnswer(429, b"{}", {**_JSON, "retry-after": "7"}),
                ContextUnavailable,
            ),
            ("refusal", PeerAnswer(403, b'{"error": "forbidden"}', _JSON), ContextRefused),
            ("bad request", PeerAnswer(400, b'{"error": "bad"}', _JSON), ContextRefused),
        ],
    )
    async def test_peer_failures_are_classified(
        self, kit: ProviderKit, scenario: str, answer: PeerAnswer, expected: type[Exception]
    ) -> None:
        outcome = await self._ask(kit, answer)
        rule(
            isinstance(outcome, expected) and bool(str(outcome)),
            f"a peer's {scenario} raises {expected.__name__}, saying why",
            f"got {outcome!r}",
        )
        if scenario == "rate limit":
            rule(
                getattr(outcome, "retry_after", None) == 7,
                "a peer's Retry-After reaches the hub",
                f"retry_after={getattr(outcome, 'retry_after', None)!r}",
            )

    @pytest.mark.asyncio
    async def test_a_slow_peer_is_given_up_within_the_time_limit(self, kit: ProviderKit) -> None:
        found = self.harness.peer_answer("found") or PeerAnswer()
        limit = self.harness.timeout
        slow = PeerAnswer(found.status, found.body, found.headers, delay=min(limit * 10, 10))
        started = time.monotonic()
        outcome = await self._ask(kit, slow)
        took = time.monotonic() - started
        rule(
            isinstance(outcome, ContextUnavailable),
            "a peer slower than the time limit raises ContextUnavailable",
            f"got {outcome!r}",
        )
        rule(
            took <= limit * 2 + 0.5,
            "a lookup ends within its time limit, whatever the peer does",
            f"it took {took:.2f} s with a limit of {limit:g} s",
        )

    @pytest.mark.asyncio
    async def test_an_unreachable_peer_is_unavailable(self) -> None:
        harness = self.harness
        async with httpx.AsyncClient(timeout=harness.timeout) as http:
            config = harness.config(f"http://127.0.0.1:{free_port()}")
            provider = harness.provider(
                build_config(harness.name, harness.provider, config), _context(harness.name, http)
            )
            try:
                await provider.context_for(harness.request(datetime.now(UTC)))
                outcome: object = "an answer"
            except Exception as exc:
                outcome = exc
            health = await provider.health()
        rule(
            isinstance(outcome, ContextUnavailable),
            "a peer that cannot be reached raises ContextUnavailable",
            f"got {outcome!r}",
        )
        rule(
            not health.ok and bool(health.detail),
            "health reports a dead peer, saying why",
            f"health was ok={health.ok} detail={health.detail!r}",
        )

    @pytest.mark.asyncio
    async def test_hostile_answers_are_never_passed_on(self, kit: ProviderKit) -> None:
        found = self.harness.peer_answer("found")
        assert found is not None, "the harness must give a 'found' answer"
        generic = _generic_hostile(found, self.max_hostile_bytes)
        answers = [*generic, *self.harness.hostile_answers()]
        for description, answer in answers:
            outcome = await self._ask(kit, answer)
            rule(
                isinstance(outcome, ContextUnavailable | ContextRefused),
                "an answer the provider cannot trust raises ContextUnavailable or "
                "ContextRefused, never passes on or crashes",
                f"{description}: got {type(outcome).__name__}: {str(outcome)[:200]}",
            )
            leaked = json.dumps(repr(outcome))
            rule(
                "\\u0000" not in leaked and len(str(outcome)) <= 2000,
                "the error says what was wrong without repeating the answer",
                f"{description}: the error is {len(str(outcome))} characters",
            )

    # --- health -------------------------------------------------------------------------

    @pytest.mark.asyncio
    async def test_health_reports_a_live_peer(self, kit: ProviderKit) -> None:
        kit.peer.answer = PeerAnswer(200, b'{"ok": true}', _JSON)
        health = await kit.provider.health()
        rule(health.ok, "health reports a live peer as ok", f"detail={health.detail!r}")
