"""``tongdao import tickets FILE``: historical tickets, with their messages, from another system.

A bank moving to Tongdao brings years of tickets from the system it leaves. This loads them
straight into the ticket store, in bulk (no envelope, no pipeline, no ORM per row):

* the file is read as a stream (CSV in UTF-8 or GB18030, one row per message, the rows of one
  ticket one after another; or JSON Lines, one ticket per line with its ``messages``), so a
  file of millions of tickets never sits in memory;
* each ticket is validated on its own (``validate_ticket``); a bad one goes to the reject file
  with every reason, and never stops the others;
* tickets are deduplicated by ``(source system, source id)``, a unique key of the ticket
  table: a ticket already stored (an earlier run, another file) is counted and left alone;
* customers are found by their identities (kept as keyed hashes with a masked form, names and
  phone numbers masked, as the normalizer does for every channel) or created, batch by batch;
* every imported ticket gets one ``ticket.imported`` audit event opening its hash chain, so
  ``tongdao audit verify`` checks it like any other;
* each batch is one transaction that also records how far the file has been read
  (``ticket_import_run``): after an interruption, even ``kill -9``, the same command goes on
  after the last committed batch; anything it reads twice is a duplicate by the unique key.

Rows are written with the driver's own bulk paths: ``executemany`` of prepared tuples on
SQLite, ``COPY`` (asyncpg ``copy_records_to_table``) on PostgreSQL. Ticket and customer ids
are reserved before the rows are built, because a ticket's audit hash covers its id.

The file format, and what happens to numbers, clocks and notices, is in docs/import.md.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import functools
import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub.store.tables import TicketImportRun
from normalizer.pii import mask_identity, mask_name, valid_prc_id
from ticket_core.audit import GENESIS, event_hash
from ticket_core.clocks import plan_clocks
from ticket_core.customers import identity_hash
from ticket_core.models import (
    ClockState,
    Customer,
    CustomerIdentity,
    Direction,
    Kind,
    Outcome,
    Priority,
    SlaClock,
    Status,
    Ticket,
)
from ticket_core.policies import FIRST_RESPONSE, PolicyBook
from ticket_core.tickets import format_number

TICKETS = "tickets"
"""The word after ``tongdao import`` that loads tickets rather than a connector's records."""

IMPORTED = "ticket.imported"
DEFAULT_BATCH = 10_000
SAMPLE_BYTES = 1 << 20
SUBJECT_LENGTH = 80
MAX_TEXT = 100_000
IN_CHUNK = 5_000

# --- the file's fields ----------------------------------------------------------------------

FIELDS: dict[str, str] = {
    "source_id": "the ticket's id in the source system (required; unique per source)",
    "number": "its ticket number there; kept when it is a valid TD-YYYYMMDD-NNNNNN number",
    "kind": "consultation, complaint or suggestion (咨询, 投诉, 建议) (required)",
    "status": "new, open, in_progress, pending_customer, pending_internal, under_review, "
    "resolved, reopened or closed (default closed)",
    "channel": "where it came in: wechat, email, app, web, hotline12378, phone, branch... "
    "(required)",
    "created_at": "when it was received (required); ISO 8601, without an offset read in --timezone",
    "updated_at": "last change (default: the latest time given)",
    "first_responded_at": "first response to the customer (default: the first outbound message)",
    "resolved_at": "when resolved (default for resolved/closed: the latest time given)",
    "closed_at": "when closed (default for closed: the latest time given)",
    "priority": "low, normal, high or urgent (default normal)",
    "category": "business line",
    "subject": "default: the first line of the first message",
    "queue": "the queue holding it",
    "assignee": "the agent holding it",
    "outcome": "resolved, partially_resolved, rejected or withdrawn",
    "outcome_summary": "what was decided",
    "satisfaction": "the customer's rating",
    "language": "default zh-CN",
    "regulator_transfer": "true when transferred by the regulator (12378)",
    "vulnerable": "true for a vulnerable customer (default: tagged elderly or disabled)",
    "suspected_fraud": "true when fraud is suspected",
    "customer_name": "stored masked",
    "customer_phone": "identity; stored as a keyed hash and masked",
    "customer_email": "identity; stored as a keyed hash and masked",
    "customer_id_number": "identity (resident id); used to find the customer only when its "
    "check character holds",
    "customer_app_user": "identity: the bank app's user id",
    "customer_wechat_openid": "identity: the WeChat openid",
    "customer_crm_ref": "identity: the bank's customer number",
    "customer_tags": "comma separated: elderly, foreign, disabled, VIP...",
}
REQUIRED = ("source_id", "kind", "channel", "created_at")
MESSAGE_FIELDS: dict[str, str] = {
    "at": "when it was written (default: the ticket's created_at)",
    "direction": "in (from the customer), out (to the customer) or note (internal); default in",
    "author": "default: customer for in, agent otherwise",
    "text": "the message (required)",
}
CSV_MESSAGE = {f"message_{name}": name for name in MESSAGE_FIELDS}
"""In CSV, one row per message: ``message_at``, ``message_direction``, ``message_author``,
``message_text``; the ticket's columns are read from its first row."""

IDENTITIES = (
    ("customer_crm_ref", "crm_customer"),
    ("customer_phone", "phone"),
    ("customer_email", "email"),
    ("customer_app_user", "app_user"),
    ("customer_wechat_openid", "wechat_openid"),
    ("customer_id_number", "id_number"),
)
"""In this order the customer is looked for: the first identity already known wins."""

_KINDS = {
    **{k.value: k for k in Kind},
    "咨询": Kind.consultation,
    "投诉": Kind.complaint,
    "建议": Kind.suggestion,
}
_DIRECTIONS = {
    "in": Direction.inbound,
    "inbound": Direction.inbound,
    "out": Direction.outbound,
    "outbound": Direction.outbound,
    "note": Direction.note,
    "internal": Direction.note,
}
_STATUSES = {s.value: s for s in Status}
_PRIORITIES = {p.value: p for p in Priority}
_OUTCOMES = {o.value: o for o in Outcome}
_TRUE = {"true", "1", "yes", "y", "是", "t"}
_FALSE = {"false", "0", "no", "n", "否", "f", ""}
_NUMBER = re.compile(r"TD-(\d{8})-(\d{6,})")
_SOURCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")
_CHANNEL = re.compile(r"[a-z0-9][a-z0-9_.-]{0,39}")
_CLOSING = frozenset({Status.resolved, Status.closed})


