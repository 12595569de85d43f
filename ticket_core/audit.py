"""Audit events chained by hash per ticket, so an edited, removed or reordered event shows.

Each event's hash covers its content (ticket, actor, action, before, after, time) and the
previous event's hash; the ticket keeps the newest hash as ``audit_head``. Verification
recomputes every hash and follows the links, so it finds:

* an edited event (any field, or its stored hash): its content no longer gives its hash;
* a removed event: the next one points at a hash that is not in the chain; the last one
  removed: the ticket's head names an event that is not there;
* reordered events: an event points at one that is not its predecessor;
* an inserted event: it, or the event after it, points at the wrong predecessor; one
  appended after the head: the head no longer names the last event.

Someone able to rewrite the whole chain *and* the head, recomputing every hash, is beyond
what an unkeyed chain can show; the heads must then be compared with a copy kept elsewhere.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncResult
from sqlmodel.ext.asyncio.session import AsyncSession

from ticket_core.errors import TicketNotFound
from ticket_core.models import AuditEvent, Ticket

GENESIS = "0" * 64


def event_hash(
    prev_hash: str,
    *,
    ticket_id: int | None,
    actor: str,
    action: str,
    before: dict[str, Any],
    after: dict[str, Any],
    at: datetime,
) -> str:
    # The time is hashed in UTC, as the database gives it back, so an event recorded with a
    # local time still verifies after the round trip.
    body = json.dumps(
        {
            "ticket_id": ticket_id,
            "actor": actor,
            "action": action,
            "before": before,
            "after": after,
            "at": at.astimezone(UTC).isoformat(),
        },
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(f"{prev_hash}|{body}".encode()).hexdigest()


def record(
    session: AsyncSession,
    ticket: Ticket,
    *,
    actor: str,
    action: str,
    at: datetime,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append an event to the ticket's chain; the caller holds the ticket row for update."""
    prev = ticket.audit_head or GENESIS
    before, after = before or {}, after or {}
    digest = event_hash(
        prev, ticket_id=ticket.id, actor=actor, action=action, before=before, after=after, at=at
    )
    event = AuditEvent(
        ticket_id=ticket.id,
        actor=actor,
        action=action,
        before=before,
        after=after,
        at=at,
        prev_hash=prev,
        hash=digest,
    )
    ticket.audit_head = digest
    session.add(event)
    if ticket not in session:
        # Adding a ticket the session already holds changes nothing, yet walks every one of
        # the model's properties for cascades (~8 us; the scheduler records two per breach).
        session.add(ticket)
    return event


async def flush(session: AsyncSession) -> None:
    """Write the session's pending changes, its new audit events in one statement.

    SQLite does not promise that ``RETURNING`` gives rows in insertion order, so the ORM
    inserts rows without an id one statement at a time: a round trip through aiosqlite's
    thread per event. ``audit_event.id`` is a rowid alias without ``AUTOINCREMENT``, so
    SQLite would give each new row one past the largest id; giving those same ids here, in
    the order the events were added, lets the ORM insert them all in one executemany. The
    largest id is read in this transaction, and SQLite lets a transaction write only if no
    other has written since it began reading, so no other row can take these ids.
    """
    if session.get_bind().dialect.name == "sqlite":
        pending = [obj for obj in session.new if isinstance(obj, AuditEvent) and obj.id is None]
        if len(pending) > 1:
            # Through the connection: a session query would autoflush the events first.
            connection = await session.connection()
            largest = await connection.scalar(sa.select(sa.func.max(AuditEvent.id)))
            for number, event in enumerate(pending, start=(largest or 0) + 1):
                event.id = number
    await session.flush()


# --- verification -------------------------------------------------------------------------


class ChainLink(Protocol):
    """What verification reads of an event: an ``AuditEvent`` or a row of its columns."""

    @property
    def id(self) -> int | None: ...
    @property
    def ticket_id(self) -> int | None: ...
    @property
    def actor(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def before(self) -> dict[str, Any]: ...
    @property
    def after(self) -> dict[str, Any]: ...
    @property
    def at(self) -> datetime: ...
    @property
    def prev_hash(self) -> str: ...
    @property
    def hash(self) -> str: ...


class ProblemKind(StrEnum):
    edited = "edited"
    """The event's content does not give its stored hash."""
    out_of_place = "out_of_place"
    """The event does not follow its predecessor: one removed, reordered or inserted."""
    head_mismatch = "head_mismatch"
    """The ticket's head does not name the last event: the last removed, or one appended."""
    orphaned = "orphaned"
    """The event names a ticket that does not exist."""


@dataclass(frozen=True, slots=True)
class ChainProblem:
    kind: ProblemKind
    detail: str
    event_id: int | None = None
    ticket_id: int | None = None
    ticket_number: str | None = None

    def __str__(self) -> str:
        where = f"ticket {self.ticket_number}: " if self.ticket_number else ""
        return f"{where}{self.detail}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "ticket": self.ticket_number,
            "event_id": self.event_id,
            "kind": self.kind.value,
            "detail": self.detail,
        }


