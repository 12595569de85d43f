"""WeChat Official Accounts: pushes in at ``/channels/wechat/<account>``, customer-service and
template messages out, media fetched on the side.

The parts, each in its module: ``inbound`` (the push endpoint), ``crypto`` (signatures and
decryption), ``untrusted_xml`` (defused parsing), ``messages`` (what a push means), ``media``
(fetching pictures and voice after the ack), ``api`` (WeChat's HTTP API and its token),
``outbound`` (the 48-hour window and template fallback), ``codes`` (WeChat's error codes).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import ClassVar

from fastapi import APIRouter

from connectors.wechat.api import ApiFailure, WeChatApi
from connectors.wechat.config import WeChatConfig
from connectors.wechat.inbound import PushReceiver
from connectors.wechat.media import MediaFetcher
from connectors.wechat.messages import describe, read_message, ticket_reference
from connectors.wechat.outbound import Sender
from hub.sdk import (
    MIB,
    Attachment,
    Capabilities,
    ChannelConnector,
    ConnectorContext,
    DeliveryResult,
    Health,
    Identity,
    InboundEnvelope,
    InboundMessage,
    OutboundMessage,
    PollResult,
)

OPENID = "wechat_openid"
"""The identity kind of a WeChat customer: the openid WeChat signed the push for."""


class WeChatConnector(ChannelConnector[WeChatConfig]):
    name = "wechat"
    sdk_version = "1.1"
    Config = WeChatConfig
    capabilities = Capabilities(
        inbound=True,
        outbound=True,
        message_kinds=("text", "image", "voice", "video", "location", "link", "event"),
        attachments=True,
        max_attachment_bytes=10 * MIB,
        reply_window=timedelta(hours=48),
        rate_limit_per_second=50.0,
    )
    poll_interval: ClassVar[float | None] = 5.0
    """How often the hub asks for pending media fetches (see ``connectors.wechat.media``)."""

    def __init__(self, config: WeChatConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self.api = WeChatApi(config, context.http, context.state, context.clock)
        self.media = MediaFetcher(self.name, config, self.api, context.state, context.clock)
        self.sender = Sender(config, self.api, context.state, context.clock)
        self.receiver = PushReceiver(
            self.name, config, context.ingest, context.state, context.clock, self.media
        )

    def router(self) -> APIRouter:
        return self.receiver.router()

    async def poll(self, cursor: str | None) -> PollResult:
        return await self.media.poll(cursor)

    def parse(self, envelope: InboundEnvelope) -> InboundMessage:
        account = str(envelope.metadata.get("account", ""))
        if account not in self.config.accounts:
            raise LookupError(f"WeChat account {account!r} is not configured")
        if "attaches_to" in envelope.metadata:
            return self._media(envelope)
        received = read_message(envelope.body)
        reading = describe(received, self.config.accounts[account].menu_requests)
        follow_up = envelope.metadata.get("follow_up")
        return InboundMessage(
            text=reading.text,
            identities=(Identity(OPENID, received.openid, verified=True),),
            sent_at=received.sent_at,
            reply_address={
                "account": account,
                "openid": received.openid,
                "last_inbound_at": received.sent_at.isoformat(),
            },
            ticket_reference=(
                ticket_reference(reading.text, str(follow_up) if follow_up else None)
                if reading.opens_ticket
                else None
            ),
            opens_ticket=reading.opens_ticket,
        )

    def _media(self, envelope: InboundEnvelope) -> InboundMessage:
        """The second envelope of an image or voice message: its media, or why there is none."""
        meta = envelope.metadata
        error = str(meta.get("error", ""))
        attachments: tuple[Attachment, ...] = ()
        if not error:
            attachments = (
                Attachment(
                    str(meta.get("filename", "media")), envelope.content_type, envelope.body
                ),
            )
        kind = "图片" if meta.get("kind") == "image" else "语音"
        return InboundMessage(
            text=f"客户发送的{kind}未能获取：{error}" if error else "",
            identities=(Identity(OPENID, str(meta["openid"]), verified=True),),
            sent_at=datetime.fromisoformat(str(meta["sent_at"])),
            attachments=attachments,
            attaches_to=str(meta["attaches_to"]),
            opens_ticket=False,
        )

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        return await self.sender.send(message)

    async def health(self) -> Health:
        """Every account can get a token and call the API (``get_api_domain_ip``)."""
        problems = []
        for account in sorted(self.config.accounts):
            try:
                await self.api.get(account, "/cgi-bin/get_api_domain_ip", {})
            except ApiFailure as failure:
                problems.append(f"{account}: {failure.verdict.reason}")
        if problems:
            return Health(ok=False, detail="; ".join(problems))
        return Health(ok=True, detail=f"{len(self.config.accounts)} account(s) reach WeChat")
