"""``context:<provider>`` outbox rows: ask the provider, then apply its answer.

A ``DeliveryHandler`` (``hub.outbox``): the dispatcher claims due rows with a lease, calls
``deliver`` outside any transaction, and calls ``record`` in the transaction that records the
result, so retries with backoff, dead letters and replay are the outbox's. This handler adds:

* a limit on every call, whatever the provider does inside: ``context.call_timeout``, and
  never more than a third of the outbox lease;
* the circuit breaker (``ProviderBreaker``): an open provider's rows are not claimed;
* the cache: a customer's answer younger than ``context.cache_ttl_seconds`` is reused
  instead of asking the CRM again (never for ``message_scoped`` providers);
* the ticket's ``ticket_context`` row, which tells agents whether context is pending, came,
  or will not come, and why.

``deliver`` hands its answer to ``record`` through memory: the dispatcher calls the two one
after the other in one process, and a result that is never recorded is simply asked again.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.backoff import Backoff
from hub.enrichment.applying import Answer, ContextApplier, cached_answer
from hub.enrichment.breaker import ProviderBreaker, ask_again
from hub.enrichment.scheduling import context_target
from hub.enrichment.subjects import ChannelNotHere, NothingToLookUp, subject_for
from hub.logs import redact_text
from hub.outbox import Claim, replay
from hub.reactions import Reactions
from hub.registry import Registry
from hub.sdk import (
    ContextProvider,
    ContextRefused,
    ContextRequest,
    ContextUnavailable,
    CustomerContext,
    DeliveryResult,
    DeliveryStatus,
)
from hub.settings import ContextSettings
from hub.store import OutboxRow, OutboxStatus, SessionFactory
from ticket_core import Clock
from ticket_core.models import ContextState, TicketContext

log = structlog.get_logger(__name__)

_KEPT_ATTEMPTS = 4096


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one ``deliver`` did, for ``record``."""

    called: bool
    """The provider was asked: its result counts for the breaker."""
    answer: Answer | None = None
    skipped: str = ""
    """Why there was nothing to ask: the lookup is done, as ``skipped``, not dead-lettered."""