class ImportFailed(Exception):
    """The file as a whole cannot be loaded; the message says why and what to do."""


class TicketRejected(ValueError):
    """One ticket that cannot be loaded; each reason names the field and what is wrong."""

    def __init__(self, *reasons: str) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


class ImportInterrupted(Exception):
    """Raised by the ``stop_after`` hook (tests): the run stops after a committed batch."""


@dataclass(frozen=True, slots=True)
class Claim:
    kind: str
    value: str
    masked: str
    verified: bool


@dataclass(frozen=True, slots=True)
class ImportedMessage:
    at: datetime
    direction: Direction
    author: str
    text: str


@dataclass(slots=True)
class ImportedTicket:
    """One valid ticket, as it will be stored (personal data already masked)."""

    source_id: str
    kind: Kind
    status: Status
    channel: str
    created_at: datetime
    updated_at: datetime
    messages: list[ImportedMessage]
    claims: list[Claim]
    number: str | None = None
    original_number: str | None = None
    priority: Priority = Priority.normal
    category: str | None = None
    subject: str = ""
    queue: str | None = None
    assignee: str | None = None
    outcome: Outcome | None = None
    outcome_summary: str | None = None
    satisfaction: str | None = None
    language: str = "zh-CN"
    regulator_transfer: bool = False
    vulnerable: bool = False
    suspected_fraud: bool = False
    first_responded_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    display_name: str | None = None
    phone_masked: str | None = None
    tags: tuple[str, ...] = ()
    line: int = 0


# --- validation -----------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


class _Check:
    """Collects every reason a ticket is refused, so the operator fixes them all at once."""

    def __init__(self, zone: tzinfo, now: datetime) -> None:
        self.zone, self.now = zone, now
        self.reasons: list[str] = []

    def fail(self, reason: str) -> None:
        self.reasons.append(reason)

    def bounded(self, name: str, value: Any, limit: int) -> str | None:
        text = _text(value)
        if text is not None and len(text) > limit:
            self.fail(f"{name}: longer than {limit} characters")
            return text[:limit]
        return text

    def when(self, name: str, value: Any) -> datetime | None:
        text = _text(value)
        if text is None:
            return None
        try:
            moment = datetime.fromisoformat(text.replace("/", "-"))
        except ValueError:
            self.fail(f"{name}: {text!r} is not a date and time (2024-03-01 09:30:00+08:00)")
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.zone)
        moment = moment.astimezone(UTC)
        if moment > self.now + timedelta(minutes=5):
            self.fail(f"{name}: {text} is in the future")
        return moment

    def flag(self, name: str, value: Any) -> bool | None:
        if value is None:
            return None
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        self.fail(f"{name}: {value!r} is not true or false")
        return None

    def choice(self, name: str, value: Any, allowed: Mapping[str, Any], default: Any) -> Any:
        text = _text(value)
        if text is None:
            return default
        found = allowed.get(text.lower(), allowed.get(text))
        if found is None:
            self.fail(f"{name}: {text!r} is not one of {', '.join(sorted(set(map(str, allowed))))}")
        return found


