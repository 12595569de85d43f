"""Header values as people meant them: RFC 2047 words, raw 8-bit bytes, and broken syntax.

The standard library's modern policy decodes each encoded-word on its own, so a GBK character
whose two bytes are split across two words (as Outlook and Foxmail fold long subjects) comes
out as two replacement characters; it cannot read the raw 8-bit GBK that QQ Mail and Coremail
put in Subject and From; and some malformed headers raise instead of parsing (a Message-ID of
``<<x>>`` raises IndexError). Here headers are read from the raw values the parser stored:
adjacent encoded-words of one charset are joined as bytes before decoding, raw 8-bit runs are
decoded by ``charsets.decode``, and anything unreadable falls back to the raw value.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

from connectors.email.charsets import decode

MAX_HEADER_CHARS = 8000
"""Longer header values are cut: nothing a customer writes needs more, and a hostile header of
megabytes would otherwise be decoded and stored."""

_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,64})\?([bBqQ])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(r"^[ \t\r\n]*$")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_FOLD = re.compile(r"\r?\n[ \t]*")
_MSG_ID = re.compile(r"<([^<>\s]{1,250})>")
_BARE_ID = re.compile(r"[^<>\s,;]{1,250}@[^<>\s,;]{1,250}")
_ADDRESS = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+$"
)


@dataclass(frozen=True, slots=True)
class Mailbox:
    """One address of an address header: the address in canonical form, and a display name."""

    address: str
    name: str = ""


def raw_values(message: Message, name: str) -> list[str]:
    """Every value of header ``name`` as stored, 8-bit bytes kept as surrogate escapes."""
    wanted = name.lower()
    return [
        value if isinstance(value, str) else str(value)
        for key, value in message.raw_items()
        if key.lower() == wanted
    ]


def raw_first(message: Message, name: str) -> str | None:
    values = raw_values(message, name)
    return values[0] if values else None


def unfold(value: str) -> str:
    return _FOLD.sub(" ", value).strip()[:MAX_HEADER_CHARS]


def decode_text(value: str | None) -> str:
    """An unstructured header value (Subject, a display name) as text."""
    if not value:
        return ""
    value = unfold(value)
    parts: list[str] = []
    pending: list[tuple[str, bytes]] = []  # adjacent encoded-words not yet decoded
    position = 0
    for match in _ENCODED_WORD.finditer(value):
        gap = value[position : match.start()]
        if not (pending and _BETWEEN_WORDS.match(gap)):
            # Whitespace between two encoded-words is folding, not text (RFC 2047 6.2).
            _flush(pending, parts)
            parts.append(_raw_text(gap))
        charset, encoding, payload = match.groups()
        label = charset.split("*", 1)[0]  # RFC 2231 language suffix: =?gbk*zh?B?...?=
        data = _word_bytes(encoding, payload)
        if data is None:  # a broken encoded-word is kept as written
            _flush(pending, parts)
            parts.append(match.group(0))
        else:
            if pending and pending[-1][0].lower() != label.lower():
                _flush(pending, parts)
            pending.append((label, data))
        position = match.end()
    _flush(pending, parts)
    parts.append(_raw_text(value[position:]))
    return "".join(parts).replace("\x00", "").strip()


def _flush(pending: list[tuple[str, bytes]], parts: list[str]) -> None:
    """Words of one charset are joined as bytes first, so a character split across two words
    is whole again before it is decoded."""
    if pending:
        parts.append(decode(b"".join(data for _, data in pending), pending[0][0]).text)
        pending.clear()


def _word_bytes(encoding: str, payload: str) -> bytes | None:
    try:
        if encoding in "bB":
            padded = payload + "=" * (-len(payload) % 4)
            return base64.b64decode(padded.encode("ascii"), validate=True)
        data = payload.replace("_", " ").encode("ascii", "surrogateescape")
        return _unquote_q(data)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None


def _unquote_q(data: bytes) -> bytes:
    out = bytearray()
    index = 0
    while index < len(data):
        pair = data[index + 1 : index + 3]
        if data[index] == 0x3D and len(pair) == 2 and all(b in _HEX for b in pair):  # "=XX"
            out.append(int(pair, 16))
            index += 3
            continue
        out.append(data[index])
        index += 1
    return bytes(out)


def _raw_text(value: str) -> str:
    """Text outside encoded-words: ASCII, or raw 8-bit bytes a client sent unencoded."""
    if not value:
        return ""
    try:
        data = value.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        return value  # already text (a header set by code, not parsed from bytes)
    if data.isascii():
        return value
    return decode(data).text


def addresses(values: list[str]) -> list[Mailbox]:
    """The mailboxes of address headers (From, To, Cc, Delivered-To); unreadable entries are
    skipped, never guessed. Domains are lower-cased; local parts are kept as written."""
    found: list[Mailbox] = []
    seen: set[str] = set()
    for value in values:
        for name, address in getaddresses([unfold(value)]):
            canonical = canonical_address(address)
            if canonical is None or canonical in seen:
                continue
            seen.add(canonical)
            found.append(Mailbox(canonical, _display_name(name)))
    return found


def canonical_address(address: str) -> str | None:
    """``Local@Domain.Example`` as ``Local@domain.example``; None unless it is an address."""
    address = address.strip().strip("<>").strip()
    if not _ADDRESS.match(address):
        return None
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain.lower()}"


def _display_name(name: str) -> str:
    text = decode_text(name).strip().strip('"').strip()
    return "" if "@" in text and canonical_address(text) else text[:200]


def message_ids(values: list[str]) -> list[str]:
    """Message-IDs in ``<id>`` form, in order, without repeats; bare ids (``x@y``, as some
    broken clients write them) are taken when a value has no bracketed one."""
    found: list[str] = []
    for value in values:
        value = unfold(value)
        ids = [f"<{item}>" for item in _MSG_ID.findall(value)]
        if not ids:
            ids = [f"<{item}>" for item in _BARE_ID.findall(value)]
        for item in ids:
            if item not in found:
                found.append(item)
    return found


def date(value: str | None) -> datetime | None:
    """The Date header as an aware time, or None when it is missing or unreadable."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(unfold(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed
