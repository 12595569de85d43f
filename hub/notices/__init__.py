"""Texts the hub sends customers on its own: acknowledgement, progress, survey, closing.

Every notice is a Jinja2 template per event and language (zh-CN and en built in), optionally
per channel (an SMS needs shorter text than an app); operators override any of them from
``[notices] template_dir``. See ``hub.notices.renderer`` for the lookup order and for what a
template can and cannot see (never internal notes: the renderer only receives what its caller
passes).

Each process renders with one configuration: ``configure`` (called when a ``Hub`` is built)
installs it, and ``render`` uses it. Until then the built-in templates are used with the
default settings.
"""

from __future__ import annotations

from typing import Any

from hub.notices.renderer import (
    EVENTS,
    NoticeError,
    NoticeFieldError,
    Notices,
    TemplateBroken,
    TemplateMissing,
    clean_text,
)
from hub.notices.wording import LocalTime, language_chain, public_status, status_text
from hub.settings import NoticeSettings
from ticket_core import Ticket

_current = Notices()


def configure(settings: NoticeSettings) -> Notices:
    """Use these settings for every notice this process renders; returns the renderer.

    Raises ``TemplateBroken`` naming the first operator template that does not compile.
    """
    global _current
    _current = Notices.from_settings(settings)
    return _current


def current() -> Notices:
    """The renderer ``render`` uses (for callers that need its time zone or progress URL)."""
    return _current


def render(
    event: str,
    ticket: Ticket,
    *,
    channel: str | None = None,
    language: str | None = None,
    **fields: Any,
) -> str:
    """The customer text of ``event`` for ``ticket``; see ``Notices.render``."""
    return _current.render(event, ticket, channel=channel, language=language, **fields)


__all__ = [
    "EVENTS",
    "LocalTime",
    "NoticeError",
    "NoticeFieldError",
    "Notices",
    "TemplateBroken",
    "TemplateMissing",
    "clean_text",
    "configure",
    "current",
    "language_chain",
    "public_status",
    "render",
    "status_text",
]
