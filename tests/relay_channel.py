"""A channel for tests that carries whatever identities it is given, verified or not.

The customer-context tests need customers who write from WeChat (a verified openid) and by
email (a verified sender) beside the app channel; this connector stands in for both through
the real path (envelope stored, parsed by its connector, normalized, ticket opened), so the
enrichment reads identities back from the stored envelope exactly as it does for a real
channel. Outbound messages are kept in ``sent``.
"""

from __future__ import annotations

import json
from datetime import datetime

from hub.registry import Discovered, discover
from hub.sdk import (
    Capabilities,
    ChannelConnector,
    ConnectorConfig,
    ConnectorContext,
    DeliveryResult,
    Identity,
    InboundEnvelope,
    InboundMessage,
    OutboundMessage,
)


class RelayConfig(ConnectorConfig):
    pass


class RelayConnector(ChannelConnector[RelayConfig]):
    name = "relay"
    sdk_version = "1.1"
    Config = RelayConfig
    capabilities = Capabilities()

    def __init__(self, config: RelayConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self.sent: list[OutboundMessage] = []

    def parse(self, envelope: InboundEnvelope) -> InboundMessage:
        body = json.loads(envelope.body)
        return InboundMessage(
            text=body["text"],
            identities=tuple(Identity(k, v, verified) for k, v, verified in body["identities"]),
            sent_at=envelope.received_at,
            reply_address={"to": body["identities"][0][1]},
        )

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        self.sent.append(message)
        return DeliveryResult.delivered()


def available() -> dict[str, Discovered]:
    """Every installed connector plus the relay."""
    return {**discover(), "relay": Discovered("relay", RelayConnector, None, None)}


def relay_envelope(
    now: datetime, external_id: str, text: str, *identities: tuple[str, str, bool]
) -> InboundEnvelope:
    """A message as the relay stores it; ``identities`` are ``(kind, value, verified)``."""
    return InboundEnvelope(
        channel="relay",
        external_id=external_id,
        body=json.dumps({"text": text, "identities": identities}, ensure_ascii=False).encode(),
        content_type="application/json",
        received_at=now,
    )
