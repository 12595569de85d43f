"""The bank's app: its backend pushes signed messages in and receives signed callbacks."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import AnyHttpUrl, Field, ValidationError

from connectors.app.models import AppCallback, AppMessageIn
from hub.sdk import (
    MIB,
    Attachment,
    BodyTooLarge,
    Capabilities,
    ChannelConnector,
    ConnectorConfig,
    DeliveryResult,
    Health,
    Identity,
    InboundEnvelope,
    InboundMessage,
    OutboundMessage,
    SignatureError,
    WebhookSecret,
    error_response,
    post_json,
    read_limited_body,
    receipt_response,
    signed_headers,
    validation_errors,
    verify,
)


class AppConfig(ConnectorConfig):
    secret: WebhookSecret = Field(description="whsec_ secret that signs pushes both ways")
    previous_secrets: list[WebhookSecret] = Field(
        default_factory=list, description="still accepted on inbound pushes during a rotation"
    )
    callback_url: AnyHttpUrl | None = Field(
        default=None, description="where messages for app users are delivered"
    )
    max_body_bytes: int = Field(default=MIB, gt=0, le=16 * MIB)
    timestamp_tolerance_seconds: int = Field(
        default=300, gt=0, le=300, description="the contract refuses anything over 5 minutes"
    )


class AppConnector(ChannelConnector[AppConfig]):
    name = "app"
    sdk_version = "1.0"
    Config = AppConfig
    capabilities = Capabilities(
        message_kinds=("text",),
        attachments=True,
        max_attachment_bytes=MIB,
    )

    def router(self) -> APIRouter:
        router = APIRouter(tags=["channel: app"])
        router.add_api_route(
            "/messages",
            self._receive,
            methods=["POST"],
            status_code=202,
            summary="Push a customer's message from the app (signed, Standard Webhooks)",
            responses={
                200: {"description": "Already stored: the same receipt, nothing new"},
                401: {"description": "Missing, stale or wrong signature"},
                413: {"description": "Body over the limit"},
                422: {"description": "Body fails validation; each bad field named"},
            },
        )
        return router

    async def _receive(self, request: Request) -> Response:
        try:
            body = await read_limited_body(request, self.config.max_body_bytes)
        except BodyTooLarge as exc:
            return error_response(413, str(exc))
        try:
            msg_id = verify(
                [self.config.secret, *self.config.previous_secrets],
                request.headers,
                body,
                self.context.clock.now(),
                self.config.timestamp_tolerance_seconds,
            )
        except SignatureError as exc:
            return error_response(401, f"signature refused: {exc}")
        try:
            AppMessageIn.model_validate_json(body)
        except ValidationError as exc:
            return error_response(422, "invalid message", validation_errors(exc))
        result = await self.context.ingest.accept(
            InboundEnvelope(
                channel=self.name,
                external_id=msg_id,
                body=body,
                content_type="application/json",
                received_at=self.context.clock.now(),
                headers={"webhook-timestamp": request.headers["webhook-timestamp"]},
            )
        )
        return receipt_response(result.receipt, result.created)

    def parse(self, envelope: InboundEnvelope) -> InboundMessage:
        message = AppMessageIn.model_validate_json(envelope.body)
        identities = [Identity("app_user", message.user_id, verified=True)]
        if message.phone:
            identities.append(Identity("phone", message.phone, verified=False))
        return InboundMessage(
            text=message.text,
            identities=tuple(identities),
            sent_at=envelope.received_at,
            reply_address={"user_id": message.user_id},
            display_name=message.name,
            ticket_reference=message.ticket_number,
            attachments=tuple(
                Attachment(a.name, a.content_type, a.decoded()) for a in message.attachments
            ),
        )

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        if self.config.callback_url is None:
            return DeliveryResult.give_up("connectors.app.callback_url is not configured")
        user_id = message.recipient.get("user_id")
        if not user_id:
            return DeliveryResult.give_up("the recipient has no app user_id")
        payload = AppCallback(
            ticket_number=message.ticket_number,
            user_id=str(user_id),
            text=message.text,
            purpose=message.purpose,
            message_id=message.idempotency_key,
            sent_at=message.created_at.isoformat(),
        )
        body = payload.model_dump_json().encode()
        headers = signed_headers(
            self.config.secret, message.idempotency_key, body, self.context.clock.now()
        )
        return await post_json(self.context.http, str(self.config.callback_url), body, headers)

    async def health(self) -> Health:
        if self.config.callback_url is None:
            return Health(ok=True, detail="inbound only: no callback_url configured")
        try:
            response = await self.context.http.head(str(self.config.callback_url))
        except Exception as exc:
            return Health(ok=False, detail=f"callback_url unreachable: {type(exc).__name__}")
        return Health(
            ok=response.status_code < 500, detail=f"callback_url answered {response.status_code}"
        )
