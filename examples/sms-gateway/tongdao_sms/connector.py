"""The SMS gateway connector. Imports nothing of Tongdao but ``hub.sdk``."""

from __future__ import annotations

import hashlib
import hmac
import json
import re

from fastapi import APIRouter, Request, Response
from pydantic import AnyHttpUrl, BaseModel, Field, ValidationError

from hub.sdk import (
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
    error_response,
    post_json,
    read_limited_body,
    validation_errors,
)

MAX_BODY = 64 * 1024
MAX_TEXT = 500  # the gateway splits long messages; beyond this it refuses them
_TICKET = re.compile(r"\bTD-\d{8}-\d{6}\b")


class SmsConfig(ConnectorConfig):
    api_url: AnyHttpUrl
    api_key: str = Field(min_length=8)
    signing_key: str = Field(min_length=16)
    sender: str = Field(default="10690000", pattern=r"^\d{3,20}$")
    tolerance_seconds: int = Field(default=300, gt=0, le=3600)


class Uplink(BaseModel):
    msg_id: str = Field(min_length=1, max_length=100)
    from_: str = Field(alias="from", pattern=r"^\+?\d{5,20}$")
    to: str = Field(pattern=r"^\+?\d{3,20}$")
    text: str = Field(min_length=1, max_length=2000)


def sign_uplink(key: str, timestamp: int, body: bytes) -> str:
    return hmac.new(key.encode(), f"{timestamp}\n".encode() + body, hashlib.sha256).hexdigest()


class SmsConnector(ChannelConnector[SmsConfig]):
    name = "sms"
    sdk_version = "1.0"
    Config = SmsConfig
    capabilities = Capabilities(message_kinds=("text",), rate_limit_per_second=50)

    @property
    def _api(self) -> str:
        return str(self.config.api_url).rstrip("/")

    def router(self) -> APIRouter:
        router = APIRouter(tags=["channel: sms"])
        router.add_api_route("/uplink", self._uplink, methods=["POST"], status_code=200)
        return router

    def _signature_problem(self, request: Request, body: bytes) -> str | None:
        stamp = request.headers.get("x-sms-timestamp", "")
        signature = request.headers.get("x-sms-signature", "")
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12) or not signature:
            return "X-Sms-Timestamp and X-Sms-Signature are required"
        if abs(self.context.clock.now().timestamp() - int(stamp)) > self.config.tolerance_seconds:
            return "X-Sms-Timestamp is outside the allowed window"
        expected = sign_uplink(self.config.signing_key, int(stamp), body)
        if not hmac.compare_digest(expected, signature.lower()):
            return "X-Sms-Signature does not match"
        return None

    async def _uplink(self, request: Request) -> Response:
        try:
            body = await read_limited_body(request, MAX_BODY)
        except BodyTooLarge as exc:
            return error_response(413, str(exc))
        if problem := self._signature_problem(request, body):
            return error_response(401, problem)
        try:
            uplink = Uplink.model_validate_json(body)
        except ValidationError as exc:
            return error_response(422, "invalid uplink", validation_errors(exc))
        result = await self.context.ingest.accept(
            InboundEnvelope(
                channel=self.name,
                external_id=uplink.msg_id,
                body=body,
                content_type="application/json",
                received_at=self.context.clock.now(),
            )
        )
        # The gateway expects 200 with code 0 for "received"; it retries anything else.
        return Response(
            json.dumps({"code": 0, "receipt": result.receipt}), 200, media_type="application/json"
        )

    def parse(self, envelope: InboundEnvelope) -> InboundMessage:
        uplink = Uplink.model_validate_json(envelope.body)
        reference = _TICKET.search(uplink.text.upper())
        return InboundMessage(
            text=uplink.text,
            # The sender's number comes from the carrier network, not from the sender's typing.
            identities=(Identity("phone", uplink.from_, verified=True),),
            sent_at=envelope.received_at,
            reply_address={"phone": uplink.from_},
            ticket_reference=reference.group(0) if reference else None,
        )

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        phone = message.recipient.get("phone")
        if not phone:
            return DeliveryResult.give_up("the recipient has no phone number")
        if len(message.text) > MAX_TEXT:
            return DeliveryResult.give_up(f"text is longer than {MAX_TEXT} characters for SMS")
        body = json.dumps(
            {
                "to": phone,
                "text": message.text,
                "client_ref": message.idempotency_key,
                "from": self.config.sender,
            },
            ensure_ascii=False,
        ).encode()
        headers = {"authorization": f"Bearer {self.config.api_key}"}
        return await post_json(self.context.http, f"{self._api}/v1/sms", body, headers)

    async def health(self) -> Health:
        try:
            response = await self.context.http.get(f"{self._api}/v1/health")
        except Exception as exc:
            return Health(ok=False, detail=f"gateway unreachable: {type(exc).__name__}")
        return Health(
            ok=response.status_code == 200, detail=f"gateway health answered {response.status_code}"
        )