def _content_hash(event: ChainLink) -> str:
    return event_hash(
        event.prev_hash,
        ticket_id=event.ticket_id,
        actor=event.actor,
        action=event.action,
        before=event.before,
        after=event.after,
        at=event.at,
    )


def check_chain(
    events: Sequence[ChainLink],
    *,
    head: str | None = None,
    ticket_id: int | None = None,
    ticket_number: str | None = None,
) -> list[ChainProblem]:
    """Every problem in one ticket's events (in id order), each saying what it suggests.

    ``head`` is the ticket's ``audit_head``; without it a removed *last* event cannot show.
    An event whose stored hash alone was edited is reported once, as edited: its successor
    is judged against the hash its content gives, so one edit does not read as two.
    """
    problems: list[ChainProblem] = []

    def problem(kind: ProblemKind, event_id: int | None, detail: str) -> None:
        problems.append(ChainProblem(kind, detail, event_id, ticket_id, ticket_number))

    position = {e.hash: i for i, e in enumerate(events)}
    position.update({GENESIS: -1})
    prev_stored = prev_content = GENESIS
    prev_id: int | None = None
    last_content = GENESIS
    for index, event in enumerate(events):
        content = _content_hash(event)
        if content != event.hash:
            problem(
                ProblemKind.edited,
                event.id,
                f"event {event.id} ({event.action}): its content does not match its hash; "
                "a field (actor, action, before, after, time, ticket, previous hash) or the "
                "hash itself was changed",
            )
        if event.prev_hash not in (prev_stored, prev_content):
            detail = _misplaced(event, index, prev_id, events, position)
            problem(ProblemKind.out_of_place, event.id, detail)
        prev_stored, prev_content, prev_id = event.hash, content, event.id
        last_content = content
    if head is not None:
        problems.extend(
            ChainProblem(ProblemKind.head_mismatch, detail, None, ticket_id, ticket_number)
            for detail in _head_problems(events, head, last_content, position)
        )
    return problems


def _misplaced(
    event: ChainLink,
    index: int,
    prev_id: int | None,
    events: Sequence[ChainLink],
    position: dict[str, int],
) -> str:
    subject = f"event {event.id} ({event.action})"
    expected = "open the chain" if prev_id is None else f"follow event {prev_id}"
    pointed = position.get(event.prev_hash)
    if pointed is None:
        return (
            f"{subject} should {expected} but follows an event that is not in the "
            "chain: an event before it was removed, or edited and re-hashed"
        )
    if pointed == -1:
        return (
            f"{subject} claims to open the chain but comes after event {prev_id}: events "
            "were reordered, or it was inserted"
        )
    target = events[pointed].id
    if pointed > index:
        return f"{subject} follows event {target}, which comes after it: events were reordered"
    return (
        f"{subject} follows event {target}, not event {prev_id}: events were reordered, or "
        f"event {prev_id} was inserted"
    )


def _head_problems(
    events: Sequence[ChainLink], head: str, last_content: str, position: dict[str, int]
) -> Iterable[str]:
    if not events:
        if head and head != GENESIS:
            yield (
                "the ticket's audit head names an event, but the ticket has no audit events: "
                "they were removed"
            )
        return
    last = events[-1]
    if head in (last.hash, last_content):
        return
    if not head:
        yield (
            f"the ticket has audit events up to event {last.id} but no audit head: the head "
            "was cleared"
        )
        return
    pointed = position.get(head)
    if pointed is not None and pointed >= 0:
        yield (
            f"the ticket's audit head is event {events[pointed].id}, but events after it "
            f"exist up to event {last.id}: they were appended without the hub"
        )
        return
    yield (
        f"the chain ends at event {last.id} ({last.action}) but the ticket's audit head "
        "names an event that is not there: the last event was removed, or edited and "
        "re-hashed"
    )


def verify_chain(events: Sequence[ChainLink], *, head: str | None = None) -> list[str]:
    """Problems found in one ticket's events, oldest first; empty when the chain holds.

    Give the ticket's ``audit_head`` as ``head`` to also catch a removed last event.
    """
    return [str(p) for p in check_chain(events, head=head)]


# --- the whole store, streamed ------------------------------------------------------------

ReadSessions = Callable[[], AsyncSession]
"""Opens a session that only reads (``async_sessionmaker``)."""

DEFAULT_BATCH = 500
DEFAULT_PROBLEM_LIMIT = 1000
_STREAM_ROWS = 2000
_EVENT_COLUMNS = (
    AuditEvent.id,
    AuditEvent.ticket_id,
    AuditEvent.actor,
    AuditEvent.action,
    AuditEvent.before,
    AuditEvent.after,
    AuditEvent.at,
    AuditEvent.prev_hash,
    AuditEvent.hash,
)


@dataclass(slots=True)
class AuditVerification:
    """What a verification run found. Every problem is counted; the first
    ``problem_limit`` are kept, so a wholly broken store cannot exhaust memory."""

    ticket: str | None = None
    """The one ticket verified, or ``None`` for all of them."""
    tickets_checked: int = 0
    events_checked: int = 0
    problem_count: int = 0
    problems: list[ChainProblem] = field(default_factory=list)
    problem_limit: int = DEFAULT_PROBLEM_LIMIT

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def add(self, problems: Iterable[ChainProblem]) -> None:
        for item in problems:
            self.problem_count += 1
            if len(self.problems) < self.problem_limit:
                self.problems.append(item)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "ticket": self.ticket,
            "tickets_checked": self.tickets_checked,
            "events_checked": self.events_checked,
            "problem_count": self.problem_count,
            "problems": [p.as_dict() for p in self.problems],
            "problems_truncated": self.problem_count > len(self.problems),
        }


