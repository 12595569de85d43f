"""Structured logs (JSON in production) that never carry personal data in clear."""

from __future__ import annotations

import logging
import re
from collections.abc import MutableMapping
from typing import Any

import structlog

REDACTED_KEYS = frozenset(
    {
        "phone",
        "name",
        "text",
        "user_id",
        "id_number",
        "email",
        "address",
        "body",
        "recipient",
        "secret",
        "key",
        "authorization",
        "openid",
        "unionid",
    }
)
_PHONE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])(\d{6})\d{8}(\d{3}[\dXx])(?![0-9A-Za-z])")
_CARD = re.compile(r"(?<!\d)(\d{4})(?:[ -]?\d){8,11}([ -]?\d{4})(?!\d)")
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*(@[A-Za-z0-9.-]+)")


def redact_text(text: str) -> str:
    """Mask personal data that free text may carry: id and card numbers, phones, emails."""
    text = _ID_NUMBER.sub(r"\1********\2", text)
    text = _CARD.sub(r"\1 **** \2", text)
    text = _PHONE.sub(r"\1****\2", text)
    return _EMAIL.sub(r"\1***\2", text)


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if key in REDACTED_KEYS:
            event[key] = "[redacted]"
        elif isinstance(event[key], str):
            event[key] = redact_text(event[key])
    return event


def configure(level: str = "INFO", json_format: bool = False) -> None:
    logging.basicConfig(level=level.upper(), format="%(message)s")
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json_format
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=True,
    )
