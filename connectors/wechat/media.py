"""Pictures and voice notes: fetched after the push is answered, never in the way of the ticket.

A WeChat image or voice push carries only a ``MediaId``; the bytes must be fetched from
``cgi-bin/media/get`` within three days. Fetching while WeChat waits (5 s) would put a slow
API on the ack path, and ``parse`` must stay pure, so it cannot fetch either. Instead:

1. **Before the push is stored,** a fetch job is recorded in the connector's shared state
   (claimed, so WeChat's retries do not reset it). Recording it first means no stored message
   is ever without its job; a job whose push was never stored only fetches in vain.
2. **The message opens its ticket at once** with ``[图片]`` or the voice transcript.
3. **The hub polls the connector** (``poll_interval``) and the due jobs are fetched. Each
   download is bounded (``max_media_bytes``) and becomes a second envelope of the same message,
   external id ``<message>:media``, with the media as its body. Its ``parse`` says
   ``attaches_to=<message>``: the hub adds the attachment (stored by content hash) to the
   message the ticket already has.
4. **A failed fetch is retried** with exponential backoff; once WeChat says no for good (media
   expired, too large) or the attempts run out, a final envelope records why, which the hub
   keeps as a note on the ticket, so agents know a picture is missing.
5. **The job is deleted only after the hub has stored its envelope:** ``poll`` returns the
   finished jobs' keys as its cursor, which the hub saves after storing the envelopes, and the
   next poll deletes them. After a crash the fetch repeats, and the envelope's external id
   makes the repeat harmless.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta

from connectors.wechat.api import ApiFailure, Media, WeChatApi
from connectors.wechat.codes import Action
from connectors.wechat.config import WeChatConfig
from hub.sdk import Clock, ConnectorState, InboundEnvelope, PollResult

JOB_PREFIX = "media:"
MEDIA_LIFETIME = timedelta(days=3)
BACKOFF_MAX = timedelta(hours=1)
CONCURRENCY = 4
POLL_BYTES = 32 * 1024 * 1024
"""A poll stops fetching once it holds this much media, so it never holds more than this
plus ``CONCURRENCY`` downloads."""
POLL_JOBS = 50

_EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "audio/amr": "amr",
    "audio/speex": "speex",
    "audio/mpeg": "mp3",
}


@dataclass(frozen=True, slots=True)
class MediaJob:
    account: str
    message_id: str
    """The external id of the message the media belongs to."""
    openid: str
    kind: str
    media_id: str
    sent_at: str
    attempts: int = 0
    next_attempt_at: str = ""
    last_error: str = ""

    @property
    def key(self) -> str:
        return JOB_PREFIX + self.message_id

    @property
    def expires_at(self) -> datetime:
        return datetime.fromisoformat(self.sent_at) + MEDIA_LIFETIME

    def dump(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def load(cls, raw: str) -> MediaJob | None:
        try:
            return cls(**json.loads(raw))
        except (TypeError, ValueError):
            return None


def media_external_id(message_id: str) -> str:
    return f"{message_id}:media"


class MediaFetcher:
    def __init__(
        self,
        channel: str,
        config: WeChatConfig,
        api: WeChatApi,
        state: ConnectorState,
        clock: Clock,
    ) -> None:
        self._channel = channel
        self._config = config
        self._api = api
        self._state = state
        self._clock = clock

    async def enqueue(self, job: MediaJob) -> None:
        """Record the job unless it is already there (WeChat retrying the push)."""
        now = self._clock.now()
        job = replace(job, next_attempt_at=now.isoformat())
        expires = max(job.expires_at, now + timedelta(hours=1))
        await self._state.claim(job.key, job.dump(), expires_at=expires)

    async def poll(self, cursor: str | None) -> PollResult:
        """Forget the jobs whose envelopes the hub stored (named by the last cursor), fetch
        what is due, and return the new envelopes with their jobs' keys as the cursor."""
        for key in _done(cursor):
            await self._state.delete(key)
        now = self._clock.now()
        due: list[MediaJob] = []
        for key in await self._state.keys(JOB_PREFIX, limit=500):
            raw = await self._state.get(key)
            job = MediaJob.load(raw) if raw else None
            if job is None:
                await self._state.delete(key)
                continue
            if datetime.fromisoformat(job.next_attempt_at) <= now:
                due.append(job)
            if len(due) >= POLL_JOBS:
                break
        envelopes: list[InboundEnvelope] = []
        finished: list[str] = []
        held = 0
        for start in range(0, len(due), CONCURRENCY):
            group = due[start : start + CONCURRENCY]
            results = await asyncio.gather(*(self._attempt(job, now) for job in group))
            for job, envelope in zip(group, results, strict=True):
                if envelope is not None:
                    envelopes.append(envelope)
                    finished.append(job.key)
                    held += len(envelope.body)
            if held >= POLL_BYTES:
                break
        return PollResult(tuple(envelopes), json.dumps(finished) if finished else None)

    async def _attempt(self, job: MediaJob, now: datetime) -> InboundEnvelope | None:
        """The envelope to store (media, or why there is none), or ``None`` to retry later."""
        try:
            media = await self._api.media(job.account, job.media_id, self._config.max_media_bytes)
        except ApiFailure as failure:
            attempts = job.attempts + 1
            reason = failure.verdict.reason
            final = (
                failure.verdict.action is not Action.retry
                or attempts >= self._config.media_fetch_attempts
            )
            delay = self._delay(attempts, failure.verdict.retry_after)
            if final or now + delay >= job.expires_at:
                return self._envelope(job, None, f"{reason} (after {attempts} attempt(s))", now)
            await self._state.put(
                job.key,
                replace(
                    job,
                    attempts=attempts,
                    next_attempt_at=(now + delay).isoformat(),
                    last_error=reason,
                ).dump(),
                expires_at=max(job.expires_at, now + timedelta(hours=1)),
            )
            return None
        return self._envelope(job, media, "", now)

    def _delay(self, attempts: int, retry_after: float | None) -> timedelta:
        initial = self._config.media_retry_initial_seconds
        delay = timedelta(seconds=initial * 2 ** (attempts - 1))
        if retry_after is not None:
            delay = max(delay, timedelta(seconds=retry_after))
        return min(delay, BACKOFF_MAX)

    def _envelope(
        self, job: MediaJob, media: Media | None, error: str, now: datetime
    ) -> InboundEnvelope:
        metadata: dict[str, str | int] = {
            "account": job.account,
            "openid": job.openid,
            "attaches_to": job.message_id,
            "kind": job.kind,
            "sent_at": job.sent_at,
        }
        if media is None:
            metadata["error"] = error
            body, content_type = b"", "text/plain"
        else:
            body, content_type = media.data, media.content_type
            metadata["filename"] = attachment_name(job, media)
            metadata["sha256"] = hashlib.sha256(body).hexdigest()
            metadata["size"] = len(body)
        return InboundEnvelope(
            channel=self._channel,
            external_id=media_external_id(job.message_id),
            body=body,
            content_type=content_type,
            received_at=now,
            metadata=metadata,
        )


def attachment_name(job: MediaJob, media: Media) -> str:
    extension = _EXTENSIONS.get(media.content_type)
    if extension is None and "." in media.filename:
        extension = media.filename.rsplit(".", 1)[1][:8]
    stem = f"{job.kind}-{job.message_id.rsplit(':', 1)[-1]}"
    return f"{stem}.{extension}" if extension else stem


def _done(cursor: str | None) -> list[str]:
    if not cursor:
        return []
    try:
        keys = json.loads(cursor)
    except ValueError:
        return []
    if not isinstance(keys, list):
        return []
    return [key for key in keys if isinstance(key, str) and key.startswith(JOB_PREFIX)]
