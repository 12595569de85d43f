"""``POST /channels/core/events``: a core system adds a note or a message to a ticket, moves
its status within the lifecycle's rules, or attaches a reference (a refund id).

Each system signs with its own Standard Webhooks secret, which also says who is acting. The
event is stored and applied at once, so a move the lifecycle refuses is answered 409 with the
reason; the same ``webhook-id`` again answers as the first time did.
"""

from __future__ import annotations

import re
from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hub.sdk import (
    MIB,
    BodyTooLarge,
    Capabilities,
    ChannelConnector,
    ConnectorConfig,
    DeliveryResult,
    Health,
    InboundEnvelope,
    OutboundMessage,
    PlainText,
    SignatureError,
    TicketCommand,
    WebhookSecret,
    error_response,
    read_limited_body,
    receipt_response,
    validation_errors,
    verify_signer,
)

Status = Literal[
    "open",
    "in_progress",
    "pending_customer",
    "pending_internal",
    "under_review",
    "resolved",
    "closed",
]


class SystemConfig(ConnectorConfig):
    secret: WebhookSecret
    previous_secrets: list[WebhookSecret] = Field(default_factory=list)


class CoreConfig(ConnectorConfig):
    systems: dict[str, SystemConfig] = Field(
        min_length=1, description="one table per system: [connectors.core.systems.<name>]"
    )
    max_body_bytes: int = Field(default=MIB // 4, gt=0, le=MIB)

    @model_validator(mode="after")
    def _distinct_systems(self) -> CoreConfig:
        # The name goes into the event's external id and the secret says who acts: both must
        # be unambiguous, or one system could act as, or pre-empt, another.
        for name in self.systems:
            if not re.fullmatch(r"[a-z0-9_-]{1,40}", name):
                raise ValueError(f"system name {name!r}: use a-z, 0-9, _ and - only")
        secrets = [
            s for system in self.systems.values() for s in (system.secret, *system.previous_secrets)
        ]
        if len(secrets) != len(set(secrets)):
            raise ValueError("each system needs secrets of its own; two systems share one")
        return self


class Reference(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str = Field(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]*$")
    id: str = Field(min_length=1, max_length=100)


class CoreEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    ticket_number: str = Field(pattern=r"^[A-Z]{2,6}-\d{8}-\d{6,12}$")
    reference: Reference | None = None
    note: PlainText | None = Field(default=None, min_length=1, max_length=20000)
    status: Status | None = None
    outcome: Literal["resolved", "partially_resolved", "rejected", "withdrawn"] | None = None
    summary: PlainText | None = Field(default=None, max_length=5000)
    message: PlainText | None = Field(
        default=None,
        min_length=1,
        max_length=5000,
        description="told to the customer on the ticket's channel",
    )

    @model_validator(mode="after")
    def _does_something(self) -> CoreEvent:
        if not (self.reference or self.note or self.status or self.message):
            raise ValueError("give at least one of reference, note, status, message")
        if (self.outcome or self.summary) and self.status not in ("resolved", "under_review"):
            raise ValueError("outcome and summary go with status resolved or under_review")
        return self


class CoreConnector(ChannelConnector[CoreConfig]):
    name = "core"
    sdk_version = "1.0"
    Config = CoreConfig
    capabilities = Capabilities(outbound=False, message_kinds=("note", "status", "reference"))

    def router(self) -> APIRouter:
        router = APIRouter(tags=["channel: core"])
        router.add_api_route(
            "/events",
            self._receive,
            methods=["POST"],
            status_code=202,
            summary="A core system reports what it has done about a ticket",
            responses={
                200: {"description": "This webhook-id was applied before; same answer"},
                401: {"description": "Signature matches no configured system"},
                404: {"description": "No such ticket"},
                409: {"description": "The lifecycle refuses the move; detail says why"},
                422: {"description": "Invalid event; each bad field named"},
            },
        )
        return router

    def _system(self, request: Request, body: bytes) -> tuple[str, str]:
        """The system whose secret signed the request, and the webhook-id."""
        signers = {
            name: [system.secret, *system.previous_secrets]
            for name, system in self.config.systems.items()
        }
        return verify_signer(
            signers, request.headers, body, self.context.clock.now(), what="system"
        )

    async def _receive(self, request: Request) -> Response:
        try:
            body = await read_limited_body(request, self.config.max_body_bytes)
        except BodyTooLarge as exc:
            return error_response(413, str(exc))
        try:
            system, msg_id = self._system(request, body)
        except SignatureError as exc:
            return error_response(401, f"signature refused: {exc}")
        try:
            CoreEvent.model_validate_json(body)
        except ValidationError as exc:
            return error_response(422, "invalid event", validation_errors(exc))
        result = await self.context.ingest.apply(
            InboundEnvelope(
                channel=self.name,
                external_id=f"{system}:{msg_id}",
                body=body,
                content_type="application/json",
                received_at=self.context.clock.now(),
                metadata={"system": system},
            )
        )
        if result.outcome == "refused":
            return error_response(409, result.detail)
        if result.outcome == "not_found":
            return error_response(404, result.detail)
        return receipt_response(
            result.receipt,
            result.created,
            ticket_number=result.ticket_number,
            status="applied" if result.outcome == "applied" else "pending",
        )

    def parse(self, envelope: InboundEnvelope) -> TicketCommand:
        event = CoreEvent.model_validate_json(envelope.body)
        return TicketCommand(
            ticket_number=event.ticket_number,
            actor=f"system:{envelope.metadata.get('system', 'unknown')}",
            reference=(event.reference.type, event.reference.id) if event.reference else None,
            note=event.note,
            status=event.status,
            outcome=event.outcome,
            summary=event.summary,
            customer_message=event.message,
        )

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        return DeliveryResult.give_up("the core channel receives only; systems get webhooks")

    async def health(self) -> Health:
        return Health(ok=True, detail=f"inbound only; {len(self.config.systems)} system(s)")