def validate_ticket(
    fields: Mapping[str, Any],
    messages: Sequence[Mapping[str, Any]],
    *,
    zone: tzinfo = UTC,
    now: datetime,
    line: int = 0,
) -> ImportedTicket:
    """One ticket of the file, checked and masked; raises ``TicketRejected`` with every reason.

    ``fields`` holds the ticket's fields (``FIELDS``), ``messages`` its messages
    (``MESSAGE_FIELDS``). Times without an offset are read in ``zone``; none may lie after
    ``now``. Personal data leaves here only as the store keeps it: names and phone numbers
    masked, identities as values to hash with their masked form.
    """
    check = _Check(zone, now)
    source_id = check.bounded("source_id", fields.get("source_id"), 200)
    if source_id is None:
        check.fail("source_id: missing")
    kind = check.choice("kind", fields.get("kind"), _KINDS, None)
    if _text(fields.get("kind")) is None:
        check.fail("kind: missing")
    status = check.choice("status", fields.get("status"), _STATUSES, Status.closed)
    channel = _text(fields.get("channel"))
    if channel is None:
        check.fail("channel: missing")
    elif not _CHANNEL.fullmatch(channel.lower()):
        check.fail(f"channel: {channel!r} is not a channel name (lower-case letters, digits, _-.)")
    created_at = check.when("created_at", fields.get("created_at"))
    if created_at is None and _text(fields.get("created_at")) is None:
        check.fail("created_at: missing")
    priority = check.choice("priority", fields.get("priority"), _PRIORITIES, Priority.normal)
    outcome = check.choice("outcome", fields.get("outcome"), _OUTCOMES, None)

    stored: list[ImportedMessage] = []
    if not messages:
        check.fail("messages: the ticket has none (a ticket needs at least one message)")
    for index, message in enumerate(messages, start=1):
        if not isinstance(message, Mapping):
            check.fail(f"message {index}: not an object")
            continue
        text = _text(message.get("text"))
        if text is None:
            check.fail(f"message {index}: text missing")
            continue
        if len(text) > MAX_TEXT:
            check.fail(f"message {index}: text longer than {MAX_TEXT} characters")
        direction = check.choice(
            f"message {index} direction", message.get("direction"), _DIRECTIONS, Direction.inbound
        )
        at = check.when(f"message {index} at", message.get("at")) or created_at
        author = check.bounded(f"message {index} author", message.get("author"), 120)
        if direction is None or at is None:
            continue
        default_author = "customer" if direction == Direction.inbound else "agent"
        stored.append(ImportedMessage(at, direction, author or default_author, text))

    claims: list[Claim] = []
    for name, kind_of_identity in IDENTITIES:
        value = check.bounded(name, fields.get(name), 200)
        if value is None:
            continue
        if kind_of_identity == "phone" and len("".join(filter(str.isdigit, value))) < 7:
            check.fail(f"{name}: {value!r} is not a phone number")
            continue
        if kind_of_identity == "email" and "@" not in value:
            check.fail(f"{name}: not an email address")
            continue
        verified = kind_of_identity != "id_number" or valid_prc_id(value)
        claims.append(
            Claim(kind_of_identity, value, mask_identity(kind_of_identity, value), verified)
        )
    if not any(c.verified for c in claims):
        check.fail(
            "customer: no identity to find the customer by (customer_phone, customer_email, "
            "customer_crm_ref, customer_app_user, customer_wechat_openid or a valid "
            "customer_id_number)"
        )

    times = {
        name: check.when(name, fields.get(name))
        for name in ("updated_at", "first_responded_at", "resolved_at", "closed_at")
    }
    number = _text(fields.get("number"))
    if number is not None and len(number) > 200:
        check.fail("number: longer than 200 characters")
    name = check.bounded("customer_name", fields.get("customer_name"), 200)
    tags_value = fields.get("customer_tags")
    if isinstance(tags_value, list):
        tags = tuple(sorted({str(t).strip() for t in tags_value if str(t).strip()}))
    else:
        raw = (_text(tags_value) or "").replace("，", ",").replace(";", ",")
        tags = tuple(sorted({t.strip() for t in raw.split(",") if t.strip()}))
    flags = {
        key: check.flag(key, fields.get(key))
        for key in ("regulator_transfer", "vulnerable", "suspected_fraud")
    }
    subject = check.bounded("subject", fields.get("subject"), 200)
    texts = {
        key: check.bounded(key, fields.get(key), limit)
        for key, limit in (
            ("category", 80),
            ("queue", 80),
            ("assignee", 120),
            ("satisfaction", 20),
            ("language", 10),
        )
    }
    outcome_summary = check.bounded("outcome_summary", fields.get("outcome_summary"), MAX_TEXT)

    if check.reasons:
        raise TicketRejected(*check.reasons)
    assert source_id is not None and kind is not None and status is not None
    assert channel is not None and created_at is not None

    stored.sort(key=lambda m: m.at)
    latest = max([created_at, *(m.at for m in stored), *(t for t in times.values() if t)])
    first_out = next((m.at for m in stored if m.direction == Direction.outbound), None)
    resolved_at = times["resolved_at"]
    closed_at = times["closed_at"]
    if status in _CLOSING:
        resolved_at = resolved_at or closed_at or latest
    if status == Status.closed:
        closed_at = closed_at or latest
    for label, moment in (("resolved_at", resolved_at), ("closed_at", closed_at)):
        if moment is not None and moment < created_at:
            raise TicketRejected(f"{label}: before created_at")
    if subject is None:
        first = next((m for m in stored if m.direction == Direction.inbound), stored[0])
        subject = first.text.splitlines()[0][:SUBJECT_LENGTH] if first.text else ""
    phone_masked = next((c.masked for c in claims if c.kind == "phone"), None)
    vulnerable = flags["vulnerable"]
    return ImportedTicket(
        source_id=source_id,
        kind=kind,
        status=status,
        channel=channel.lower(),
        created_at=created_at,
        updated_at=times["updated_at"] or latest,
        messages=stored,
        claims=claims,
        original_number=number,
        priority=priority,
        category=texts["category"],
        subject=subject,
        queue=texts["queue"],
        assignee=texts["assignee"],
        outcome=outcome,
        outcome_summary=outcome_summary,
        satisfaction=texts["satisfaction"],
        language=texts["language"] or "zh-CN",
        regulator_transfer=bool(flags["regulator_transfer"]),
        vulnerable=(
            vulnerable if vulnerable is not None else bool({"elderly", "disabled"} & set(tags))
        ),
        suspected_fraud=bool(flags["suspected_fraud"]),
        first_responded_at=times["first_responded_at"] or first_out,
        resolved_at=resolved_at,
        closed_at=closed_at,
        display_name=mask_name(name) if name else None,
        phone_masked=phone_masked,
        tags=tags,
        line=line,
    )


def keepable_number(number: str | None, today: date) -> bool:
    """A source number is kept when it is one of ours in form (TD-YYYYMMDD-NNNNNN) with a
    real date before the import's day. Numbers the hub gives carry the day they are given
    (always today or later), so a kept number can never meet one the hub gives later."""
    if number is None:
        return False
    match = _NUMBER.fullmatch(number)
    if match is None or len(number) > 32:
        return False
    day = _day(match.group(1))
    return day is not None and day < today


@functools.lru_cache(maxsize=4096)
def _day(digits: str) -> date | None:
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None


# --- reading the file -----------------------------------------------------------------------


@dataclass(slots=True)
class Group:
    """One ticket as the file holds it: its fields and messages, where it starts, and the
    byte offset just after it (where a resumed run goes on)."""

    line: int
    end: int
    end_line: int = 0
    fields: dict[str, Any] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    raw: list[Any] = field(default_factory=list)
    problem: str | None = None


def detect_encoding(path: Path, forced: str | None = None) -> str:
    """UTF-8 (with or without BOM) or GB18030, judged on the first MiB; a later byte that
    does not decode stops the import naming its line."""
    if forced:
        try:
            name = codecs.lookup(forced).name
        except LookupError:
            raise ImportFailed(f"unknown encoding {forced!r}") from None
        if name.startswith("utf-16") or name.startswith("utf-32"):
            raise ImportFailed("UTF-16 files are not read here; save the file as UTF-8")
        return name
    with path.open("rb") as handle:
        sample = handle.read(SAMPLE_BYTES)
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ImportFailed("the file is UTF-16; save it as UTF-8 (or CSV UTF-8 in Excel)")
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8"
    for encoding in ("utf-8", "gb18030"):
        try:
            codecs.getincrementaldecoder(encoding)().decode(sample, final=False)
            return encoding
        except UnicodeDecodeError:
            continue
    raise ImportFailed("the file is neither UTF-8 nor GB18030; give its encoding with --encoding")


class _Lines:
    """Decoded lines of a binary file, counting bytes and lines as they are taken."""

    def __init__(self, handle: BinaryIO, encoding: str, offset: int, line: int) -> None:
        self.handle, self.encoding = handle, encoding
        self.offset, self.line = offset, line

    def __iter__(self) -> Iterator[str]:
        decode = self.encoding
        for raw in self.handle:
            self.offset += len(raw)
            self.line += 1
            try:
                text = raw.decode(decode)
            except UnicodeDecodeError:
                raise ImportFailed(
                    f"line {self.line} is not {self.encoding}; give the file's encoding with "
                    "--encoding"
                ) from None
            if self.line == 1 and text.startswith("\ufeff"):
                text = text[1:]
            yield text


def csv_headings(path: Path, encoding: str) -> tuple[tuple[str, ...], int, int]:
    """The heading row, and the offset and line number just after it."""
    with path.open("rb") as handle:
        lines = _Lines(handle, encoding, 0, 0)
        reader = csv.reader(iter(lines), delimiter=_delimiter(path, encoding))
        for row in reader:
            if any(cell.strip() for cell in row):
                return tuple(c.strip() for c in row), lines.offset, lines.line
    raise ImportFailed("the file is empty")


