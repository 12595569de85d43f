"""The anti-fraud provider: a risk score and reasons for the customer and the message.

It speaks the contract in docs/context-providers.md. Its answers depend on the message (a
suspicious refund demand is about this complaint, not the customer), so the hub asks for
every new ticket and never reuses a recent answer (``message_scoped``).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError

from connectors.antifraud.models import (
    MAX_IDENTITIES,
    Assessment,
    AssessmentRequest,
    IdentityOut,
    MessageOut,
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

ASSESS_PATH = "/assessments"
HEALTH_PATH = "/health"


class AntifraudConfig(SignedHttpConfig):
    """Signed HTTP to the anti-fraud adapter (fields: ``hub.sdk.SignedHttpConfig``)."""

    send_text: bool = Field(
        default=True, description="send the message text; off: only channel, kind and time"
    )
    max_text_chars: int = Field(default=4000, ge=100, le=20000)


class AntifraudProvider(ContextProvider[AntifraudConfig]):
    name = "antifraud"
    sdk_version = "1.1"
    Config = AntifraudConfig
    message_scoped = True

    async def lookup(self, identities: tuple[Identity, ...]) -> CustomerContext:
        return await self._assess(identities, request=None)

    async def context_for(self, request: ContextRequest) -> CustomerContext:
        return await self._assess(request.identities, request=request)

    async def _assess(
        self, identities: tuple[Identity, ...], *, request: ContextRequest | None
    ) -> CustomerContext:
        now = self.context.clock.now()
        sent = [
            IdentityOut(kind=i.kind, value=i.value)
            for i in identities
            if i.verified and i.value and len(i.value) <= 200
        ][:MAX_IDENTITIES]
        if request is None:
            if not sent:
                return CustomerContext(source=self.name, fetched_at=now, found=False)
            payload = AssessmentRequest(request_id="", identities=sent)
        else:
            text = request.text[: self.config.max_text_chars] if self.config.send_text else None
            payload = AssessmentRequest(
                request_id=request.request_id,
                identities=sent,
                customer_number=request.customer_ref,
                ticket=TicketOut(
                    number=request.ticket_number, channel=request.channel, kind=request.kind
                ),
                message=MessageOut(text=text, received_at=request.received_at.isoformat()),
            )
        raw = await post_signed_json(
            self.context.http,
            self._url(ASSESS_PATH),
            payload.model_dump(),
            secret=self.config.secret,
            now=now,
            timeout=self.config.timeout_seconds,
            max_bytes=self.config.max_response_bytes,
            request_id=request.request_id if request else None,
            bearer_token=self.config.bearer_token,
        )
        try:
            assessment = Assessment.model_validate(raw)
        except ValidationError as exc:
            raise ContextUnavailable(f"invalid answer: {answer_problems(exc)}") from None
        data: dict[str, Any] = {
            "reasons": [r.model_dump() for r in assessment.reasons],
        }
        if assessment.assessment_id:
            data["assessment_id"] = assessment.assessment_id
        return CustomerContext(
            source=self.name,
            fetched_at=now,
            found=True,
            risk_score=assessment.risk_score,
            reasons=tuple(dict.fromkeys(r.code for r in assessment.reasons)),
            data=data,
        )

    async def health(self) -> Health:
        url = self._url(HEALTH_PATH)
        return await probe_health(
            self.context.http, url, timeout=self.config.timeout_seconds, what="anti-fraud adapter"
        )

    def _url(self, path: str) -> str:
        return str(self.config.base_url).rstrip("/") + path
