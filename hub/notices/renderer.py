"""Rendering customer notices from Jinja2 templates per event, language and channel.

Where a template is found, for event ``E``, language ``L`` and channel ``C``, first hit wins::

    L/C/E.txt   then   L/E.txt        for L in the ticket's language chain (en-GB, en),
                                      then zh-CN
    each looked up in the operator's ``notices.template_dir`` first, then the built-in set

so a channel's own text beats a generic one wherever either lives, and an operator's file
beats the built-in file of the same name.

What a template can see is only what the renderer is given: a few public facts of the ticket
(number, kind, channel, due time, outcome once set) and the fields the caller passes. The
ticket object itself, its notes, assignee, review state and audit trail are never in the
context, so no template, built-in or operator's, can leak them. Callers must not pass internal
text as a field. Fields are plain data only (text, numbers, times); control and bidirectional
formatting characters are stripped from text, so a reason typed by an agent or a value that
came from a channel cannot break an SMS or disguise a link. Output is plain text: autoescaping
is off, and templates run in Jinja's sandbox.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import structlog
from jinja2.sandbox import ImmutableSandboxedEnvironment

from hub.notices.wording import (
    DEFAULT_LANGUAGE,
    LocalTime,
    kind_text,
    language_chain,
    local_time,
    outcome_text,
)
from hub.settings import NoticeSettings
from ticket_core import Ticket

log = structlog.get_logger(__name__)

BUILTIN_DIR = Path(__file__).parent / "templates"

EVENTS: Mapping[str, tuple[str, ...]] = {
    "acknowledgement": ("code",),
    "accepted": (),
    "assigned": (),
    "in_progress": (),
    "pending_customer": ("request",),
    "extended": ("due_at", "reason"),
    "resolved": ("outcome",),
    "survey": (),
    "auto_closed": (),
    "reopened": (),
}
"""The built-in events and the fields each needs (beyond the ticket's own facts). Operators
may add templates for other event names; those have no required fields."""

OPTIONAL_FIELDS = ("code", "request", "reason", "summary", "days", "progress_url")
"""Names every template may test with ``{% if name %}``; they are ``None`` unless given."""

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_CHANNEL = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_FIELD = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")
_NEWLINES = re.compile(r"\r\n?|[\u2028\u2029\x85]")
# C0 and C1 controls except tab and newline, DEL, bidirectional marks, embeddings, overrides
# and isolates, and the byte-order mark.
_CONTROL = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]"
)
_BLANK_RUNS = re.compile(r"\n{3,}")


class NoticeError(Exception):
    """A notice cannot be rendered; the message says which and why."""


class TemplateMissing(NoticeError):
    def __init__(self, event: str, language: str, channel: str | None, tried: list[str]) -> None:
        self.event, self.language, self.channel, self.tried = event, language, channel, tried
        super().__init__(
            f"no notice template for event {event!r} in language {language!r} (nor in the "
            f"fallback {DEFAULT_LANGUAGE}) for channel {channel or '(any)'!r}; looked for "
            + ", ".join(tried)
        )


class NoticeFieldError(NoticeError, ValueError):
    """A field is missing, misnamed or of a kind a template must not see."""


class TemplateBroken(NoticeError):
    """A template does not compile or fails while rendering."""


def clean_text(value: str) -> str:
    """Text safe to put into a customer message: one kind of newline, no control or
    bidirectional formatting characters."""
    return _CONTROL.sub("", _NEWLINES.sub("\n", value))


@dataclass(frozen=True, slots=True)
class _Found:
    template: jinja2.Template
    language: str
    name: str


class Notices:
    """Renders notices; one per configuration (``Notices.from_settings``), safe to share.

    Templates are read once and cached; an operator who edits one restarts the process
    (``check`` has then compiled every operator template at start, so a typo stops the start
    instead of the first acknowledgement).
    """

    def __init__(
        self,
        template_dir: Path | None = None,
        *,
        timezone: str = "Asia/Shanghai",
        progress_url: str | None = None,
    ) -> None:
        self.template_dir = template_dir
        self.zone = ZoneInfo(timezone)
        self.progress_url = progress_url
        self._builtin = self._environment([BUILTIN_DIR])
        self._env = (
            self._environment([template_dir, BUILTIN_DIR]) if template_dir else self._builtin
        )

    @classmethod
    def from_settings(cls, settings: NoticeSettings) -> Notices:
        notices = cls(
            settings.template_dir,
            timezone=settings.timezone,
            progress_url=str(settings.progress_url) if settings.progress_url else None,
        )
        notices.check()
        return notices

    @staticmethod
    def _environment(directories: Iterable[Path]) -> ImmutableSandboxedEnvironment:
        return ImmutableSandboxedEnvironment(
            loader=jinja2.FileSystemLoader([str(d) for d in directories], encoding="utf-8"),
            autoescape=False,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            auto_reload=False,
        )

    def check(self) -> None:
        """Compile every operator template, naming the first that does not compile."""
        if self.template_dir is None:
            return
        if not self.template_dir.is_dir():
            raise TemplateBroken(f"notices.template_dir {self.template_dir} is not a directory")
        for path in sorted(self.template_dir.rglob("*.txt")):
            try:
                self._env.parse(path.read_text(encoding="utf-8"))
            except (jinja2.TemplateSyntaxError, UnicodeDecodeError) as exc:
                line = getattr(exc, "lineno", None)
                where = f"{path}:{line}" if line else str(path)
                raise TemplateBroken(f"notice template {where} does not compile: {exc}") from None

    def render(
        self,
        event: str,
        ticket: Ticket,
        *,
        channel: str | None = None,
        language: str | None = None,
        **fields: Any,
    ) -> str:
        """The text of ``event`` for ``ticket`` on ``channel`` (default: the ticket's channel)
        in ``language`` (default: the ticket's, falling back to zh-CN).

        Raises ``NoticeFieldError`` for a missing required field or a field that is not plain
        data, ``TemplateMissing`` when no template fits.
        """
        if not _NAME.match(event):
            raise NoticeFieldError(f"{event!r} is not an event name (lower case, digits, _)")
        channel = channel if channel is not None else ticket.channel
        if channel is not None and not _CHANNEL.match(channel):
            channel = None  # not a name a directory could have; use the generic texts
        requested = language or ticket.language or DEFAULT_LANGUAGE
        found = self._find(self._env, event, requested, channel)
        context = self._context(event, ticket, found.language, fields)
        try:
            return _tidy(found.template.render(context))
        except jinja2.TemplateError as exc:
            if self._env is self._builtin:
                raise TemplateBroken(f"notice template {found.name} failed: {exc}") from exc
            # An operator's template that fails must not stop tickets being acknowledged:
            # say so loudly and send the built-in text instead.
            log.error("notice.template_failed", template=found.name, error=str(exc))
            try:
                fallback = self._find(self._builtin, event, requested, channel)
            except TemplateMissing:
                raise TemplateBroken(f"notice template {found.name} failed: {exc}") from exc
            context = self._context(event, ticket, fallback.language, fields)
            return _tidy(fallback.template.render(context))

    def _find(
        self,
        env: jinja2.Environment,
        event: str,
        requested: str,
        channel: str | None,
    ) -> _Found:
        tried: list[str] = []
        for language in language_chain(requested):
            names = ([f"{language}/{channel}/{event}.txt"] if channel else []) + [
                f"{language}/{event}.txt"
            ]
            for name in names:
                tried.append(name)
                try:
                    return _Found(env.get_template(name), language, name)
                except jinja2.TemplateNotFound:
                    continue
                except jinja2.TemplateSyntaxError as exc:
                    raise TemplateBroken(f"notice template {name} does not compile: {exc}") from exc
        raise TemplateMissing(event, language_chain(requested)[0], channel, tried)

    def _context(
        self, event: str, ticket: Ticket, language: str, fields: Mapping[str, Any]
    ) -> dict[str, Any]:
        context: dict[str, Any] = dict.fromkeys(OPTIONAL_FIELDS)
        context.update(
            number=ticket.number,
            kind=kind_text(ticket.kind, language),
            kind_code=str(ticket.kind),
            channel=ticket.channel,
            language=language,
            created_at=self._time(ticket.created_at, language),
            due_at=self._time(ticket.resolution_due_at, language),
            outcome=outcome_text(ticket.outcome, language) if ticket.outcome else None,
            outcome_code=str(ticket.outcome) if ticket.outcome else None,
            progress_url=self.progress_url,
        )
        for name, value in fields.items():
            if not _FIELD.match(name):
                raise NoticeFieldError(f"{name!r} is not a field name a template can use")
            if name == "outcome" and value is not None:
                context["outcome_code"] = str(_plain(name, value))
                context["outcome"] = outcome_text(str(_plain(name, value)), language)
            elif name == "kind" and value is not None:
                context["kind_code"] = str(_plain(name, value))
                context["kind"] = kind_text(str(_plain(name, value)), language)
            else:
                context[name] = self._field(name, value, language)
        missing = [name for name in EVENTS.get(event, ()) if context.get(name) in (None, "")]
        if missing:
            raise NoticeFieldError(
                f"notice {event!r} for ticket {ticket.number} needs {', '.join(missing)}"
            )
        return context

    def _time(self, value: datetime | None, language: str) -> LocalTime | None:
        return local_time(value, language, self.zone) if value is not None else None

    def _field(self, name: str, value: Any, language: str) -> Any:
        if isinstance(value, datetime):
            return self._time(value, language)
        if isinstance(value, list | tuple):
            return tuple(self._field(name, item, language) for item in value)
        return _plain(name, value)


def _plain(name: str, value: Any) -> Any:
    """The value if it is plain data a template may see, text cleaned; else an error, so an
    object with internal fields (a ticket, a message) can never reach a template."""
    if value is None or isinstance(value, bool | int | float | date | timedelta | LocalTime):
        return value
    if isinstance(value, Enum):
        return clean_text(str(value.value))
    if isinstance(value, str):
        return clean_text(value)
    raise NoticeFieldError(
        f"field {name!r} is a {type(value).__name__}; pass text, numbers or times only"
    )


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.strip().split("\n")]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines))