def _delimiter(path: Path, encoding: str) -> str:
    with path.open("rb") as handle:
        head = handle.read(64 * 1024).decode(encoding, errors="ignore")
    first = head.split("\n", 1)[0]
    return "\t" if first.count("\t") > first.count(",") else ","


def check_headings(headings: Sequence[str]) -> tuple[str, ...]:
    """Refuse a CSV that cannot hold tickets; return the headings that are ignored."""
    known = set(FIELDS) | set(CSV_MESSAGE)
    missing = [name for name in (*REQUIRED, "message_text") if name not in headings]
    if missing:
        raise ImportFailed(
            "the file has no column for "
            + ", ".join(missing)
            + "; the columns are described in docs/import.md"
        )
    doubled = sorted({h for h in headings if h and headings.count(h) > 1})
    if doubled:
        raise ImportFailed(f"column {doubled[0]!r} appears twice")
    return tuple(h for h in headings if h and h not in known)


def read_csv_groups(
    path: Path, encoding: str, headings: Sequence[str], offset: int, line: int
) -> Iterator[Group]:
    """Tickets from ``offset`` on: consecutive rows with one ``source_id`` are one ticket,
    its fields from the first row, one message from each row."""
    columns = [(i, h, CSV_MESSAGE.get(h)) for i, h in enumerate(headings) if h]
    ticket_columns = [(i, h) for i, h, m in columns if m is None and h in FIELDS]
    message_columns = [(i, m) for i, _, m in columns if m is not None]
    source_index = headings.index("source_id")
    width = len(headings)
    with path.open("rb") as handle:
        handle.seek(offset)
        lines = _Lines(handle, encoding, offset, line)
        reader = csv.reader(iter(lines), delimiter=_delimiter(path, encoding))
        current: Group | None = None
        current_id: str | None = None
        while True:
            start = lines.line + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                raise ImportFailed(f"the CSV is malformed near line {lines.line}: {exc}") from None
            if not any(cell.strip() for cell in row):
                if current is not None:
                    current.end, current.end_line = lines.offset, lines.line
                continue
            if len(row) < width:
                row += [""] * (width - len(row))
            source_id = row[source_index].strip()
            if current is None or not source_id or source_id != current_id:
                if current is not None:
                    yield current
                current = Group(line=start, end=lines.offset)
                current_id = source_id
                current.fields = {h: row[i] for i, h in ticket_columns if row[i].strip()}
            current.end, current.end_line = lines.offset, lines.line
            current.raw.append((start, row))
            message = {m: row[i] for i, m in message_columns if row[i].strip()}
            if message:
                current.messages.append(message)
        if current is not None:
            yield current


def read_jsonl_groups(path: Path, encoding: str, offset: int, line: int) -> Iterator[Group]:
    with path.open("rb") as handle:
        handle.seek(offset)
        lines = _Lines(handle, encoding, offset, line)
        loads = json.loads
        for text in lines:
            if not text.strip():
                continue
            group = Group(
                line=lines.line, end=lines.offset, end_line=lines.line, raw=[text.rstrip("\r\n")]
            )
            try:
                record = loads(text)
            except (ValueError, RecursionError) as exc:
                group.problem = f"not valid JSON: {exc}"
                yield group
                continue
            if not isinstance(record, dict):
                group.problem = "a JSON object is expected"
                yield group
                continue
            messages = record.pop("messages", None)
            if messages is not None and not isinstance(messages, list):
                group.problem = "messages: a list of objects is expected"
            group.fields = record
            group.messages = messages or []
            yield group


# --- writing --------------------------------------------------------------------------------

