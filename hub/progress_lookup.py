"""A customer looks up their own ticket with its number and the code from the acknowledgement.

Three rules keep this public door from becoming an oracle or a leak:

* **One answer for every failure.** An unknown number, a wrong code, a malformed code and a
  ticket without a code all give ``None`` (the API's one 404), after the same work: the code's
  keyed hash is computed and compared in constant time even when there is no ticket.
* **Attempts are limited before anything is checked,** per client address and per ticket
  number (``[progress_lookup]``), against the hub's clock. An attempt is counted whether it
  succeeds or not, and is recorded in the same step as the check, so concurrent requests
  cannot slip past the limit together. Limits are per process (``hub.ratelimit``).
* **Only what the customer was told.** The view is built from an explicit list of public
  facts and the messages exchanged with the customer: never notes, never the assignee, the
  queue, the review, the audit trail or a proposed outcome still under review. Personal
  numbers in message texts are masked, since the code is a bearer secret that may be
  forwarded.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import structlog
from sqlmodel import col, select

from hub import progress_codes
from hub.identity_key import load_identity_key
from hub.logs import redact_text
from hub.notices import public_status
from hub.ratelimit import SlidingWindow, client_key
from hub.settings import Settings
from hub.store import SessionFactory
from ticket_core import AuditEvent, Clock, Direction, Message, Status, Ticket
from ticket_core.tickets import latest_reply_address

log = structlog.get_logger(__name__)

NUMBER = re.compile(r"^[A-Z]{2,6}-\d{8}-\d{6,12}$")
HIDDEN_PURPOSES = frozenset({"note", "regulator_feedback"})
"""Messages that are not part of the conversation with the customer, whatever their
direction: internal notes, and the result feedback a regulator-transferred case sends to
the regulator."""
TIMELINE_LIMIT = 200
"""The newest messages shown; a page is for following a case, not for exporting it."""

PublicStatus = Literal["received", "in_progress", "waiting_for_customer", "resolved", "closed"]


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: datetime
    sender: Literal["customer", "bank"]
    channel: str
    text: str


@dataclass(frozen=True, slots=True)
class Milestone:
    """A step of the case the customer may know of: ``received``, ``assigned`` (never to
    whom), then each public status as it changed."""

    at: datetime
    step: str


@dataclass(frozen=True, slots=True)
class PublicTicket:
    """What a customer may see of a ticket; built field by field, never copied wholesale."""

    number: str
    kind: str
    status: PublicStatus
    language: str
    created_at: datetime
    due_at: datetime | None
    outcome: str | None
    timeline: tuple[TimelineEntry, ...]
    timeline_complete: bool
    milestones: tuple[Milestone, ...] = ()
    satisfaction: str | None = None
    """The customer's own answer to the satisfaction survey, once given."""
    channel: str = ""
    """The channel the case came in on: follow-ups from the page go to the web channel only
    for cases whose contact it confirmed."""


@dataclass(frozen=True, slots=True)
class Limited:
    """Too many attempts: try again after ``retry_after`` seconds."""

    retry_after: float


def normalize_number(typed: str) -> str | None:
    """The ticket number as stored, or ``None`` when it cannot be one."""
    number = typed.strip().upper()
    return number if NUMBER.match(number) else None


