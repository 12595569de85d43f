"""Mail delivered straight to the hub over LMTP or SMTP (aiosmtpd), by a real client."""

from __future__ import annotations

import asyncio
import smtplib
from typing import Any

import pytest

from hub.sdk import ApplyResult, InboundEnvelope, IngestResult
from hub.testing import InMemoryIngest
from hub.testing.server import free_port
from tests import email_samples as samples
from tests.email_setup import email_config, running_connector

ADDRESS = "support@bank.test"


class _FailingIngest(InMemoryIngest):
    """A store that cannot commit (a database that is down)."""

    async def accept(self, envelope: InboundEnvelope) -> IngestResult:
        raise ConnectionError("database unavailable")

    async def apply(self, envelope: InboundEnvelope) -> ApplyResult:
        raise ConnectionError("database unavailable")


def _deliver(protocol: str, port: int, raw: bytes, rcpt: list[str]) -> Any:
    """What the bank's MTA does; returns the per-recipient answers, or raises."""
    client = (smtplib.LMTP if protocol == "lmtp" else smtplib.SMTP)("127.0.0.1", port, timeout=10)
    try:
        client.ehlo_or_helo_if_needed() if protocol == "smtp" else client.ehlo()
        return client.sendmail("zhangsan@qq.com", rcpt, raw)
    finally:
        client.close()


def _config(protocol: str, port: int, **intake: Any) -> dict[str, Any]:
    return email_config(
        address=ADDRESS,
        intake={"port": port, "protocol": protocol, **intake},
        max_message_bytes=64 * 1024,
    )


@pytest.mark.parametrize("protocol", ["lmtp", "smtp"])
async def test_delivered_mail_is_stored_before_it_is_acknowledged(protocol: str) -> None:
    ingest = InMemoryIngest()
    port = free_port()
    raw = samples.gbk_mail()
    rcpt = [ADDRESS, "support+TD-20261123-000042@bank.test"]
    async with running_connector(_config(protocol, port), ingest=ingest) as connector:
        refused = await asyncio.to_thread(_deliver, protocol, port, raw, rcpt)
        assert refused == {}
        (envelope,) = ingest.envelopes
        # The MTA retries (a lost 250): the same Message-ID stores nothing new.
        await asyncio.to_thread(_deliver, protocol, port, raw, rcpt)
        message = connector.parse(envelope)
    assert len(ingest.envelopes) == 1
    assert envelope.metadata["source"] == protocol
    assert envelope.metadata["rcpt_to"] == rcpt
    assert message.text == samples.GBK_TEXT.strip()
    # A plus-address in RCPT TO is the strongest evidence of the ticket.
    assert message.ticket_reference == "TD-20261123-000042"


async def test_a_store_that_fails_answers_451_so_the_mta_keeps_the_mail() -> None:
    port = free_port()
    async with running_connector(_config("smtp", port), ingest=_FailingIngest()):
        with pytest.raises(smtplib.SMTPDataError) as caught:
            await asyncio.to_thread(_deliver, "smtp", port, samples.gbk_mail(), [ADDRESS])
    assert caught.value.smtp_code == 451


async def test_only_our_addresses_clients_and_sizes_are_accepted() -> None:
    ingest = InMemoryIngest()
    port = free_port()
    async with running_connector(_config("smtp", port), ingest=ingest):
        with pytest.raises(smtplib.SMTPRecipientsRefused) as foreign:
            await asyncio.to_thread(
                _deliver, "smtp", port, samples.gbk_mail(), ["someone@elsewhere.example"]
            )
        big = samples.mail(body=b"x" * (70 * 1024))
        with pytest.raises((smtplib.SMTPSenderRefused, smtplib.SMTPDataError)) as too_big:
            await asyncio.to_thread(_deliver, "smtp", port, big, [ADDRESS])
    assert foreign.value.recipients["someone@elsewhere.example"][0] == 550
    assert too_big.value.smtp_code == 552
    assert ingest.envelopes == []

    port = free_port()
    closed = _config("smtp", port, allowed_clients=["10.0.0.0/8"])
    async with running_connector(closed, ingest=ingest):
        with pytest.raises(smtplib.SMTPSenderRefused) as stranger:
            await asyncio.to_thread(_deliver, "smtp", port, samples.gbk_mail(), [ADDRESS])
    assert stranger.value.smtp_code == 554
    assert ingest.envelopes == []


async def test_a_second_process_without_the_port_says_so_in_its_health() -> None:
    port = free_port()
    async with (
        running_connector(_config("lmtp", port)),
        running_connector(_config("lmtp", port)) as second,
    ):
        health = await second.health()
    assert not health.ok and "intake: cannot listen" in health.detail