CUSTOMER_COLUMNS = ("id", "display_name", "phone_masked", "crm_ref", "tags", "created_at")
IDENTITY_COLUMNS = ("customer_id", "kind", "value_hash", "masked", "verified", "created_at")
TICKET_COLUMNS = (
    "id",
    "number",
    "kind",
    "category",
    "priority",
    "status",
    "channel",
    "customer_id",
    "subject",
    "queue",
    "assignee",
    "is_regulator_transfer",
    "is_vulnerable",
    "is_suspected_fraud",
    "outcome",
    "outcome_summary",
    "sla_policy",
    "first_response_due_at",
    "resolution_due_at",
    "first_responded_at",
    "external_refs",
    "clock_started_at",
    "category_codes",
    "language",
    "extensions",
    "satisfaction",
    "created_at",
    "updated_at",
    "resolved_at",
    "closed_at",
    "audit_head",
    "source_system",
    "source_id",
)
MESSAGE_COLUMNS = (
    "ticket_id",
    "direction",
    "channel",
    "purpose",
    "author",
    "text",
    "attachments",
    "reply_to",
    "delivery_state",
    "created_at",
)
AUDIT_COLUMNS = ("ticket_id", "actor", "action", "before", "after", "at", "prev_hash", "hash")
CLOCK_COLUMNS = (
    "ticket_id",
    "name",
    "policy",
    "basis",
    "started_at",
    "due_at",
    "target_seconds",
    "state",
    "warnings_sent",
    "next_check_at",
    "stopped_at",
    "breached_at",
)
_PURPOSE = {Direction.inbound: "customer", Direction.outbound: "reply", Direction.note: "note"}


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class _Writer:
    """The two databases' bulk paths behind one face: values are encoded as each driver
    takes them (on SQLite, the text SQLAlchemy itself writes for a datetime or JSON)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.postgres = conn.dialect.name == "postgresql"
        self._sequences: dict[str, str] = {}

    def time(self, value: datetime | None) -> Any:
        if value is None or self.postgres:
            return value
        # The text SQLAlchemy writes for a UTC datetime on SQLite (isoformat: 5x strftime).
        if value.tzinfo is not UTC:
            value = value.astimezone(UTC)
        return value.replace(tzinfo=None).isoformat(" ", "microseconds")

    def json(self, value: Any) -> str:
        return _dumps(value)

    def flag(self, value: bool) -> Any:
        return value if self.postgres else int(value)

    async def reserve(self, table: str, count: int) -> list[int]:
        """``count`` new ids of ``table``: from its sequence on PostgreSQL; on SQLite, after
        the largest (the batch holds the one write lock, so nobody takes them meanwhile)."""
        if count == 0:
            return []
        if self.postgres:
            sequence = self._sequences.get(table)
            if sequence is None:
                sequence = (
                    await self.conn.execute(
                        sa.text("SELECT pg_get_serial_sequence(:t, 'id')").bindparams(t=table)
                    )
                ).scalar_one()
                self._sequences[table] = sequence
            rows = await self.conn.execute(
                sa.text("SELECT nextval(CAST(:s AS regclass)) FROM generate_series(1, :n)"),
                {"s": sequence, "n": count},
            )
            return [r[0] for r in rows]
        top = (
            await self.conn.execute(sa.text(f"SELECT coalesce(max(id), 0) FROM {table}"))
        ).scalar_one()
        return list(range(top + 1, top + 1 + count))

    async def insert(self, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if self.postgres:
            raw = await self.conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            await driver.copy_records_to_table(table, records=rows, columns=list(columns))
            return
        quoted = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join("?" * len(columns))
        await self.conn.exec_driver_sql(f"INSERT INTO {table} ({quoted}) VALUES ({marks})", rows)

    async def lookup(self, query: Callable[[list[Any]], Any], values: Sequence[Any]) -> list[Any]:
        """Rows of ``query(chunk)`` for ``values`` a chunk at a time (bounded IN lists)."""
        found: list[Any] = []
        unique = list(dict.fromkeys(values))
        for start in range(0, len(unique), IN_CHUNK):
            found.extend((await self.conn.execute(query(unique[start : start + IN_CHUNK]))).all())
        return found


@dataclass
class TicketImportReport:
    path: Path
    format: str
    encoding: str
    source: str
    tickets: int = 0
    loaded: int = 0
    duplicate: int = 0
    rejected: int = 0
    messages: int = 0
    customers_created: int = 0
    resumed_at_line: int | None = None
    already_finished: datetime | None = None
    rejects_path: Path | None = None
    ignored_columns: tuple[str, ...] = ()
    seconds: float = 0.0
    batches: int = 0

    def summary(self) -> str:
        return (
            f"{self.tickets} ticket(s): loaded {self.loaded} (with {self.messages} messages), "
            f"duplicate {self.duplicate}, rejected {self.rejected}"
        )


@dataclass
class _Context:
    source: str
    key: bytes
    book: PolicyBook
    now: datetime
    actor: str
    file_name: str


async def _store_batch(
    writer: _Writer, ctx: _Context, tickets: list[ImportedTicket]
) -> tuple[int, int, int, int]:
    """Store the batch's new tickets; returns (loaded, duplicate, messages, customers)."""
    source = ctx.source
    ticket_table = Ticket.__table__  # type: ignore[attr-defined]
    # 1. Deduplicate: already stored, or earlier in this batch.
    existing = {
        row[0]
        for row in await writer.lookup(
            lambda chunk: sa.select(ticket_table.c.source_id).where(
                ticket_table.c.source_system == source, ticket_table.c.source_id.in_(chunk)
            ),
            [t.source_id for t in tickets],
        )
    }
    fresh: list[ImportedTicket] = []
    for ticket in tickets:
        if ticket.source_id in existing:
            continue
        existing.add(ticket.source_id)
        fresh.append(ticket)
    duplicate = len(tickets) - len(fresh)
    if not fresh:
        return 0, duplicate, 0, 0

    # 2. Numbers: keep a source's own number unless it is taken.
    today = ctx.now.date()
    proposed = [t.original_number for t in fresh if keepable_number(t.original_number, today)]
    taken = {
        row[0]
        for row in await writer.lookup(
            lambda chunk: sa.select(ticket_table.c.number).where(ticket_table.c.number.in_(chunk)),
            proposed,
        )
    }
    for ticket in fresh:
        if keepable_number(ticket.original_number, today) and ticket.original_number not in taken:
            ticket.number = ticket.original_number
            taken.add(ticket.original_number)

    # 3. Customers, by identity, as the normalizer's intake does: the first verified identity
    #    already known names the customer (followed through merges); else a new customer.
    key = ctx.key
    hashed: list[list[tuple[Claim, str]]] = [
        [(c, identity_hash(key, c.kind, c.value)) for c in t.claims] for t in fresh
    ]
    identity_table = CustomerIdentity.__table__  # type: ignore[attr-defined]
    customer_table = Customer.__table__  # type: ignore[attr-defined]
    owners: dict[tuple[str, str], int] = {}
    known: set[tuple[int, str, str]] = set()
    rows = await writer.lookup(
        lambda chunk: sa.select(
            identity_table.c.kind,
            identity_table.c.value_hash,
            identity_table.c.customer_id,
            identity_table.c.verified,
        ).where(identity_table.c.value_hash.in_(chunk)),
        [digest for claims in hashed for _, digest in claims],
    )
    for kind, digest, customer_id, verified in rows:
        known.add((customer_id, kind, digest))
        if verified:
            owners[(kind, digest)] = customer_id
    survivors: dict[int, int] = {}
    tags_of: dict[int, list[str]] = {}
    pending = set(owners.values())
    for _ in range(20):
        if not pending:
            break
        found = await writer.lookup(
            lambda chunk: sa.select(
                customer_table.c.id, customer_table.c.merged_into_id, customer_table.c.tags
            ).where(customer_table.c.id.in_(chunk)),
            sorted(pending),
        )
        pending = set()
        for customer_id, merged_into, tags in found:
            if isinstance(tags, str):
                tags = json.loads(tags)
            tags_of[customer_id] = list(tags or [])
            if merged_into is not None:
                survivors[customer_id] = merged_into
                if merged_into not in tags_of:
                    pending.add(merged_into)

    def survivor(customer_id: int) -> int:
        for _ in range(20):
            nxt = survivors.get(customer_id)
            if nxt is None:
                return customer_id
            customer_id = nxt
        return customer_id

    new_customers: list[ImportedTicket] = []
    new_tags: list[set[str]] = []
    new_index: dict[int, int] = {}  # provisional (negative) id -> position in new_customers
    chosen: list[int] = []
    identity_rows: list[tuple[int, Claim, str]] = []
    tag_updates: dict[int, set[str]] = {}
    for ticket, claims in zip(fresh, hashed, strict=True):
        customer_id = next(
            (owners[(c.kind, d)] for c, d in claims if c.verified and (c.kind, d) in owners),
            None,
        )
        if customer_id is not None and customer_id > 0:
            customer_id = survivor(customer_id)
            if ticket.tags and not set(ticket.tags) <= set(tags_of.get(customer_id, ())):
                tag_updates.setdefault(customer_id, set(tags_of.get(customer_id, ()))).update(
                    ticket.tags
                )
        elif customer_id is None:
            customer_id = -(len(new_customers) + 1)
            new_index[customer_id] = len(new_customers)
            new_customers.append(ticket)
            new_tags.append(set(ticket.tags))
        else:
            new_tags[new_index[customer_id]].update(ticket.tags)
        chosen.append(customer_id)
        for claim, digest in claims:
            if (customer_id, claim.kind, digest) in known:
                continue
            if claim.verified and (claim.kind, digest) in owners:
                continue  # held by another customer: joining them is a merge, not an import
            known.add((customer_id, claim.kind, digest))
            if claim.verified:
                owners[(claim.kind, digest)] = customer_id
            identity_rows.append((customer_id, claim, digest))

    # 4. Ids, then rows.
    customer_ids = await writer.reserve("customer", len(new_customers))
    ticket_ids = await writer.reserve("ticket", len(fresh))

    def real(customer_id: int) -> int:
        return customer_ids[new_index[customer_id]] if customer_id < 0 else customer_id

    now = ctx.now
    t_now = writer.time(now)
    customer_rows = [
        (
            customer_ids[i],
            t.display_name,
            t.phone_masked,
            next((c.value for c in t.claims if c.kind == "crm_customer"), None),
            writer.json(sorted(new_tags[i])),
            writer.time(t.created_at),
        )
        for i, t in enumerate(new_customers)
    ]
    identity_out = [
        (real(cid), c.kind, digest, c.masked, writer.flag(c.verified), t_now)
        for cid, c, digest in identity_rows
    ]
    ticket_rows: list[tuple[Any, ...]] = []
    message_rows: list[tuple[Any, ...]] = []
    audit_rows: list[tuple[Any, ...]] = []
    clock_rows: list[tuple[Any, ...]] = []
    empty_list, empty_dict = writer.json([]), writer.json({})
    stamp = now.isoformat()
    delivered = "delivered"
    for ticket, ticket_id, customer_id in zip(fresh, ticket_ids, chosen, strict=True):
        customer_id = real(customer_id)
        number = ticket.number or format_number(now, ticket_id)
        refs: list[dict[str, Any]] = [
            {
                "kind": "source",
                "id": f"{source}:{ticket.source_id}",
                "by": "import",
                "at": now.isoformat(),
            }
        ]
        if ticket.original_number and ticket.original_number != number:
            refs.append(
                {
                    "kind": "source_number",
                    "id": ticket.original_number,
                    "by": "import",
                    "at": stamp,
                }
            )
        policy_name = first_due = resolution_due = None
        if ticket.status not in _CLOSING:
            policy_name, first_due, resolution_due = _clocks(
                ctx.book, ticket, ticket_id, now, writer, clock_rows
            )
        after = {
            "number": number,
            "source": source,
            "source_id": ticket.source_id,
            "original_number": ticket.original_number,
            "file": ctx.file_name,
            "line": ticket.line,
            "kind": ticket.kind.value,
            "status": ticket.status.value,
            "channel": ticket.channel,
            "created_at": ticket.created_at.isoformat(),
            "messages": len(ticket.messages),
            "sla_policy": policy_name,
        }
        digest = event_hash(
            GENESIS,
            ticket_id=ticket_id,
            actor=ctx.actor,
            action=IMPORTED,
            before={},
            after=after,
            at=now,
        )
        audit_rows.append(
            (ticket_id, ctx.actor, IMPORTED, empty_dict, writer.json(after), t_now, GENESIS, digest)
        )
        ticket_rows.append(
            (
                ticket_id,
                number,
                ticket.kind.value,
                ticket.category,
                ticket.priority.value,
                ticket.status.value,
                ticket.channel,
                customer_id,
                ticket.subject,
                ticket.queue,
                ticket.assignee,
                writer.flag(ticket.regulator_transfer),
                writer.flag(ticket.vulnerable),
                writer.flag(ticket.suspected_fraud),
                ticket.outcome.value if ticket.outcome else None,
                ticket.outcome_summary,
                policy_name,
                writer.time(first_due),
                writer.time(resolution_due),
                writer.time(ticket.first_responded_at),
                writer.json(refs),
                writer.time(ticket.created_at),
                empty_dict,
                ticket.language,
                empty_list,
                ticket.satisfaction,
                writer.time(ticket.created_at),
                writer.time(ticket.updated_at),
                writer.time(ticket.resolved_at),
                writer.time(ticket.closed_at),
                digest,
                source,
                ticket.source_id,
            )
        )
        for message in ticket.messages:
            direction = message.direction
            message_rows.append(
                (
                    ticket_id,
                    direction.value,
                    "internal" if direction == Direction.note else ticket.channel,
                    _PURPOSE[direction],
                    message.author,
                    message.text,
                    empty_list,
                    empty_dict,
                    delivered if direction == Direction.outbound else None,
                    writer.time(message.at),
                )
            )

    await writer.insert("customer", CUSTOMER_COLUMNS, customer_rows)
    await writer.insert("customer_identity", IDENTITY_COLUMNS, identity_out)
    await writer.insert("ticket", TICKET_COLUMNS, ticket_rows)
    await writer.insert("message", MESSAGE_COLUMNS, message_rows)
    await writer.insert("audit_event", AUDIT_COLUMNS, audit_rows)
    await writer.insert("sla_clock", CLOCK_COLUMNS, clock_rows)
    for customer_id, tags in tag_updates.items():
        await writer.conn.execute(
            sa.update(customer_table)
            .where(customer_table.c.id == customer_id)
            .values(tags=sorted(tags))
        )
    return len(fresh), duplicate, len(message_rows), len(new_customers)


