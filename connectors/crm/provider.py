"""The CRM provider: looks a customer up by verified identities over signed HTTP.

It speaks the contract in docs/context-providers.md, so a bank puts a small adapter in front
of its real CRM instead of the hub learning every CRM's API. Its ``customer_ref`` is the
bank's customer number (``links_customers``): the hub joins two customers the CRM names by
the same number for identities their channels verified.
"""

from __future__ import annotations

from pydantic import ValidationError

from connectors.crm.models import (
    MAX_IDENTITIES,
    IdentityOut,
    LookupAnswer,
    LookupRequest,
    TicketOut,
)
from hub.sdk import (
    ContextProvider,
    ContextRequest,
    ContextUnavailable,
    CustomerContext,
    Health,
    Identity,
    SignedHttpConfig,
    answer_problems,
    post_signed_json,
    probe_health,
)

LOOKUP_PATH = "/customers/lookup"
HEALTH_PATH = "/health"


class CrmConfig(SignedHttpConfig):
    """Signed HTTP to the adapter in front of the CRM (fields: ``hub.sdk.SignedHttpConfig``)."""


class CrmProvider(ContextProvider[CrmConfig]):
    name = "crm"
    sdk_version = "1.1"
    Config = CrmConfig
    links_customers = True

    async def lookup(self, identities: tuple[Identity, ...]) -> CustomerContext:
        return await self._lookup(identities, request_id=None, ticket=None)

    async def context_for(self, request: ContextRequest) -> CustomerContext:
        ticket = TicketOut(number=request.ticket_number, channel=request.channel, kind=request.kind)
        return await self._lookup(request.identities, request_id=request.request_id, ticket=ticket)

    async def _lookup(
        self,
        identities: tuple[Identity, ...],
        *,
        request_id: str | None,
        ticket: TicketOut | None,
    ) -> CustomerContext:
        now = self.context.clock.now()
        sent = [
            IdentityOut(kind=i.kind, value=i.value)
            for i in identities
            if i.verified and i.value and len(i.value) <= 200
        ][:MAX_IDENTITIES]
        if not sent:
            # Only an authenticated identity may name a customer number; nothing to ask by.
            return CustomerContext(source=self.name, fetched_at=now, found=False)
        payload = LookupRequest(request_id=request_id or "", identities=sent, ticket=ticket)
        raw = await post_signed_json(
            self.context.http,
            self._url(LOOKUP_PATH),
            payload.model_dump(exclude_none=True),
            secret=self.config.secret,
            now=now,
            timeout=self.config.timeout_seconds,
            max_bytes=self.config.max_response_bytes,
            request_id=request_id or None,
            bearer_token=self.config.bearer_token,
        )
        try:
            answer = LookupAnswer.model_validate(raw)
        except ValidationError as exc:
            raise ContextUnavailable(f"invalid answer: {answer_problems(exc)}") from None
        customer = answer.customer
        if customer is None:
            return CustomerContext(source=self.name, fetched_at=now, found=False)
        return CustomerContext(
            source=self.name,
            fetched_at=now,
            found=True,
            customer_ref=customer.customer_number,
            name=customer.name or None,
            tier=customer.tier,
            segments=tuple(dict.fromkeys(customer.segments)),
            products=tuple(dict.fromkeys(customer.products)),
            relationship_manager=customer.relationship_manager or None,
            data={"matched_by": customer.matched_by} if customer.matched_by else {},
        )

    async def health(self) -> Health:
        url = self._url(HEALTH_PATH)
        return await probe_health(
            self.context.http, url, timeout=self.config.timeout_seconds, what="CRM adapter"
        )

    def _url(self, path: str) -> str:
        return str(self.config.base_url).rstrip("/") + path