class ProgressLookup:
    def __init__(
        self,
        settings: Settings,
        *,
        sessions: SessionFactory,
        reads: SessionFactory,
        clock: Clock,
    ) -> None:
        limits = settings.progress_lookup
        window = timedelta(seconds=limits.window_seconds)
        self.per_number = SlidingWindow(limits.max_attempts_per_number, window)
        self.per_client = SlidingWindow(limits.max_attempts_per_client, window)
        self._security = settings.security
        self._sessions = sessions
        self._reads = reads
        self._clock = clock
        self._key: bytes | None = None
        self._key_lock = asyncio.Lock()

    async def lookup(
        self, client_host: str | None, number: str, code: str
    ) -> PublicTicket | Limited | None:
        """The ticket's public view, ``Limited`` when this client or number has had too many
        attempts, or ``None`` for every kind of mismatch."""
        wanted = normalize_number(number)
        refused = self._admit(client_key(client_host), wanted)
        if refused is not None:
            return refused
        key = await self._identity_key()
        async with self._reads() as session:
            ticket = (
                (await session.exec(select(Ticket).where(Ticket.number == wanted))).first()
                if wanted
                else None
            )
            ok = progress_codes.matches(
                key, wanted or "", code, ticket.progress_code_hash if ticket else None
            )
            if ticket is None or not ok:
                return None
            messages = list(
                (
                    await session.exec(
                        select(Message)
                        .where(Message.ticket_id == ticket.id)
                        .where(col(Message.direction).in_([Direction.inbound, Direction.outbound]))
                        .where(col(Message.purpose).not_in(HIDDEN_PURPOSES))
                        .where(Message.channel != "internal")
                        .order_by(col(Message.id).desc())
                        .limit(TIMELINE_LIMIT + 1)
                    )
                ).all()
            )
            events = list(
                (
                    await session.exec(
                        select(AuditEvent)
                        .where(AuditEvent.ticket_id == ticket.id)
                        .where(col(AuditEvent.action).in_(MILESTONE_ACTIONS))
                        .order_by(col(AuditEvent.id))
                        .limit(MILESTONE_LIMIT)
                    )
                ).all()
            )
        return _public(ticket, messages, _milestones(events))

    async def reply_address(self, number: str) -> tuple[str, dict[str, object]]:
        """The ticket's channel and where its customer last wrote from on it: where a
        follow-up from the page must claim to come from to thread onto the ticket. Call only
        after ``lookup`` accepted the number and code."""
        async with self._reads() as session:
            ticket = (await session.exec(select(Ticket).where(Ticket.number == number))).first()
            if ticket is None:
                return "", {}
            return ticket.channel, await latest_reply_address(session, ticket)

    def _admit(self, client: str, number: str | None) -> Limited | None:
        """Check and record an attempt in one synchronous step (no await: atomic here)."""
        now = self._clock.now()
        by_client = self.per_client.retry_after(client, now)
        by_number = self.per_number.retry_after(number, now) if number is not None else 0.0
        if by_client > 0 or by_number > 0:
            # The number, not the address: enough to see a ticket under attack, and no
            # personal data in the log.
            log.warning(
                "progress.lookup_limited",
                limit="number" if by_number >= by_client else "client",
                number=number,
            )
            return Limited(max(by_client, by_number))
        self.per_client.hit(client, now)
        if number is not None:
            self.per_number.hit(number, now)
        return None

    async def _identity_key(self) -> bytes:
        if self._key is None:
            async with self._key_lock:
                if self._key is None:
                    self._key = await load_identity_key(self._sessions, self._security)
        return self._key


MILESTONE_ACTIONS = ("ticket.created", "ticket.assigned", "ticket.status_changed")
MILESTONE_LIMIT = 200


def _milestones(events: list[AuditEvent]) -> tuple[Milestone, ...]:
    """Each public step once, in order: internal statuses map onto public ones
    (``under_review`` shows as in progress), so a proposed outcome never leaks."""
    steps: list[Milestone] = []
    for event in events:
        if event.action == "ticket.created":
            step = "received"
        elif event.action == "ticket.assigned":
            if any(m.step == "assigned" for m in steps):
                continue
            step = "assigned"
        else:
            try:
                step = public_status(str(event.after.get("status", "")))
            except (KeyError, ValueError):
                continue
        if steps and steps[-1].step == step:
            continue
        steps.append(Milestone(event.at, step))
    return tuple(steps)


def _public(
    ticket: Ticket, newest_first: list[Message], milestones: tuple[Milestone, ...] = ()
) -> PublicTicket:
    status = public_status(ticket.status)
    final = Status(ticket.status) in (Status.resolved, Status.closed)
    shown = newest_first[:TIMELINE_LIMIT]
    return PublicTicket(
        number=ticket.number or "",
        kind=str(ticket.kind),
        status=status,  # type: ignore[arg-type]
        language=ticket.language or "zh-CN",
        created_at=ticket.created_at,
        # A proposed outcome under review is not an outcome yet; a due time once resolved
        # is history.
        due_at=None if final else ticket.resolution_due_at,
        outcome=str(ticket.outcome) if final and ticket.outcome else None,
        timeline=tuple(
            TimelineEntry(
                at=m.created_at,
                sender="customer" if m.direction == Direction.inbound else "bank",
                channel=m.channel,
                text=redact_text(m.text),
            )
            for m in reversed(shown)
        ),
        timeline_complete=len(newest_first) <= TIMELINE_LIMIT,
        milestones=milestones,
        satisfaction=ticket.satisfaction,
        channel=ticket.channel,
    )