def _clocks(
    book: PolicyBook,
    imported: ImportedTicket,
    ticket_id: int,
    now: datetime,
    writer: _Writer,
    out: list[tuple[Any, ...]],
) -> tuple[str | None, datetime | None, datetime | None]:
    """An open ticket's clocks, from its original receipt: what the policy gives it now.

    A first response already given stops the first-response clock (met or breached as its
    time says); a clock already past due is due at once, and the scheduler's next tick
    breaches and escalates it, as it would have in the old system."""
    shell = _Shell(
        id=ticket_id,
        kind=imported.kind,
        channel=imported.channel,
        category=imported.category,
        is_regulator_transfer=imported.regulator_transfer,
        clock_started_at=imported.created_at,
    )
    policy, clocks = plan_clocks(shell, book, now, factory=_Clock)  # type: ignore[arg-type]
    if policy is None:
        return None, None, None
    responded = imported.first_responded_at
    for clock in clocks:
        _responded(clock, responded)
        out.append(
            (
                ticket_id,
                clock.name,
                clock.policy,
                clock.basis,
                writer.time(clock.started_at),
                writer.time(clock.due_at),
                clock.target_seconds,
                clock.state.value if isinstance(clock.state, ClockState) else clock.state,
                writer.json(list(clock.warnings_sent)),
                writer.time(clock.next_check_at),
                writer.time(clock.stopped_at),
                writer.time(clock.breached_at),
            )
        )
    return policy.name, shell.first_response_due_at, shell.resolution_due_at