class ContextDelivery:
    kind = "context"

    def __init__(
        self,
        reads: SessionFactory,
        registry: Registry,
        clock: Clock,
        settings: ContextSettings,
        identity_key: bytes,
        reactions: Reactions,
        lease_seconds: float,
    ) -> None:
        self._reads = reads
        self._registry = registry
        self._clock = clock
        self._settings = settings
        self._reactions = reactions
        self._applier = ContextApplier(settings, identity_key)
        self._breaker = ProviderBreaker(settings.breaker_failures, settings.breaker_pause_seconds)
        self._cache_ttl = timedelta(seconds=settings.cache_ttl_seconds)
        # A lookup is an outbox delivery: it must end well inside its claim's lease, or a
        # second dispatcher would ask again while the first still waits.
        self._call_limit = min(settings.call_timeout, lease_seconds / 3)
        self._attempts: OrderedDict[tuple[int, str], Attempt] = OrderedDict()
        self.max_attempts = settings.max_attempts
        self.backoff = Backoff(settings.backoff_initial, settings.backoff_max)

    async def claimable(self, session: AsyncSession, now: datetime) -> list[str]:
        names = [name for name, _ in self._registry.providers()]
        if not names:
            return []
        paused = await self._breaker.paused(session, names, now)
        return [context_target(name) for name in names if name not in paused]

    async def deliver(self, claim: Claim) -> DeliveryResult:
        provider = self._registry.provider(claim.name)
        if provider is None:
            return DeliveryResult.retry(f"no enabled context provider {claim.name!r}")
        ticket_id = claim.payload.get("ticket_id")
        if not isinstance(ticket_id, int):
            self._keep(claim, Attempt(called=False, skipped="the lookup names no ticket"))
            return DeliveryResult.delivered()
        now = self._clock.now()
        try:
            async with self._reads() as session:
                subject = await subject_for(
                    session,
                    self._registry,
                    provider,
                    ticket_id=ticket_id,
                    request_id=claim.idempotency_key,
                    cache_ttl=self._cache_ttl,
                    now=now,
                )
        except NothingToLookUp as exc:
            self._keep(claim, Attempt(called=False, skipped=str(exc)))
            return DeliveryResult.delivered()
        except ChannelNotHere as exc:
            return DeliveryResult.retry(str(exc))
        if subject.cached is not None:
            self._keep(claim, Attempt(called=False, answer=cached_answer(subject.cached)))
            return DeliveryResult.delivered()
        assert subject.request is not None
        result, context = await self._ask(provider, subject.request)
        answer = None
        if context is not None:
            answer = Answer(context, asked_by=tuple(i.kind for i in subject.request.identities))
        self._keep(claim, Attempt(called=True, answer=answer))
        return result

    async def _ask(
        self, provider: ContextProvider[Any], request: ContextRequest
    ) -> tuple[DeliveryResult, CustomerContext | None]:
        limit = self._call_limit
        try:
            context = await asyncio.wait_for(provider.context_for(request), limit)
        except ContextRefused as exc:
            return DeliveryResult.give_up(f"refused: {exc}"), None
        except ContextUnavailable as exc:
            return DeliveryResult.retry(str(exc) or "unavailable", exc.retry_after), None
        except TimeoutError:
            return DeliveryResult.retry(
                f"no answer within {limit:g} s (context.call_timeout)"
            ), None
        except Exception as exc:  # a provider's bug must not stop the dispatcher
            log.exception("context provider raised", provider=provider.name)
            return DeliveryResult.retry(f"provider raised {type(exc).__name__}: {exc}"), None
        if not isinstance(context, CustomerContext):
            return DeliveryResult.retry(
                f"provider returned {type(context).__name__}, not a CustomerContext"
            ), None
        return DeliveryResult.delivered(), context

    def _keep(self, claim: Claim, attempt: Attempt) -> None:
        self._attempts[(claim.row_id, claim.token)] = attempt
        while len(self._attempts) > _KEPT_ATTEMPTS:
            self._attempts.popitem(last=False)

    async def record(
        self,
        session: AsyncSession,
        claim: Claim,
        result: DeliveryResult,
        now: datetime,
        latency: float,
    ) -> None:
        attempt = self._attempts.pop((claim.row_id, claim.token), None)
        provider = self._registry.provider(claim.name)
        called = attempt is not None and attempt.called
        if called and await self._breaker.record(session, claim.name, result, now):
            await ask_again(session, claim.name, claim.target, now)
        row = await session.get(OutboxRow, claim.row_id)
        # A stale claim (its lease ran out and the row was claimed again) did not decide the
        # row's state; the claim that owns it now records its own result.
        if row is None or row.claim_token is not None or row.attempts != claim.attempts:
            return
        ticket_id = claim.payload.get("ticket_id")
        if not isinstance(ticket_id, int):
            return
        pending = await self._ticket_context(session, ticket_id, claim.name, row, now)
        pending.attempts = claim.attempts
        pending.updated_at = now
        if attempt is not None and attempt.skipped:
            pending.state = ContextState.skipped
            pending.last_error = attempt.skipped
            pending.next_attempt_at = None
            pending.completed_at = now
        elif result.status == DeliveryStatus.delivered:
            if attempt is None or attempt.answer is None or provider is None:
                # The answer was lost between deliver and record (it cannot be, in one
                # process); ask again rather than call the ticket complete.
                await replay(session, row.id, now)  # type: ignore[arg-type]
                pending.state = ContextState.pending
                pending.next_attempt_at = now
            else:
                await self._complete(session, pending, ticket_id, provider, attempt.answer, now)
        elif result.status == DeliveryStatus.give_up:
            pending.state = ContextState.failed
            pending.last_error = redact_text(result.reason)[:1000]
            pending.next_attempt_at = None
            pending.completed_at = now
        else:
            spent = row.status == OutboxStatus.dead
            pending.state = ContextState.unavailable if spent else ContextState.pending
            pending.last_error = redact_text(result.reason)[:1000]
            pending.next_attempt_at = None if spent else row.next_attempt_at
        session.add(pending)
        await self._reactions.run(session, now)

    async def _complete(
        self,
        session: AsyncSession,
        pending: TicketContext,
        ticket_id: int,
        provider: ContextProvider[Any],
        answer: Answer,
        now: datetime,
    ) -> None:
        await self._applier.apply(
            session, ticket_id=ticket_id, provider=provider, answer=answer, now=now
        )
        context = answer.context
        pending.state = ContextState.complete
        pending.from_cache = answer.from_cache
        pending.found = context.found
        pending.risk_score = context.risk_score
        pending.reasons = list(context.reasons)
        pending.last_error = None
        pending.next_attempt_at = None
        pending.completed_at = now

    async def _ticket_context(
        self, session: AsyncSession, ticket_id: int, provider: str, row: OutboxRow, now: datetime
    ) -> TicketContext:
        found = (
            await session.exec(
                select(TicketContext)
                .where(TicketContext.ticket_id == ticket_id)
                .where(TicketContext.provider == provider)
                .with_for_update()
            )
        ).first()
        if found is not None:
            return found
        # A lookup queued by hand (or before this table existed) gets its row now.
        return TicketContext(
            ticket_id=ticket_id,
            provider=provider,
            outbox_id=row.id,
            requested_at=row.created_at,
            updated_at=now,
        )
