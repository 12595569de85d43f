"""Taking mail in from a real IMAP server (Dovecot): the cursor, restarts, UIDVALIDITY, IDLE,
limits, TLS, and one broken mailbox beside a working one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest

from connectors.email.cursor import Cursor
from connectors.email.imap import encode_folder
from hub.sdk import InboundEnvelope, MemoryState
from hub.testing import InMemoryIngest
from hub.testing.standins.dovecot import Account, DovecotServer, require_binary
from tests import email_samples as samples
from tests.email_setup import email_config, running_connector
from ticket_core import ManualClock


async def _store(ingest: InMemoryIngest, envelopes: tuple[InboundEnvelope, ...]) -> int:
    """What the hub does with a poll's envelopes: store each; returns how many were new."""
    return sum([(await ingest.accept(e)).created for e in envelopes])


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Bounded wait on state a real server changes (never a fixed sleep)."""
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not within {timeout}s")


async def test_restart_neither_skips_nor_reimports(
    dovecot_server: DovecotServer, mail_account: Account
) -> None:
    ids = [samples.new_id() for _ in range(5)]
    for message_id in ids[:3]:
        dovecot_server.deliver(mail_account, samples.plain("第一批", message_id=message_id))
    ingest = InMemoryIngest()
    config = email_config(mail_account, dovecot_server)

    async with running_connector(config, ingest=ingest) as connector:
        first = await connector.poll(None)
    assert [e.external_id for e in first.envelopes] == ids[:3]
    assert await _store(ingest, first.envelopes) == 3
    position = Cursor.load(first.cursor).get("complaints")
    assert position is not None and position.uid == 3

    for message_id in ids[3:]:
        dovecot_server.deliver(mail_account, samples.plain("第二批", message_id=message_id))
    # A new process, started from the stored cursor: only what is new.
    async with running_connector(config, ingest=ingest) as restarted:
        second = await restarted.poll(first.cursor)
        again = await restarted.poll(second.cursor)
        # A crash after storing but before the cursor moved: the old cursor repeats the
        # poll, and the store drops every repeat.
        repeat = await restarted.poll(first.cursor)
    assert [e.external_id for e in second.envelopes] == ids[3:]
    assert await _store(ingest, second.envelopes) == 2
    assert again.envelopes == () and again.cursor == second.cursor
    assert await _store(ingest, repeat.envelopes) == 0
    assert [e.external_id for e in ingest.envelopes] == ids


async def test_uidvalidity_change_reads_the_folder_again_without_reimporting(
    dovecot_server: DovecotServer, mail_account: Account
) -> None:
    folder = "Complaints"
    old = [samples.plain("旧邮件", message_id=samples.new_id()) for _ in range(2)]
    for raw in old:
        dovecot_server.deliver(mail_account, raw, folder)
    config = email_config(mail_account, dovecot_server)
    config["mailboxes"][0]["folder"] = folder
    ingest = InMemoryIngest()
    async with running_connector(config, ingest=ingest) as connector:
        first = await connector.poll(None)
        await _store(ingest, first.envelopes)
        # The mailbox is restored from a backup: same mail, new UIDVALIDITY, UIDs from 1.
        dovecot_server.reset_uidvalidity(mail_account, folder)
        for raw in old:
            dovecot_server.deliver(mail_account, raw, folder)
        new_id = samples.new_id()
        dovecot_server.deliver(mail_account, samples.plain("新邮件", message_id=new_id), folder)
        second = await connector.poll(first.cursor)
    before = Cursor.load(first.cursor).get("complaints")
    after = Cursor.load(second.cursor).get("complaints")
    assert before is not None and after is not None
    assert after.uidvalidity != before.uidvalidity and after.uid == 3
    assert await _store(ingest, second.envelopes) == 1
    assert ingest.envelopes[-1].external_id == new_id


async def test_polls_take_batches_and_resume_where_they_stopped(
    dovecot_server: DovecotServer, mail_account: Account
) -> None:
    for index in range(5):
        dovecot_server.deliver(mail_account, samples.plain(f"第{index}封"))
    config = email_config(mail_account, dovecot_server, batch_size=2)
    sizes = []
    cursor = None
    async with running_connector(config) as connector:
        for _ in range(4):
            result = await connector.poll(cursor)
            sizes.append(len(result.envelopes))
            cursor = result.cursor
    assert sizes == [2, 2, 1, 0]


async def test_backlog_new_takes_only_mail_arriving_after_the_first_poll(
    dovecot_server: DovecotServer, mail_account: Account
) -> None:
    dovecot_server.deliver(mail_account, samples.plain("早就在的邮件"))
    config = email_config(mail_account, dovecot_server, backlog="new")
    async with running_connector(config) as connector:
        first = await connector.poll(None)
        dovecot_server.deliver(mail_account, samples.plain("新来的"))
        second = await connector.poll(first.cursor)
    assert first.envelopes == ()
    assert len(second.envelopes) == 1
    assert connector.parse(second.envelopes[0]).text == "新来的"


async def test_oversized_mail_is_taken_up_to_the_limit_with_its_attachments_refused(
    dovecot_server: DovecotServer, mail_account: Account
) -> None:
    big = samples.attachments_mail(
        [("录屏.mp4", "video/mp4", b"\x00\x01" * 100_000)], text="录屏见附件，请核实。"
    )
    dovecot_server.deliver(mail_account, big)
    config = email_config(mail_account, dovecot_server, max_message_bytes=64 * 1024)
    async with running_connector(config) as connector:
        (envelope,) = (await connector.poll(None)).envelopes
        message = connector.parse(envelope)
    assert len(envelope.body) == 64 * 1024 and envelope.metadata["truncated"] is True
    assert envelope.metadata["size"] == len(big.replace(b"\n", b"\r\n").replace(b"\r\r", b"\r"))
    assert message.text.startswith("录屏见附件，请核实。")
    assert "录屏.mp4" in message.text and "attachments were not fetched" in message.text
    assert message.attachments == ()


async def test_reading_mail_leaves_it_unread_in_the_shared_mailbox(
    dovecot_server: DovecotServer, mail_account: Account
) -> None:
    dovecot_server.deliver(mail_account, samples.plain("请勿标记已读"))
    async with running_connector(email_config(mail_account, dovecot_server)) as connector:
        assert len((await connector.poll(None)).envelopes) == 1
    client = dovecot_server.client(mail_account)
    try:
        client.select("INBOX")
        _, flags = client.fetch("1", "(FLAGS)")
    finally:
        client.logout()
    assert b"\\Seen" not in bytes(flags[0])  # type: ignore[arg-type]


async def test_idle_takes_new_mail_in_between_polls(
    dovecot_server: DovecotServer, mail_account: Account, clock: ManualClock
) -> None:
    ingest = InMemoryIngest()
    state = MemoryState(clock.now)
    config = email_config(mail_account, dovecot_server, idle=True)
    async with running_connector(config, ingest=ingest, state=state, clock=clock) as connector:
        first = await connector.poll(None)  # establishes where stored mail ends
        watcher = connector.watchers["complaints"]
        await _until(watcher.idling.is_set)
        message_id = samples.new_id()
        dovecot_server.deliver(mail_account, samples.plain("IDLE 送达", message_id=message_id))
        await _until(lambda: len(ingest.envelopes) == 1)
        # The next poll starts after what the watcher stored: nothing is fetched twice.
        after = await connector.poll(first.cursor)
    assert ingest.envelopes[0].external_id == message_id
    assert after.envelopes == ()
    position = Cursor.load(after.cursor).get("complaints")
    assert position is not None and position.uid == 1


async def test_only_one_process_watches_a_mailbox(
    dovecot_server: DovecotServer, mail_account: Account, clock: ManualClock
) -> None:
    state = MemoryState(clock.now)  # shared, as the hub's database is among processes
    config = email_config(mail_account, dovecot_server, idle=True)
    async with (
        running_connector(config, state=state, clock=clock) as one,
        running_connector(config, state=state, clock=clock) as two,
    ):
        await one.poll(None)
        watchers = [one.watchers["complaints"], two.watchers["complaints"]]
        await _until(lambda: any(w.idling.is_set() for w in watchers))
        await _until(lambda: any("another process" in w.status for w in watchers))
        assert sum(w.idling.is_set() for w in watchers) == 1


async def test_a_failing_mailbox_does_not_hold_up_another(
    dovecot_server: DovecotServer, mail_account: Account
) -> None:
    dovecot_server.deliver(mail_account, samples.plain("能收到"))
    config = email_config(mail_account, dovecot_server)
    good = config["mailboxes"][0]
    config["mailboxes"] = [
        {**good, "name": "broken", "password": "wrong"},
        good,
    ]
    async with running_connector(config) as connector:
        result = await connector.poll(None)
        health = await connector.health()
    assert len(result.envelopes) == 1
    cursor = Cursor.load(result.cursor)
    assert cursor.get("broken") is None and cursor.get("complaints") is not None
    assert not health.ok and "mailbox broken" in health.detail and "refused" in health.detail


async def test_a_folder_with_a_chinese_name_is_read(
    dovecot_server: DovecotServer, mail_account: Account
) -> None:
    folder = "客户 投诉"
    dovecot_server.deliver(mail_account, samples.gbk_mail(), encode_folder(folder).strip('"'))
    config = email_config(mail_account, dovecot_server)
    config["mailboxes"][0]["folder"] = folder
    async with running_connector(config) as connector:
        (envelope,) = (await connector.poll(None)).envelopes
        assert connector.parse(envelope).text == samples.GBK_TEXT.strip()


@pytest.fixture(scope="module")
def tls_dovecot() -> Iterator[DovecotServer]:
    server = DovecotServer(require_binary(), tls=True).start()
    yield server
    server.stop()


@pytest.mark.parametrize("security", ["ssl", "starttls"])
async def test_tls_mailboxes_are_verified_against_the_configured_ca(
    tls_dovecot: DovecotServer, security: str
) -> None:
    account = tls_dovecot.add_user()
    tls_dovecot.deliver(account, samples.big5_mail())
    config = email_config(account, tls_dovecot)
    box = config["mailboxes"][0]
    box.update(
        security=security,
        port=tls_dovecot.tls_port if security == "ssl" else tls_dovecot.port,
        ca_file=tls_dovecot.ca_file,
    )
    async with running_connector(config) as connector:
        (envelope,) = (await connector.poll(None)).envelopes
        assert connector.parse(envelope).text == samples.BIG5_TEXT
        assert (await connector.health()).ok

    box["ca_file"] = None  # the system's CAs do not know the test CA
    async with running_connector(config) as connector:
        result = await connector.poll(None)
        health = await connector.health()
    assert result.envelopes == ()
    assert not health.ok