@dataclass(slots=True)
class _Shell:
    """What ``plan_clocks`` reads of a ticket and sets on it (a table model costs ~1 ms)."""

    id: int
    kind: Kind
    channel: str
    category: str | None
    is_regulator_transfer: bool
    clock_started_at: datetime
    deadline_at: datetime | None = None
    sla_policy: str | None = None
    first_response_due_at: datetime | None = None
    resolution_due_at: datetime | None = None


@dataclass(slots=True)
class _Clock:
    """A clock as ``plan_clocks`` plans it, with ``SlaClock``'s fields."""

    ticket_id: int
    name: str
    policy: str
    basis: str
    started_at: datetime
    due_at: datetime
    target_seconds: int
    state: ClockState
    warnings_sent: list[str]
    next_check_at: datetime | None = None
    stopped_at: datetime | None = None
    breached_at: datetime | None = None


def _responded(clock: SlaClock, responded: datetime | None) -> None:
    if clock.name != FIRST_RESPONSE or responded is None:
        return
    if responded <= clock.due_at:
        clock.state = ClockState.met
    else:
        clock.state, clock.breached_at = ClockState.breached, clock.due_at
    clock.stopped_at, clock.next_check_at = responded, None


# --- the run --------------------------------------------------------------------------------

Progress = Callable[[int, int], None]
"""Called with (bytes read, bytes in the file)."""


