"""Taking mail out of one IMAP folder: by poll (the hub keeps the cursor) and by IDLE.

``MailboxReader.poll`` is the source of truth. It reads everything after the cursor's UID,
in UID order, at most ``batch_size`` messages, and returns them with the position after the
last one; the hub stores the envelopes, then the cursor, so a crash in between repeats the
poll and the Message-ID dedupe drops the repeats. Nothing is skipped: a message is either in
the batch or after the returned position. A mail over ``max_message_bytes`` is fetched only
up to the limit (its attachments are then refused, its text kept), so one huge mail cannot
exhaust memory or stop the folder.

``IdleWatcher`` makes new mail arrive in seconds instead of at the next poll: it waits in IMAP
IDLE and takes new mail in itself through ``ingest.accept``. It never moves the hub's cursor;
it keeps a *mark* in the connector's shared state ("everything up to UID n is stored"), which
it advances only after ``accept`` returned, and the poll starts after the mark as well as after
its cursor so the same mail is not fetched twice. The poll in turn publishes its cursor as the
mark, so a watcher started later knows where stored mail ends. Among many processes of one
installation one watcher per mailbox holds a lease; the others only poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from connectors.email.config import EmailConfig, ImapMailbox
from connectors.email.cursor import Position
from connectors.email.imap import FolderState, ImapError, ImapSession, MessageInfo
from connectors.email.oauth import TokenError, TokenSource
from connectors.email.reading import external_id
from hub.sdk import Clock, ConnectorState, InboundEnvelope, Ingest

log = structlog.get_logger(__name__)

CONTENT_TYPE = "message/rfc822"
POLL_BYTES = 64 * 1024 * 1024
"""Raw bytes one mailbox's poll gathers at most (or one message over the limit's worth)."""
LEASE = timedelta(minutes=10)
IDLE_SECONDS = 240.0
"""Re-issue IDLE (and renew the lease) every four minutes: well inside the 29 minutes RFC 2177
allows, and short enough for NAT boxes and firewalls that drop quiet connections."""


@dataclass(frozen=True, slots=True)
class Polled:
    envelopes: tuple[InboundEnvelope, ...]
    position: Position | None
    error: str | None = None


class MailboxReader:
    def __init__(
        self,
        config: EmailConfig,
        mailbox: ImapMailbox,
        *,
        channel: str,
        clock: Clock,
        state: ConnectorState,
        tokens: TokenSource | None,
    ) -> None:
        self.config = config
        self.mailbox = mailbox
        self._channel = channel
        self._clock = clock
        self._state = state
        self._tokens = tokens

    @property
    def mark_key(self) -> str:
        return f"mark:{self.mailbox.name}"

    async def open(self) -> ImapSession:
        box = self.mailbox
        try:
            if box.oauth2 is not None:
                assert self._tokens is not None
                secret = await self._tokens.token()
            else:
                secret = box.password.get_secret_value() if box.password else ""
        except TokenError as exc:
            raise ImapError(f"no access token for {box.username}: {exc}") from exc
        try:
            return await ImapSession.open(
                box, self.config.timeout_seconds, secret, oauth=box.oauth2 is not None
            )
        except ImapError:
            if self._tokens is not None:
                self._tokens.forget()  # a refused token may be revoked: fetch anew next time
            raise

    # --- the poll -------------------------------------------------------------------

    async def poll(self, position: Position | None) -> Polled:
        """What arrived after ``position``; raises ImapError only when nothing was read."""
        session = await self.open()
        try:
            folder = await session.select()
            start = self._start(position, folder)
            if self.config.idle:  # the mark only matters to an IDLE watcher
                await self.publish_mark(Position(folder.uidvalidity, start))
                mark = await self.read_mark(folder.uidvalidity)
                if mark is not None and mark.uid > start:
                    start = mark.uid
            envelopes: list[InboundEnvelope] = []
            last = start
            try:
                async for uid, envelope in self.fetch_after(session, folder, start):
                    if envelope is not None:
                        envelopes.append(envelope)
                    last = uid
            except ImapError as exc:
                return Polled(tuple(envelopes), Position(folder.uidvalidity, last), str(exc))
            return Polled(tuple(envelopes), Position(folder.uidvalidity, last))
        finally:
            await session.close()

    def _start(self, position: Position | None, folder: FolderState) -> int:
        if position is not None and position.uidvalidity == folder.uidvalidity:
            return position.uid
        if position is not None:
            log.warning(
                "email.uidvalidity_changed",
                mailbox=self.mailbox.name,
                was=position.uidvalidity,
                now=folder.uidvalidity,
            )
            return 0  # every old UID is void: read it all again; Message-IDs drop repeats
        if self.config.backlog == "new" and folder.uidnext:
            return folder.uidnext - 1
        return 0

    async def fetch_after(
        self, session: ImapSession, folder: FolderState, start: int
    ) -> AsyncIterator[tuple[int, InboundEnvelope | None]]:
        """``(uid, envelope)`` for up to ``batch_size`` messages after ``start``, in UID order,
        and no more bytes than ``POLL_BYTES`` (a poll's envelopes are held in memory until the
        hub stores them; at least one message always comes). The envelope is None for a
        message expunged between listing and reading."""
        uids = (await session.uids_after(start))[: self.config.batch_size]
        if not uids:
            return
        infos = await session.info(uids)
        limit = self.config.max_message_bytes
        budget = max(limit, POLL_BYTES)
        taken = 0
        for uid in uids:
            info = infos.get(uid)
            if info is None:
                yield uid, None
                continue
            size = min(info.size, limit)
            if taken and taken + size > budget:
                return
            truncated = info.size > limit
            raw = await session.fetch(uid, limit if truncated else None)
            if raw is None:
                # Listed a moment ago, yet no body came: never step over a mail we could not
                # read. The poll stops before it and tries again; if it was expunged, the next
                # listing will not show it.
                raise ImapError(f"UID {uid}: the server sent no message body")
            taken += len(raw)
            yield uid, self._envelope(folder, info, raw, truncated)

    def _envelope(
        self, folder: FolderState, info: MessageInfo, raw: bytes, truncated: bool
    ) -> InboundEnvelope:
        now = self._clock.now()
        metadata: dict[str, object] = {
            "source": "imap",
            "mailbox": self.mailbox.name,
            "uidvalidity": folder.uidvalidity,
            "uid": info.uid,
            "size": info.size,
        }
        if info.arrived_at is not None:
            metadata["arrived_at"] = info.arrived_at.isoformat()
        if truncated:
            metadata["truncated"] = True
        return InboundEnvelope(
            channel=self._channel,
            external_id=external_id(raw),
            body=raw,
            content_type=CONTENT_TYPE,
            received_at=now,
            metadata=metadata,
        )

    # --- the mark shared with the IDLE watcher --------------------------------------

    async def read_mark(self, uidvalidity: int) -> Position | None:
        mark = Position.load(await self._state.get(self.mark_key))
        return mark if mark is not None and mark.uidvalidity == uidvalidity else None

    async def publish_mark(self, position: Position) -> None:
        """Record that everything up to ``position`` is stored; never moves a mark back
        within one UIDVALIDITY."""
        current = Position.load(await self._state.get(self.mark_key))
        if (
            current is not None
            and current.uidvalidity == position.uidvalidity
            and current.uid >= position.uid
        ):
            return
        await self._state.put(self.mark_key, position.dump())


class IdleWatcher:
    """Waits in IDLE on one folder and takes new mail in as it arrives."""

    def __init__(
        self,
        reader: MailboxReader,
        *,
        ingest: Ingest,
        state: ConnectorState,
        clock: Clock,
        idle_seconds: float = IDLE_SECONDS,
    ) -> None:
        self.reader = reader
        self._ingest = ingest
        self._state = state
        self._clock = clock
        self._idle_seconds = idle_seconds
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.status = "starting"
        self.taken = 0
        self.idling = asyncio.Event()
        """Set while the watcher is in IDLE (tests wait on it before delivering mail)."""

    @property
    def lease_key(self) -> str:
        return f"idle:{self.reader.mailbox.name}"

    async def run(self, stop: asyncio.Event) -> None:
        """Watch until ``stop`` is set or the task is cancelled (``stop`` of the connector
        does both: an IDLE can last minutes). Mail is safe either way: the mark moves only
        after a message is stored, so an interrupted catch-up is repeated, never skipped."""
        delay = 5.0
        try:
            while not stop.is_set():
                try:
                    if not await self._hold_lease():
                        self.status = "another process watches this mailbox"
                        await _sleep(stop, self._idle_seconds)
                        continue
                    if await self._watch(stop) == "unsupported":
                        return
                    delay = 5.0
                except (ImapError, OSError) as exc:
                    self.status = f"reconnecting after: {exc}"
                    log.warning(
                        "email.idle_failed", mailbox=self.reader.mailbox.name, error=str(exc)
                    )
                except Exception as exc:  # a bug here must not end the watcher for good
                    self.status = f"reconnecting after: {type(exc).__name__}"
                    log.exception("email.idle_crashed", mailbox=self.reader.mailbox.name)
                finally:
                    self.idling.clear()
                await _sleep(stop, delay)
                delay = min(delay * 2, 300.0)
        finally:
            await self.release()

    async def _watch(self, stop: asyncio.Event) -> str:
        session = await self.reader.open()
        try:
            if not session.can_idle:
                self.status = "the server does not offer IDLE; polling only"
                return "unsupported"
            folder = await session.select()
            while not stop.is_set():
                await self._catch_up(session, folder)
                self.status = "idling"
                self.idling.set()
                await session.idle(self._idle_seconds)
                self.idling.clear()
                if not await self._hold_lease():
                    return "lost lease"
            return "stopped"
        finally:
            await session.close()

    async def _catch_up(self, session: ImapSession, folder: FolderState) -> None:
        """Take in everything after the mark, a batch at a time, moving the mark after each
        stored message."""
        while True:
            mark = await self.reader.read_mark(folder.uidvalidity)
            if mark is None:
                self.status = "waiting for the first poll to establish where stored mail ends"
                return
            moved = False
            async for uid, envelope in self.reader.fetch_after(session, folder, mark.uid):
                if envelope is not None:
                    await self._ingest.accept(envelope)
                    self.taken += 1
                await self.reader.publish_mark(Position(folder.uidvalidity, uid))
                moved = True
            if not moved:
                return

    async def _hold_lease(self) -> bool:
        expires_at: datetime = self._clock.now() + LEASE
        if await self._state.get(self.lease_key) == self._owner:
            await self._state.put(self.lease_key, self._owner, expires_at=expires_at)
            return True
        return await self._state.claim(self.lease_key, self._owner, expires_at=expires_at)

    async def release(self) -> None:
        with contextlib.suppress(Exception):
            if await self._state.get(self.lease_key) == self._owner:
                await self._state.delete(self.lease_key)


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