async def verify_store(
    sessions: ReadSessions,
    *,
    ticket_number: str | None = None,
    batch_size: int = DEFAULT_BATCH,
    problem_limit: int = DEFAULT_PROBLEM_LIMIT,
) -> AuditVerification:
    """Verify every ticket's chain (or one ticket's) against its head, batch by batch.

    Tickets are read ``batch_size`` at a time by id, and each batch's events are streamed in
    (ticket, id) order, so memory holds one ticket's events, never the whole table. Each
    batch reads from one snapshot, so a ticket changing meanwhile is seen either wholly
    before or wholly after the change, never as a head that does not match its events.
    Events naming a ticket that does not exist, and events of no ticket, are checked too.
    """
    report = AuditVerification(ticket=ticket_number, problem_limit=problem_limit)
    if ticket_number is not None:
        async with sessions() as session:
            await _snapshot(session)
            row = (
                await session.exec(
                    sa.select(Ticket.id, Ticket.number, Ticket.audit_head).where(
                        Ticket.number == ticket_number
                    )
                )
            ).first()
            if row is None:
                raise TicketNotFound(ticket_number)
            heads = {row.id: (row.number, row.audit_head)}
            await _check_events(session, AuditEvent.ticket_id == row.id, heads, report)
        return report

    after = 0
    while True:
        async with sessions() as session:
            await _snapshot(session)
            rows = (
                await session.exec(
                    sa.select(Ticket.id, Ticket.number, Ticket.audit_head)
                    .where(Ticket.id > after)  # type: ignore[arg-type]
                    .order_by(Ticket.id)
                    .limit(batch_size)
                )
            ).all()
            if not rows:
                # Events beyond the last ticket (its row deleted) and events of no ticket.
                leftover = sa.or_(
                    AuditEvent.ticket_id > after,  # type: ignore[operator]
                    AuditEvent.ticket_id.is_(None),  # type: ignore[union-attr]
                )
                await _check_events(session, leftover, {}, report)
                return report
            last = rows[-1].id
            heads = {r.id: (r.number, r.audit_head) for r in rows}
            in_batch = sa.and_(
                AuditEvent.ticket_id > after,  # type: ignore[operator]
                AuditEvent.ticket_id <= last,  # type: ignore[operator]
            )
            await _check_events(session, in_batch, heads, report)
            after = last


async def _snapshot(session: AsyncSession) -> None:
    """Make the session's reads one snapshot: PostgreSQL's default (read committed) gives
    each statement its own; SQLite's read transaction already holds one."""
    if session.get_bind().dialect.name == "postgresql":
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


async def _check_events(
    session: AsyncSession,
    where: sa.ColumnElement[bool],
    heads: dict[int, tuple[str | None, str]],
    report: AuditVerification,
) -> None:
    query = (
        sa.select(*_EVENT_COLUMNS)
        .where(where)
        .order_by(AuditEvent.ticket_id, AuditEvent.id)
        .execution_options(yield_per=_STREAM_ROWS)
    )
    seen: set[int | None] = set()
    async for ticket_id, events in _by_ticket(await session.stream(query)):
        seen.add(ticket_id)
        report.events_checked += len(events)
        report.add(_check_group(ticket_id, events, heads))
    for ticket_id in heads.keys() - seen:
        number, head = heads[ticket_id]
        report.add(check_chain([], head=head, ticket_id=ticket_id, ticket_number=number))
    report.tickets_checked += len(heads)


async def _by_ticket(
    result: AsyncResult[Any],
) -> AsyncIterator[tuple[int | None, list[ChainLink]]]:
    """Consecutive rows of one ticket, as one list each; rows are fetched a chunk at a
    time (one await per chunk, not per row)."""
    current: list[ChainLink] = []
    async for chunk in result.partitions():
        for row in chunk:
            if current and row.ticket_id != current[0].ticket_id:
                yield current[0].ticket_id, current
                current = []
            current.append(row)
    if current:
        yield current[0].ticket_id, current


def _check_group(
    ticket_id: int | None,
    events: list[ChainLink],
    heads: dict[int, tuple[str | None, str]],
) -> list[ChainProblem]:
    if ticket_id is None:
        # Not written by ``record``; they can still be checked for edits and links.
        return check_chain(events)
    if ticket_id not in heads:
        return [
            ChainProblem(
                ProblemKind.orphaned,
                f"event {e.id} ({e.action}) belongs to ticket id {ticket_id}, which does not "
                "exist: the ticket row was deleted",
                e.id,
                ticket_id,
            )
            for e in events
        ]
    number, head = heads[ticket_id]
    return check_chain(events, head=head, ticket_id=ticket_id, ticket_number=number)