def file_key(path: Path) -> str:
    """Names one file's run: its size and the hash of its first MiB (renaming the file keeps
    the run; a file rewritten or grown is a new run, and the unique key keeps it harmless)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        digest.update(handle.read(SAMPLE_BYTES))
    digest.update(str(path.stat().st_size).encode())
    return digest.hexdigest()


def detect_format(path: Path, given: str | None) -> str:
    if given:
        if given not in ("csv", "jsonl"):
            raise ImportFailed(f"tickets are imported from csv or jsonl, not {given!r}")
        return given
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt", ".tsv"):
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    raise ImportFailed(
        f"cannot tell the format of {path.name!r} from its extension; give --format csv or jsonl"
    )


def default_rejects_path(path: Path, file_format: str) -> Path:
    return path.with_name(f"{path.stem}.rejects.{'jsonl' if file_format == 'jsonl' else 'csv'}")


class _Rejects:
    """The reject file, appended batch by batch; its length is part of each checkpoint, so a
    resumed run first cuts off what an interrupted batch had written."""

    def __init__(
        self, path: Path, file_format: str, headings: Sequence[str] | None, keep: int
    ) -> None:
        self.path, self.format, self.headings = path, file_format, list(headings or ())
        self.size = keep
        if keep == 0:
            self.path.unlink(missing_ok=True)
        elif self.path.exists():
            with self.path.open("r+b") as handle:
                handle.truncate(keep)
        self.rows: list[tuple[Group, tuple[str, ...]]] = []

    def add(self, group: Group, reasons: Sequence[str]) -> None:
        self.rows.append((group, tuple(reasons)))

    def flush(self) -> int:
        if not self.rows:
            return self.size
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists() or self.size == 0
        if self.format == "jsonl":
            with self.path.open("a", encoding="utf-8") as out:
                for group, reasons in self.rows:
                    record: dict[str, Any] = {"line": group.line, "reasons": list(reasons)}
                    text = group.raw[0] if group.raw else ""
                    try:
                        record["record"] = json.loads(text)
                    except ValueError:
                        record["text"] = text
                    out.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        else:
            with self.path.open("a", encoding="utf-8-sig" if new else "utf-8", newline="") as out:
                writer = csv.writer(out)
                if new:
                    writer.writerow(["line", "reasons", *self.headings])
                for group, reasons in self.rows:
                    for number, cells in group.raw:
                        writer.writerow([number, "; ".join(reasons), *cells])
        self.rows.clear()
        self.size = self.path.stat().st_size
        return self.size


async def import_tickets(
    engine: AsyncEngine,
    path: Path,
    *,
    source: str,
    identity_key: bytes,
    book: PolicyBook,
    now: datetime,
    actor: str = "import",
    file_format: str | None = None,
    encoding: str | None = None,
    zone: str = "Asia/Shanghai",
    rejects_path: Path | None = None,
    batch_size: int = DEFAULT_BATCH,
    restart: bool = False,
    progress: Progress | None = None,
    stop_after: int | None = None,
) -> TicketImportReport:
    """Load ``path`` into the store behind ``engine``; see the module's text."""
    import time

    began = time.perf_counter()
    if not _SOURCE.fullmatch(source):
        raise ImportFailed(
            f"--source {source!r}: name the source system with letters, digits, _ . - "
            "(at most 40), e.g. legacy-crm"
        )
    if batch_size < 1:
        raise ImportFailed("--batch-size must be at least 1")
    try:
        tz = ZoneInfo(zone)
    except Exception:
        raise ImportFailed(f"unknown time zone {zone!r}; e.g. Asia/Shanghai") from None
    fmt, enc, total_bytes, key = _inspect(path, file_format, encoding)
    report = TicketImportReport(path, fmt, enc, source)
    report.rejects_path = rejects_path or default_rejects_path(path, fmt)
    headings: tuple[str, ...] | None = None
    start_offset, start_line = 0, 0
    if fmt == "csv":
        headings, start_offset, start_line = csv_headings(path, enc)
        report.ignored_columns = check_headings(headings)
    ctx = _Context(source, identity_key, book, now, actor, path.name)
    run_table = TicketImportRun.__table__  # type: ignore[attr-defined]

    async with engine.connect() as conn:
        writer = _Writer(conn)
        locked = False
        if writer.postgres:
            locked = bool(
                (
                    await conn.execute(
                        sa.text("SELECT pg_try_advisory_lock(hashtext(:k))"),
                        {"k": f"tongdao-import:{source}"},
                    )
                ).scalar()
            )
            await conn.commit()
            if not locked:
                raise ImportFailed(f"another import of source {source!r} is running; wait for it")
        try:
            run = (
                await conn.execute(
                    sa.select(run_table).where(
                        run_table.c.source == source, run_table.c.file_key == key
                    )
                )
            ).first()
            await conn.commit()
            if run is not None and restart:
                async with conn.begin():
                    await conn.execute(sa.delete(run_table).where(run_table.c.id == run.id))
                run = None
            if run is not None and run.finished_at is not None:
                _restore(report, run)
                report.already_finished = run.finished_at
                return report
            if run is not None:
                _restore(report, run)
                report.resumed_at_line = run.line + 1
                start_offset, start_line = run.offset, run.line
                rejects = _Rejects(report.rejects_path, fmt, headings, run.rejects_bytes)
            else:
                rejects = _Rejects(report.rejects_path, fmt, headings, 0)
                async with conn.begin():
                    await conn.execute(
                        sa.insert(run_table).values(
                            source=source,
                            file_key=key,
                            file_name=path.name[:500],
                            offset=start_offset,
                            line=start_line,
                            started_at=now,
                            updated_at=now,
                        )
                    )
            groups = (
                read_csv_groups(path, enc, headings or (), start_offset, start_line)
                if fmt == "csv"
                else read_jsonl_groups(path, enc, start_offset, start_line)
            )
            batch: list[ImportedTicket] = []
            seen = 0
            last: Group | None = None
            analyzed_at = 0

            async def commit(final: bool) -> None:
                nonlocal analyzed_at
                assert last is not None or final
                async with conn.begin():
                    loaded, duplicate, messages, customers = await _store_batch(writer, ctx, batch)
                    report.loaded += loaded
                    report.duplicate += duplicate
                    report.messages += messages
                    report.customers_created += customers
                    report.rejected += len(rejects.rows)
                    report.tickets += seen
                    size = rejects.flush()
                    values: dict[str, Any] = {
                        "tickets": report.tickets,
                        "loaded": report.loaded,
                        "duplicate": report.duplicate,
                        "rejected": report.rejected,
                        "messages": report.messages,
                        "rejects_bytes": size,
                        "updated_at": now,
                    }
                    if last is not None:
                        values["offset"] = last.end
                        values["line"] = last.end_line
                    if final:
                        values["finished_at"] = now
                    await conn.execute(
                        sa.update(run_table)
                        .where(run_table.c.source == source, run_table.c.file_key == key)
                        .values(**values)
                    )
                report.batches += 1
                if writer.postgres and report.loaded >= max(2 * analyzed_at, batch_size):
                    # COPY leaves the planner's statistics behind: with the tables grown ten-
                    # or a hundredfold since, the dedupe and identity lookups scan them whole
                    # (measured: 5 s a lookup at 100,000 tickets). Analyzing as they double
                    # costs a few runs in all.
                    async with conn.begin():
                        await conn.execute(sa.text("ANALYZE ticket, customer_identity, customer"))
                    analyzed_at = report.loaded

            for group in groups:
                seen += 1
                last = group
                if group.problem is not None:
                    rejects.add(group, (group.problem,))
                else:
                    try:
                        batch.append(
                            validate_ticket(
                                group.fields, group.messages, zone=tz, now=now, line=group.line
                            )
                        )
                    except TicketRejected as exc:
                        rejects.add(group, exc.reasons)
                if seen >= batch_size:
                    await commit(False)
                    batch, seen = [], 0
                    if progress is not None:
                        progress(group.end, total_bytes)
                    if stop_after is not None and report.batches >= stop_after:
                        raise ImportInterrupted(f"stopped after {report.batches} batches")
            await commit(True)
            if progress is not None:
                progress(total_bytes, total_bytes)
        finally:
            if locked:
                with contextlib.suppress(Exception):
                    await conn.execute(
                        sa.text("SELECT pg_advisory_unlock(hashtext(:k))"),
                        {"k": f"tongdao-import:{source}"},
                    )
                    await conn.commit()
    report.seconds = time.perf_counter() - began
    return report


def _inspect(
    path: Path, file_format: str | None, encoding: str | None
) -> tuple[str, str, int, str]:
    """The file's format, encoding, size and run key; refuses what cannot be read."""
    if not path.is_file():
        raise ImportFailed(f"cannot read {path}: no such file")
    return (
        detect_format(path, file_format),
        detect_encoding(path, encoding),
        path.stat().st_size,
        file_key(path),
    )


def _restore(report: TicketImportReport, run: Any) -> None:
    report.tickets, report.loaded, report.duplicate = run.tickets, run.loaded, run.duplicate
    report.rejected, report.messages = run.rejected, run.messages


async def run_ticket_import(
    settings: Any,
    path: Path,
    *,
    source: str,
    actor: str,
    file_format: str | None = None,
    encoding: str | None = None,
    zone: str | None = None,
    rejects_path: Path | None = None,
    batch_size: int = DEFAULT_BATCH,
    restart: bool = False,
    progress: Progress | None = None,
) -> TicketImportReport:
    """What ``tongdao import tickets`` runs: the hub's store, identity key and SLA policies,
    on a migrated database; no connector is started and no worker runs."""
    from hub.identity_key import load_identity_key
    from hub.inspection import standalone_hub

    async with standalone_hub(settings) as hub:
        key = await load_identity_key(hub.sessions, settings.security)
        return await import_tickets(
            hub.engine,
            path,
            source=source,
            identity_key=key,
            book=hub.book,
            now=hub.clock.now(),
            actor=actor,
            file_format=file_format,
            encoding=encoding,
            zone=zone or settings.reports.timezone,
            rejects_path=rejects_path,
            batch_size=batch_size,
            restart=restart,
            progress=progress,
        )


__all__ = [
    "DEFAULT_BATCH",
    "FIELDS",
    "MESSAGE_FIELDS",
    "TICKETS",
    "ImportFailed",
    "ImportInterrupted",
    "ImportedTicket",
    "TicketImportReport",
    "TicketRejected",
    "import_tickets",
    "keepable_number",
    "run_ticket_import",
    "validate_ticket",
]
