"""One raw RFC 822 mail, read into what a ticket needs: sender, subject, the customer's words,
attachments (and the ones refused), the thread it answers, and whether a machine wrote it.

The MIME structure is parsed with the standard library's modern policy (``policy.default``);
what it gets wrong for Chinese mail is done here instead: text parts are decoded from their
bytes by ``charsets.decode`` (never ``get_content()``, which replaces GBK-only characters in a
``gb2312`` part), headers by ``headers`` (split encoded-words, raw 8-bit GBK), and file names
from the raw parameters when the library's reading shows replacement characters.

Everything is bounded: parts, nesting, attachment sizes and count, text length. A mail that
cannot be read at all (no sender, a MIME bomb) raises ``UnreadableMail`` with a reason an
operator can act on; the connector keeps its raw bytes.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import Message
from email.parser import BytesHeaderParser, BytesParser
from urllib.parse import unquote_to_bytes

from connectors.email import headers
from connectors.email.automated import Automation, classify
from connectors.email.charsets import decode
from connectors.email.headers import Mailbox
from connectors.email.html_text import html_to_text
from connectors.email.quoting import strip_history
from hub.sdk import Attachment, Unreadable

MAX_ID_LENGTH = 200
_PARAM = re.compile(
    r"""(?:^|;)\s*(?P<name>[A-Za-z0-9_.-]+?)(?:\*(?P<section>\d+))?(?P<extended>\*)?\s*=\s*"""
    r"""(?P<value>"(?:[^"\\]|\\.)*"|[^;]*)""",
    re.DOTALL,
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,50}/[a-z0-9][a-z0-9!#$&^_.+-]{0,60}$")


class UnreadableMail(Unreadable):
    """The mail cannot be taken in; ``str(exc)`` says why, without quoting its content."""


@dataclass(frozen=True, slots=True)
class Limits:
    max_attachment_bytes: int
    max_attachments: int
    max_text_chars: int
    max_parts: int = 300
    max_depth: int = 20


@dataclass(frozen=True, slots=True)
class Refused:
    """An attachment not taken in, listed on the ticket so nobody thinks it never came."""

    name: str
    size: int
    reason: str


@dataclass(frozen=True, slots=True)
class ReadMail:
    message_id: str | None
    sender: Mailbox | None
    recipients: tuple[str, ...]
    subject: str
    sent_at: datetime | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    full_text: str
    """The body as sent (HTML rendered as text), quotes and signature included."""
    text: str
    """The customer's new words: ``full_text`` without quoted history and signature."""
    from_html: bool
    attachments: tuple[Attachment, ...]
    refused: tuple[Refused, ...]
    automation: Automation | None
    lossy: bool
    """Some bytes fitted no charset and were replaced (the raw mail keeps them)."""


def message_id_of(raw: bytes) -> str | None:
    """The Message-ID in ``<id>`` form, read from the header alone; None when there is none
    or it is unusable as an id (too long). Never raises: the poller calls it on anything."""
    try:
        parsed = BytesHeaderParser(policy=policy.compat32).parsebytes(raw)
        ids = headers.message_ids(headers.raw_values(parsed, "message-id"))
    except Exception:
        return None
    if not ids or len(ids[0]) > MAX_ID_LENGTH:
        return None
    return ids[0]


def external_id(raw: bytes) -> str:
    """The envelope's dedupe key: the Message-ID, so a mail fetched twice, redelivered, or
    sent to two of our mailboxes is one message; the raw bytes' hash when it has none."""
    return message_id_of(raw) or "sha256:" + hashlib.sha256(raw).hexdigest()


def read_mail(raw: bytes, limits: Limits, *, truncated_size: int | None = None) -> ReadMail:
    """Read ``raw``; ``truncated_size`` is the full size of a mail of which only a prefix was
    fetched (its attachments are then listed as refused rather than read half)."""
    try:
        message = BytesParser(policy=policy.default).parsebytes(raw)
    except Exception as exc:  # the parser is lenient; this is a bug or a bomb
        raise UnreadableMail(f"the MIME structure cannot be parsed ({type(exc).__name__})") from exc
    if not any(True for _ in message.raw_items()):
        raise UnreadableMail("no header section: this is not a mail message")

    sender = _sender(message)
    automation = classify(message, sender.address if sender else None)
    if sender is None and automation is None:
        raise UnreadableMail("no readable sender address in From, Sender or Return-Path")

    walker = _Walker(limits, truncated_size)
    walker.walk(message, 0)
    full_text, from_html, lossy = walker.body_text()
    if len(full_text) > limits.max_text_chars:
        full_text = full_text[: limits.max_text_chars] + "\n…[truncated]"
    stripped = strip_history(full_text)

    recipients = headers.addresses(
        [
            *headers.raw_values(message, "delivered-to"),
            *headers.raw_values(message, "x-original-to"),
            *headers.raw_values(message, "envelope-to"),
            *headers.raw_values(message, "to"),
            *headers.raw_values(message, "cc"),
        ]
    )
    in_reply_to = headers.message_ids(headers.raw_values(message, "in-reply-to"))
    references = headers.message_ids(headers.raw_values(message, "references"))
    own_id = headers.message_ids(headers.raw_values(message, "message-id"))
    return ReadMail(
        message_id=own_id[0] if own_id and len(own_id[0]) <= MAX_ID_LENGTH else None,
        sender=sender,
        recipients=tuple(m.address for m in recipients),
        subject=headers.decode_text(headers.raw_first(message, "subject")),
        sent_at=headers.date(headers.raw_first(message, "date")),
        in_reply_to=tuple(i for i in in_reply_to if len(i) <= MAX_ID_LENGTH),
        references=tuple(i for i in references if len(i) <= MAX_ID_LENGTH),
        full_text=full_text,
        text=stripped.text,
        from_html=from_html,
        attachments=tuple(walker.attachments),
        refused=tuple(walker.refused),
        automation=automation,
        lossy=lossy,
    )


def _sender(message: Message) -> Mailbox | None:
    for name in ("from", "sender", "return-path"):
        found = headers.addresses(headers.raw_values(message, name))
        if found:
            return found[0]
    return None


@dataclass(slots=True)
class _File:
    explicit: bool
    """Content-Disposition: attachment (kept before inline images when the count runs out)."""
    name: str
    content_type: str
    data: bytes | None
    size: int


class _Walker:
    """Collects body text and attachments depth-first, within the limits."""

    def __init__(self, limits: Limits, truncated_size: int | None) -> None:
        self.limits = limits
        self.truncated_size = truncated_size
        self.parts = 0
        self.plain: list[tuple[bytes, str | None]] = []
        self.html: list[tuple[bytes, str | None]] = []
        self.files: list[_File] = []
        self.attachments: list[Attachment] = []
        self.refused: list[Refused] = []

    def walk(self, part: Message, depth: int, *, files_only: bool = False) -> None:
        self.parts += 1
        if self.parts > self.limits.max_parts:
            raise UnreadableMail(f"more than {self.limits.max_parts} MIME parts")
        if depth > self.limits.max_depth:
            raise UnreadableMail(f"MIME parts nested deeper than {self.limits.max_depth} levels")
        content_type = _content_type(part)
        if content_type in {"message/rfc822", "message/global"}:
            # A mail attached to the mail (a forward as attachment, a bounce's original) is
            # kept whole as a file; its text is not the customer's.
            self._file(part, "message/rfc822", True, _filename(part) or _attached_name(part))
            return
        if part.is_multipart():
            children = _children(part)
            if content_type == "multipart/alternative" and children:
                chosen = _choose_alternative(children)
                for child in children:
                    self.walk(child, depth + 1, files_only=files_only or child is not chosen)
                return
            for child in children:
                self.walk(child, depth + 1, files_only=files_only)
            return
        disposition = _disposition(part)
        name = _filename(part)
        if content_type in {"text/plain", "text/html"} and disposition != "attachment" and not name:
            if not files_only:
                target = self.plain if content_type == "text/plain" else self.html
                target.append((_payload(part), _charset(part)))
            return
        self._file(part, content_type, disposition == "attachment", name)

    def _file(self, part: Message, content_type: str, explicit: bool, name: str | None) -> None:
        index = len(self.files) + 1
        name = _safe_name(name, content_type, index)
        if self.truncated_size is not None:
            self.files.append(_File(explicit, name, content_type, None, 0))
            self.refused.append(
                Refused(
                    name,
                    0,
                    f"the mail is {_size(self.truncated_size)}, over the message limit; "
                    "attachments were not fetched",
                )
            )
            return
        data = _payload(part)
        self.files.append(_File(explicit, name, content_type, data, len(data)))

    def body_text(self) -> tuple[str, bool, bool]:
        self._settle_files()
        lossy = False
        texts: list[str] = []
        for data, charset in self.plain:
            decoded = decode(data, charset)
            lossy = lossy or not decoded.exact
            texts.append(decoded.text)
        from_html = False
        if not any(t.strip() for t in texts):
            texts = []
            for data, charset in self.html:
                decoded = decode(data, charset)
                lossy = lossy or not decoded.exact
                texts.append(html_to_text(decoded.text))
            from_html = bool(texts)
        text = "\n\n".join(t.strip("\n") for t in texts if t.strip())
        return _clean(text), from_html, lossy

    def _settle_files(self) -> None:
        """Apply the limits: explicit attachments first, then inline parts, in mail order."""
        if self.truncated_size is not None:
            return
        limit = self.limits
        ordered = sorted(self.files, key=lambda f: not f.explicit)  # stable: mail order kept
        for file in ordered:
            assert file.data is not None
            if file.size > limit.max_attachment_bytes:
                self.refused.append(
                    Refused(
                        file.name,
                        file.size,
                        f"{_size(file.size)} is over the {_size(limit.max_attachment_bytes)} "
                        "attachment limit",
                    )
                )
            elif len(self.attachments) >= limit.max_attachments:
                self.refused.append(
                    Refused(
                        file.name, file.size, f"over the limit of {limit.max_attachments} files"
                    )
                )
            else:
                self.attachments.append(Attachment(file.name, file.content_type, file.data))


def _children(part: Message) -> list[Message]:
    payload = part.get_payload()
    return (
        [child for child in payload if isinstance(child, Message)]
        if isinstance(payload, list)
        else []
    )


def _choose_alternative(children: list[Message]) -> Message:
    """Plain text when it says something, else the richest alternative (the last one)."""
    for child in children:
        if _content_type(child) == "text/plain" and _payload(child).strip():
            return child
    return children[-1]


def _attached_name(part: Message) -> str:
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload else None
    subject = ""
    if isinstance(inner, Message):
        subject = headers.decode_text(headers.raw_first(inner, "subject"))
    return f"{subject[:80] or 'message'}.eml"


def _content_type(part: Message) -> str:
    """The media type, or ``application/octet-stream`` for anything that is not one (a
    hostile header must not reach storage as a 5,000-character content type)."""
    try:
        value = part.get_content_type().lower()
    except Exception:
        return "application/octet-stream"
    return value if _MEDIA_TYPE.match(value) else "application/octet-stream"


def _disposition(part: Message) -> str | None:
    try:
        return part.get_content_disposition()
    except Exception:
        return None


def _charset(part: Message) -> str | None:
    try:
        value = part.get_param("charset")
    except Exception:
        return None
    if isinstance(value, tuple):  # RFC 2231 form
        value = value[2]
    return str(value) if value else None


def _payload(part: Message) -> bytes:
    """The part's bytes after its transfer encoding; broken base64 yields what it can."""
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return data
    raw = part.get_payload()
    if isinstance(raw, str):
        return raw.encode("ascii", "surrogateescape")
    if isinstance(raw, list) and raw and isinstance(raw[0], Message):  # message/rfc822
        inner = raw[0]
        # Re-folding a header can fail on what the parser let through (an encoded word in a
        # charset named with control characters: found by the bad-input drill); compat32
        # writes the headers as they came.
        for flatten in (
            lambda: inner.as_bytes(policy=policy.SMTP),
            lambda: inner.as_bytes(policy=policy.compat32),
            lambda: str(inner).encode("utf-8", "surrogateescape"),
        ):
            try:
                return flatten()
            except Exception:
                continue
    return b""


def _filename(part: Message) -> str | None:
    """The part's file name, decoded from RFC 2231 and RFC 2047 forms and raw 8-bit bytes;
    the library's reading is kept unless it lost characters."""
    try:
        name = part.get_filename()
    except Exception:
        name = None
    if name is not None and not _damaged(name):
        return name
    for header, param in (("content-disposition", "filename"), ("content-type", "name")):
        value = headers.raw_first(part, header)
        if value:
            found = _raw_param(headers.unfold(value), param)
            if found:
                return found
    return name


def _damaged(text: str) -> bool:
    return "\ufffd" in text or "=?" in text or any(0xDC80 <= ord(c) <= 0xDCFF for c in text)


def _raw_param(value: str, wanted: str) -> str | None:
    """A parameter from a raw header value: RFC 2231 sections joined and decoded with their
    charset label, or a plain value decoded as a header text (RFC 2047 words, 8-bit bytes)."""
    sections: dict[int, tuple[bool, str]] = {}
    plain: str | None = None
    for match in _PARAM.finditer(value):
        if match.group("name").lower() != wanted:
            continue
        raw = match.group("value").strip()
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        section, extended = match.group("section"), bool(match.group("extended"))
        if section is None and not extended:
            plain = raw
        else:
            sections[int(section or 0)] = (extended, raw)
    if sections:
        charset = None
        data = bytearray()
        for number in sorted(sections):
            extended, raw = sections[number]
            if extended and number == min(sections) and raw.count("'") >= 2:
                charset, _, raw = raw.split("'", 2)
            # Raw 8-bit bytes where %-escapes belong (a GBK name sent as is) come back as
            # the bytes they were (found by the bad-input drill: they raised before).
            if extended:
                data += unquote_to_bytes(raw.encode("utf-8", "surrogateescape"))
            else:
                data += raw.encode("utf-8", "surrogateescape")
        return decode(bytes(data), charset).text
    if plain is not None:
        return headers.decode_text(plain)
    return None


def _safe_name(name: str | None, content_type: str, index: int) -> str:
    """A file name that is safe to show and to save: no directories, no control characters,
    at most 200 characters with its extension kept."""
    if name:
        name = unicodedata.normalize("NFC", name)
        name = _CONTROL.sub("", name).replace("\\", "/").rsplit("/", 1)[-1].strip(" .")
    if not name:
        extension = mimetypes.guess_extension(content_type) or ".bin"
        name = f"attachment-{index}{extension}"
    if len(name) > 200:
        stem, dot, extension = name.rpartition(".")
        name = (stem[: 190 - len(extension)] + dot + extension) if dot else name[:200]
    return name


def _clean(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", text).strip()


def _size(size: int) -> str:
    """``10.2 MB``, ``9.8 KB``, ``512 B``: one decimal, none when it is zero."""
    for unit, scale in (("MB", 1024 * 1024), ("KB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} B"
