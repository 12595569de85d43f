"""Pictures and voice: fetched after the ack by the hub's poll, stored as a second envelope of
the same message, retried on failure, never in the way of the ticket."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from connectors.wechat.media import JOB_PREFIX
from hub.sdk import PollResult
from hub.testing.standins.wechat_api import WeChatApiStandIn
from tests.wechat_pushes import OPENID, Wired, retail_pusher, wechat_api, wired
from ticket_core import ManualClock

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40
MEDIA_GET = "/cgi-bin/media/get"


@dataclass
class Setup:
    api: WeChatApiStandIn
    w: Wired
    clock: ManualClock

    async def push_image(self, media_id: str = "MEDIA_1", msg_id: int = 501) -> None:
        wechat = retail_pusher()
        message = wechat.image(OPENID, media_id, msg_id, self.clock.now())
        response = await wechat.push(
            self.w.client, "/channels/wechat/retail", message, "safe", self.clock.now()
        )
        assert response.text == "success"

    async def poll(self, cursor: str | None = None) -> PollResult:
        return await self.w.connector.poll(cursor)


@pytest.fixture
async def s() -> AsyncIterator[Setup]:
    clock = ManualClock(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))
    async with wechat_api(clock) as api, wired(api.url, clock) as w:
        yield Setup(api, w, clock)


async def test_image_is_fetched_and_stored_as_an_attachment_of_its_message(s: Setup) -> None:
    s.api.add_media("MEDIA_1", JPEG, "image/jpeg")
    await s.push_image()
    [message] = s.w.ingest.envelopes
    assert s.api.calls.media_gets == 0  # nothing fetched while WeChat waited

    result = await s.poll()
    [media] = result.envelopes
    assert media.external_id == f"{message.external_id}:media"
    assert media.body == JPEG
    assert media.metadata["sha256"] == hashlib.sha256(JPEG).hexdigest()
    parsed = s.w.connector.parse(media)
    assert parsed == s.w.connector.parse(media)
    assert parsed.attaches_to == message.external_id
    assert not parsed.opens_ticket
    [attachment] = parsed.attachments
    assert (attachment.name, attachment.content_type, attachment.data) == (
        "image-501.jpg",
        "image/jpeg",
        JPEG,
    )


async def test_the_job_is_forgotten_only_after_the_hub_stored_its_envelope(s: Setup) -> None:
    s.api.add_media("MEDIA_1", JPEG)
    await s.push_image()
    first = await s.poll()
    assert json.loads(first.cursor or "[]") == [f"{JOB_PREFIX}retail:501"]
    # The hub crashed before saving the cursor: the next poll (old cursor) fetches again,
    # and the same external id makes the repeat harmless.
    again = await s.poll(None)
    assert [e.external_id for e in again.envelopes] == [e.external_id for e in first.envelopes]
    # The cursor saved: the job is deleted and nothing more is fetched.
    done = await s.poll(again.cursor)
    assert done.envelopes == () and done.cursor is None
    assert await s.w.state.keys(JOB_PREFIX) == []


async def test_wechat_retrying_the_image_push_does_not_reset_its_job(s: Setup) -> None:
    s.api.fail(MEDIA_GET, -1)
    await s.push_image()
    assert (await s.poll()).envelopes == ()  # attempt 1 failed; next one in 30 s
    await s.push_image()  # WeChat's retry of the same push
    job = json.loads(await s.w.state.get(f"{JOB_PREFIX}retail:501") or "{}")
    assert job["attempts"] == 1


async def test_a_failed_fetch_is_retried_later_and_the_message_never_waits(s: Setup) -> None:
    s.api.add_media("MEDIA_1", JPEG)
    s.api.fail(MEDIA_GET, -1, times=2)
    await s.push_image()
    # The message itself was stored at once: the hub can open the ticket now.
    assert len(s.w.ingest.envelopes) == 1

    assert (await s.poll()).envelopes == ()
    assert (await s.poll()).envelopes == ()  # not due yet: nothing attempted
    assert s.api.calls.by_path[MEDIA_GET] == 1
    s.clock.advance(seconds=30)
    assert (await s.poll()).envelopes == ()  # second failure; now 60 s
    s.clock.advance(seconds=59)
    assert (await s.poll()).envelopes == ()
    s.clock.advance(seconds=1)
    [media] = (await s.poll()).envelopes
    assert media.body == JPEG
    assert s.api.calls.by_path[MEDIA_GET] == 3


async def test_media_that_cannot_be_had_is_recorded_with_why(s: Setup) -> None:
    await s.push_image(media_id="EXPIRED")  # the stand-in answers 40007 for unknown media
    [failed] = (await s.poll()).envelopes
    assert failed.body == b""
    parsed = s.w.connector.parse(failed)
    assert parsed.attaches_to == "retail:501"
    assert parsed.attachments == ()
    assert "40007" in parsed.text and "图片" in parsed.text


async def test_media_over_the_size_limit_is_not_kept(s: Setup) -> None:
    async with wired(s.api.url, s.clock, max_media_bytes=1024) as small:
        s.api.add_media("BIG", b"x" * 4096, "image/png")
        wechat = retail_pusher()
        message = wechat.image(OPENID, "BIG", 777, s.clock.now())
        await wechat.push(small.client, "/channels/wechat/retail", message, "safe", s.clock.now())
        [failed] = (await small.connector.poll(None)).envelopes
    assert failed.body == b""
    assert "larger than 1024 bytes" in str(failed.metadata["error"])


async def test_attempts_run_out_and_the_failure_is_recorded(s: Setup) -> None:
    async with wired(s.api.url, s.clock, media_fetch_attempts=2) as w:
        s.api.fail(MEDIA_GET, -1, times=5)
        wechat = retail_pusher()
        message = wechat.image(OPENID, "MEDIA_X", 901, s.clock.now())
        await wechat.push(w.client, "/channels/wechat/retail", message, "safe", s.clock.now())
        assert (await w.connector.poll(None)).envelopes == ()
        s.clock.advance(minutes=5)
        [failed] = (await w.connector.poll(None)).envelopes
    assert "after 2 attempt(s)" in str(failed.metadata["error"])


async def test_voice_is_fetched_too(s: Setup) -> None:
    s.api.add_media("VOICE_1", b"#!AMR\n" + bytes(500), "audio/amr")
    wechat = retail_pusher()
    message = wechat.voice(OPENID, "VOICE_1", 502, s.clock.now(), recognition="帮我查一下")
    await wechat.push(s.w.client, "/channels/wechat/retail", message, "safe", s.clock.now())
    [media] = (await s.poll()).envelopes
    assert s.w.connector.parse(media).attachments[0].name == "voice-502.amr"


async def test_media_fetch_survives_a_stale_token(s: Setup) -> None:
    s.api.add_media("MEDIA_1", JPEG)
    await s.push_image()
    s.api.fail(MEDIA_GET, 42001)
    [media] = (await s.poll()).envelopes
    assert media.body == JPEG
