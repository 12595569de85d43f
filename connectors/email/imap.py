"""The IMAP side: one logged-in session on one folder, through aioimaplib.

Only what taking mail in needs, each step bounded by a timeout: connect (TLS, STARTTLS or
plain), log in (password or XOAUTH2), SELECT a folder and read its UIDVALIDITY and UIDNEXT,
list the UIDs after a given one, read sizes and arrival times, fetch one message (whole, or
its first bytes when it is over the size limit), and IDLE. Messages are fetched with
``BODY.PEEK[]`` so reading a mail never marks it read for the people who share the mailbox,
and nothing is ever deleted or moved: the mailbox stays the bank's record.

Every failure of the server or the network surfaces as ``ImapError`` with a reason for
operators; the password never appears in one.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import ssl
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime

import aioimaplib

from connectors.email.config import ImapMailbox, Security

_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")
_UIDNEXT = re.compile(rb"\[UIDNEXT (\d+)\]")
_EXISTS = re.compile(rb"^(\d+) EXISTS")
_FETCH_START = re.compile(rb"^\d+ FETCH \(")
_FETCH_UID = re.compile(rb"UID (\d+)")
_FETCH_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
_FETCH_DATE = re.compile(rb'INTERNALDATE "([^"]+)"')
_SEARCH_CHUNK = 2000


class ImapError(Exception):
    """The server or the network failed us; the text says which step and why."""


@dataclass(frozen=True, slots=True)
class FolderState:
    uidvalidity: int
    uidnext: int | None
    exists: int


@dataclass(frozen=True, slots=True)
class MessageInfo:
    uid: int
    size: int
    arrived_at: datetime | None


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """Verified TLS, trusting the system's CAs or the bank's own (``ca_file``)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def encode_folder(name: str) -> str:
    """A folder name as IMAP wants it on the wire: modified UTF-7 (RFC 3501 5.1.3), quoted,
    so a folder called 投诉 or "Customer Mail" can be selected."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            data = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(data).decode().rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return str(aioimaplib.quoted("".join(out)))


class ImapSession:
    """A logged-in connection; open with ``ImapSession.open`` and always ``close``."""

    def __init__(self, client: aioimaplib.IMAP4, mailbox: ImapMailbox, timeout: float) -> None:
        self._client = client
        self.mailbox = mailbox
        self._timeout = timeout
        self._broken = False
        """Set after a network failure: the session is then closed without a LOGOUT."""

    @classmethod
    async def open(
        cls, mailbox: ImapMailbox, timeout: float, secret: str, *, oauth: bool = False
    ) -> ImapSession:
        """Connect and log in with ``secret`` (the password, or an OAuth2 access token)."""
        where = f"{mailbox.host}:{mailbox.port}"
        try:
            context = tls_context(mailbox.ca_file) if mailbox.security != Security.none else None
        except (OSError, ssl.SSLError) as exc:
            raise ImapError(f"cannot use ca_file {mailbox.ca_file!r}: {exc}") from exc
        client: aioimaplib.IMAP4
        if mailbox.security == Security.ssl:
            client = aioimaplib.IMAP4_SSL(
                mailbox.host, mailbox.port, timeout=timeout, ssl_context=context
            )
        else:
            client = aioimaplib.IMAP4(mailbox.host, mailbox.port, timeout=timeout)
        try:
            await client.wait_hello_from_server()
        except (OSError, TimeoutError, aioimaplib.AioImapException) as exc:
            with contextlib.suppress(Exception):
                if client.protocol.transport is not None:
                    client.protocol.transport.close()
            raise ImapError(f"cannot connect to {where}: {_describe(exc)}") from exc
        session = cls(client, mailbox, timeout)
        try:
            if mailbox.security == Security.starttls:
                assert context is not None
                await session._starttls(context)
            await session._login(secret, oauth)
        except BaseException:
            await session.close()
            raise
        return session

    async def _starttls(self, context: ssl.SSLContext) -> None:
        """aioimaplib has no STARTTLS of its own: send the command, then upgrade the
        transport in place and ask for the capabilities again (RFC 3501 6.2.1)."""
        protocol = self._client.protocol
        if "STARTTLS" not in protocol.capabilities:
            raise ImapError(f"{self.mailbox.host} does not offer STARTTLS; use security = 'ssl'")
        response = await self._run(
            protocol.execute(aioimaplib.Command("STARTTLS", protocol.new_tag())), "STARTTLS"
        )
        if response.result != "OK":
            raise ImapError(f"STARTTLS refused: {_text(response)}")
        loop = asyncio.get_running_loop()
        try:
            transport = await asyncio.wait_for(
                loop.start_tls(
                    protocol.transport, protocol, context, server_hostname=self.mailbox.host
                ),
                self._timeout,
            )
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            self._broken = True
            raise ImapError(f"TLS handshake with {self.mailbox.host} failed: {exc}") from exc
        protocol.transport = transport
        await self._run(protocol.capability(), "CAPABILITY")

    async def _login(self, secret: str, oauth: bool) -> None:
        user = self.mailbox.username
        if oauth:
            response = await self._run(self._client.xoauth2(user, secret), "AUTHENTICATE")
        else:
            response = await self._run(self._client.login(aioimaplib.quoted(user), secret), "LOGIN")
        if response.result != "OK":
            raise ImapError(f"login as {user} refused: {_text(response)}")

    @property
    def can_idle(self) -> bool:
        return bool(self._client.has_capability("IDLE"))

    async def select(self) -> FolderState:
        folder = self.mailbox.folder
        response = await self._run(self._client.select(encode_folder(folder)), "SELECT")
        if response.result != "OK":
            raise ImapError(f"cannot open folder {folder!r}: {_text(response)}")
        validity: int | None = None
        uidnext: int | None = None
        exists = 0
        for line in response.lines:
            if not isinstance(line, bytes):
                continue
            if match := _UIDVALIDITY.search(line):
                validity = int(match.group(1))
            if match := _UIDNEXT.search(line):
                uidnext = int(match.group(1))
            if match := _EXISTS.match(line):
                exists = int(match.group(1))
        if validity is None:
            raise ImapError(f"folder {folder!r} has no UIDVALIDITY; the server is not IMAP4rev1")
        return FolderState(validity, uidnext, exists)

    async def uids_after(self, last_uid: int) -> list[int]:
        """UIDs greater than ``last_uid``, ascending. (``n:*`` always matches the highest
        message even below ``n``, so the result is filtered.)"""
        response = await self._run(
            self._client.uid_search("UID", f"{last_uid + 1}:*", charset=None), "UID SEARCH"
        )
        if response.result != "OK":
            raise ImapError(f"UID SEARCH failed: {_text(response)}")
        found: set[int] = set()
        for line in response.lines[:-1]:
            if isinstance(line, bytes | bytearray):
                words = bytes(line).split()
                if words and words[0].upper() == b"SEARCH":
                    words = words[1:]
                found.update(int(w) for w in words if w.isdigit() and int(w) > last_uid)
        return sorted(found)

    async def info(self, uids: list[int]) -> dict[int, MessageInfo]:
        """Size and arrival time of each UID still present (expunged ones are absent)."""
        found: dict[int, MessageInfo] = {}
        for start in range(0, len(uids), _SEARCH_CHUNK):
            chunk = ",".join(str(uid) for uid in uids[start : start + _SEARCH_CHUNK])
            response = await self._run(
                self._client.uid("fetch", chunk, "(UID RFC822.SIZE INTERNALDATE)"), "UID FETCH"
            )
            if response.result != "OK":
                raise ImapError(f"UID FETCH (sizes) failed: {_text(response)}")
            for line in response.lines:
                if not isinstance(line, bytes) or not _FETCH_START.match(line):
                    continue
                uid, size = _FETCH_UID.search(line), _FETCH_SIZE.search(line)
                if uid and size:
                    date = _FETCH_DATE.search(line)
                    found[int(uid.group(1))] = MessageInfo(
                        int(uid.group(1)), int(size.group(1)), _internaldate(date)
                    )
        return found

    async def fetch(self, uid: int, limit: int | None = None) -> bytes | None:
        """The raw message (its first ``limit`` bytes when given); None if it is gone."""
        part = "BODY.PEEK[]" if limit is None else f"BODY.PEEK[]<0.{limit}>"
        response = await self._run(
            self._client.uid("fetch", str(uid), f"(UID {part})"), "UID FETCH", whole=False
        )
        if response.result != "OK":
            raise ImapError(f"UID FETCH {uid} failed: {_text(response)}")
        current: int | None = None
        for line in response.lines:
            if isinstance(line, bytes) and _FETCH_START.match(line):
                match = _FETCH_UID.search(line)
                current = int(match.group(1)) if match else current
            elif isinstance(line, bytearray) and current in (uid, None):
                return bytes(line)
            elif isinstance(line, bytes) and current is None and (match := _FETCH_UID.search(line)):
                current = int(match.group(1))  # "UID n" after the literal
        return None

    async def idle(self, seconds: float) -> bool:
        """Wait up to ``seconds`` in IDLE; True when the server reported a change."""
        changed = False
        idle = await self._run(self._client.idle_start(timeout=seconds), "IDLE")
        try:
            while True:
                lines = await asyncio.wait_for(self._client.wait_server_push(), seconds + 5)
                if lines == aioimaplib.STOP_WAIT_SERVER_PUSH:
                    break
                if any(
                    isinstance(line, bytes) and (b"EXISTS" in line or b"RECENT" in line)
                    for line in lines
                ):
                    changed = True
                    break
        finally:
            if self._client.has_pending_idle():
                self._client.idle_done()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(idle, self._timeout)
        return changed

    async def noop(self) -> None:
        response = await self._run(self._client.noop(), "NOOP")
        if response.result != "OK":
            raise ImapError(f"NOOP failed: {_text(response)}")

    async def close(self) -> None:
        if not self._broken:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._client.logout(), min(self._timeout, 5))
        with contextlib.suppress(Exception):
            transport = self._client.protocol.transport
            if transport is not None:
                transport.close()

    async def _run(
        self, call: Awaitable[aioimaplib.Response], step: str, *, whole: bool = True
    ) -> aioimaplib.Response:
        """Await one IMAP step. ``whole`` bounds the step's total time; a message download
        is bounded instead by silence (aioimaplib's per-command timer restarts with every
        chunk), so a 25 MB mail on a slow line is not cut off while data still flows."""
        try:
            return await (asyncio.wait_for(call, self._timeout) if whole else call)
        except (OSError, TimeoutError, aioimaplib.AioImapException) as exc:
            self._broken = True
            raise ImapError(f"{step} on {self.mailbox.host}: {_describe(exc)}") from exc


def _text(response: aioimaplib.Response) -> str:
    last = response.lines[-1] if response.lines else b""
    return bytes(last).decode("utf-8", "replace")[:200] if last else response.result


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | aioimaplib.CommandTimeout):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"[:300]


def _internaldate(match: re.Match[bytes] | None) -> datetime | None:
    if match is None:
        return None
    try:
        return datetime.strptime(match.group(1).decode(), "%d-%b-%Y %H:%M:%S %z").astimezone(UTC)
    except ValueError:
        return None
