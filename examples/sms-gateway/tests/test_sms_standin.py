"""The connector against the gateway stand-in over real HTTP, beyond the kit's rules."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from hub.sdk import ConnectorContext, DeliveryStatus, OutboundMessage
from hub.testing import InMemoryIngest
from tongdao_sms import SmsConfig, SmsConnector
from tongdao_sms.standin import SmsGatewayStandIn


class _Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


async def test_downlink_reaches_the_gateway_once_per_client_ref() -> None:
    gateway = SmsGatewayStandIn(api_key="key-12345678", signing_key="k" * 16)
    url = await gateway.start()
    try:
        async with httpx.AsyncClient() as http:
            connector = SmsConnector(
                SmsConfig(api_url=url, api_key="key-12345678", signing_key="k" * 16),
                ConnectorContext("sms", InMemoryIngest(), http, _Clock()),
            )
            message = OutboundMessage(
                "sms",
                "ref-1",
                "TD-20261123-000001",
                {"phone": "13812345678"},
                "已受理",
                "acknowledgement",
                datetime.now(UTC),
            )
            first, again = await connector.send(message), await connector.send(message)
            assert first.status == again.status == DeliveryStatus.delivered
            assert list(gateway.sent) == ["ref-1"]
            too_long = OutboundMessage(
                "sms", "ref-2", "TD-1", {"phone": "1"}, "x" * 501, "reply", datetime.now(UTC)
            )
            refused = await connector.send(too_long)
            assert refused.status == DeliveryStatus.give_up
            assert "longer than 500" in refused.reason
    finally:
        await gateway.stop()


def test_ticket_number_in_an_sms_continues_that_ticket() -> None:
    from hub.sdk import InboundEnvelope

    connector = SmsConnector(
        SmsConfig(api_url="http://gw", api_key="key-12345678", signing_key="k" * 16),
        ConnectorContext("sms", InMemoryIngest(), httpx.AsyncClient(), _Clock()),
    )
    body = (
        b'{"msg_id": "1", "from": "13812345678", "to": "1069",'
        b' "text": "td-20261123-000007 still no refund"}'
    )
    parsed = connector.parse(
        InboundEnvelope("sms", "1", body, "application/json", datetime.now(UTC))
    )
    assert parsed.ticket_reference == "TD-20261123-000007"
    assert parsed.reply_address == {"phone": "13812345678"}
