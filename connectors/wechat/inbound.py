"""``/channels/wechat/<account>``: the server URL a bank enters in the account's 服务器配置.

``GET`` is WeChat's server verification: answer ``echostr`` when the signature holds.

``POST`` is a push. WeChat waits 5 seconds, then retries (three times in all), and after that
tells the customer the account is out of service. So the order is fixed and nothing slow is
on it: bounded body → timestamp and signature → defused XML → (compatible/safe mode)
``msg_signature`` and decryption → defused XML again → the push's fields → record a media
job if any → store the envelope (committed) → answer ``success``. A retry finds the envelope
by its external id and is answered ``success`` again; nothing is stored twice.

What is stored is the decrypted message exactly as WeChat sent it, so ``parse`` needs no key
(a rotated EncodingAESKey does not strand stored messages), and so operators can read it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import structlog
from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse

from connectors.wechat.config import AccountConfig, WeChatConfig
from connectors.wechat.crypto import PushRefused, check_signature, decrypt
from connectors.wechat.media import MediaFetcher, MediaJob
from connectors.wechat.messages import (
    MEDIA_TYPES,
    MessageInvalid,
    Received,
    opens_window,
    read_message,
)
from connectors.wechat.outbound import follow_up_key, seen_key
from connectors.wechat.untrusted_xml import HostileXml, read_push
from hub.sdk import (
    BodyTooLarge,
    Clock,
    ConnectorState,
    InboundEnvelope,
    Ingest,
    error_response,
    read_limited_body,
)

log = structlog.get_logger(__name__)

_NONCE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ECHO = re.compile(r"[A-Za-z0-9_.=+/-]{1,512}")


@dataclass(frozen=True, slots=True)
class _Stamp:
    signature: str
    timestamp: str
    nonce: str


class PushReceiver:
    def __init__(
        self,
        channel: str,
        config: WeChatConfig,
        ingest: Ingest,
        state: ConnectorState,
        clock: Clock,
        media: MediaFetcher,
    ) -> None:
        self._channel = channel
        self._config = config
        self._ingest = ingest
        self._state = state
        self._clock = clock
        self._media = media

    def router(self) -> APIRouter:
        router = APIRouter(tags=["channel: wechat"])
        router.add_api_route(
            "/{account}",
            self.verify,
            methods=["GET"],
            summary="WeChat's server verification (signature, timestamp, nonce, echostr)",
            responses={401: {"description": "Signature or timestamp refused"}},
        )
        router.add_api_route(
            "/{account}",
            self.receive,
            methods=["POST"],
            summary="A push from WeChat's servers (message or event); answered `success`",
            responses={
                200: {"description": "Stored (or stored before): `success`"},
                400: {"description": "Hostile, oversized, undecryptable or invalid XML"},
                401: {"description": "signature or msg_signature refused"},
                403: {"description": "A plaintext push to an account in safe mode"},
                404: {"description": "No such account"},
            },
        )
        return router

    async def verify(self, account: str, request: Request) -> Response:
        try:
            settings = self._account(account)
            stamp = self._stamp(request.query_params)
            check_signature(
                settings.token.get_secret_value(), stamp.signature, stamp.timestamp, stamp.nonce
            )
        except PushRefused as refused:
            return error_response(refused.status, refused.reason)
        echostr = request.query_params.get("echostr", "")
        if not _ECHO.fullmatch(echostr):
            return error_response(400, "echostr is missing or not a WeChat echo string")
        return PlainTextResponse(echostr)

    async def receive(self, account: str, request: Request) -> Response:
        try:
            settings = self._account(account)
            body = await read_limited_body(request, self._config.max_body_bytes)
            xml, encrypted = self._open(settings, request.query_params, body)
            received = read_message(xml)
            if settings.original_id and received.to_user != settings.original_id:
                raise PushRefused(400, "ToUserName is not this account's original id")
        except BodyTooLarge as exc:
            return error_response(400, str(exc))
        except PushRefused as refused:
            return error_response(refused.status, refused.reason)
        except (HostileXml, MessageInvalid) as exc:
            return error_response(400, str(exc))

        external_id = received.external_id(account)
        if received.msg_type in MEDIA_TYPES and received.media_id:
            await self._media.enqueue(
                MediaJob(
                    account=account,
                    message_id=external_id,
                    openid=received.openid,
                    kind=received.msg_type,
                    media_id=received.media_id,
                    sent_at=received.sent_at.isoformat(),
                )
            )
        metadata: dict[str, str | bool] = {"account": account, "encrypted": encrypted}
        follow_up = await self._state.get(follow_up_key(account, received.openid))
        if follow_up:
            metadata["follow_up"] = follow_up
        await self._ingest.accept(
            InboundEnvelope(
                channel=self._channel,
                external_id=external_id,
                body=xml,
                content_type="application/xml",
                received_at=self._clock.now(),
                metadata=metadata,
            )
        )
        await self._record_interaction(account, received)
        return PlainTextResponse("success")

    def _account(self, name: str) -> AccountConfig:
        settings = self._config.accounts.get(name)
        if settings is None:
            raise PushRefused(404, "no such WeChat account")
        return settings

    def _stamp(self, query: Mapping[str, str]) -> _Stamp:
        timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            raise PushRefused(401, "timestamp is missing or not unix seconds")
        if not _NONCE.fullmatch(nonce):
            raise PushRefused(401, "nonce is missing or malformed")
        skew = self._clock.now().timestamp() - int(timestamp)
        if abs(skew) > self._config.timestamp_tolerance_seconds:
            direction = "old" if skew > 0 else "far in the future"
            raise PushRefused(401, f"timestamp is too {direction} ({int(abs(skew))} s off)")
        return _Stamp(query.get("signature", ""), timestamp, nonce)

    def _open(
        self, settings: AccountConfig, query: Mapping[str, str], body: bytes
    ) -> tuple[bytes, bool]:
        """Check the push's signatures and return the message's XML, decrypted if need be."""
        stamp = self._stamp(query)
        token = settings.token.get_secret_value()
        check_signature(token, stamp.signature, stamp.timestamp, stamp.nonce)
        outer = read_push(body)
        encrypted = query.get("encrypt_type", "raw").lower() == "aes" or bool(outer.get("Encrypt"))
        if not encrypted:
            if settings.mode == "safe":
                raise PushRefused(403, "the account is in safe mode: pushes must be encrypted")
            return body, False
        aes_key = settings.aes_key
        if aes_key is None:
            raise PushRefused(400, "an encrypted push, but the account has no encoding_aes_key")
        ciphertext = outer.get("Encrypt")
        if not ciphertext:
            raise PushRefused(400, "encrypt_type=aes but the body has no <Encrypt>")
        check_signature(
            token, query.get("msg_signature", ""), stamp.timestamp, stamp.nonce, ciphertext
        )
        return decrypt(aes_key, settings.app_id, ciphertext), True

    async def _record_interaction(self, account: str, received: Received) -> None:
        """When the customer last interacted with the account: it opens WeChat's 48-hour
        window for customer-service messages, some events included (``opens_window``). The
        push is already stored, so a failure here is logged, not answered: the reply address
        still carries the time."""
        if not opens_window(received):
            return
        try:
            # ``advance``, not a read then a put: the state keeps the later of the stored and
            # this push's time in one write, so a push handled late (a retry, another process)
            # never moves the window back, and no read of the state sits on the ack path.
            # ``sent_at`` is always UTC, so its ISO form orders as time.
            await self._state.advance(
                seen_key(account, received.openid),
                received.sent_at.isoformat(),
                expires_at=received.sent_at + self._config.reply_window,
            )
        except Exception:
            log.exception("wechat.interaction_not_recorded", account=account)
