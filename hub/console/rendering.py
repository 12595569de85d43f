"""Pages: one Jinja2 environment, the words of the viewer's language, and the headers that
keep the console to its own server (no asset, script or frame from anywhere else)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from hub.console.sessions import CSRF_FIELD, Staff
from hub.console.words import Language, words_for
from normalizer.pii import mask_pii

_env = Environment(
    loader=PackageLoader("hub.console", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["mask"] = lambda value: mask_pii(str(value))

SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


def language_of(request: Request, staff: Staff | None) -> Language:
    if staff is not None and staff.language in ("zh-CN", "en"):
        return staff.language  # type: ignore[return-value]
    wanted = request.query_params.get("lang") or request.cookies.get("tongdao_lang") or ""
    if wanted in ("zh-CN", "en"):
        return wanted  # type: ignore[return-value]
    accept = request.headers.get("accept-language", "")
    return "en" if accept.lower().startswith("en") else "zh-CN"


def _local_time(zone: ZoneInfo) -> Any:
    def format_time(value: datetime | None, pattern: str = "%Y-%m-%d %H:%M") -> str:
        return value.astimezone(zone).strftime(pattern) if value is not None else ""

    return format_time


def _span(t: Any) -> Any:
    def format_span(delta: timedelta) -> str:
        seconds = int(delta.total_seconds())
        sign = "-" if seconds < 0 else ""
        seconds = abs(seconds)
        days, rest = divmod(seconds, 86400)
        hours, rest = divmod(rest, 3600)
        minutes = rest // 60
        if days:
            return f"{sign}{days}{t('unit.d')} {hours}{t('unit.h')}"
        if hours:
            return f"{sign}{hours}{t('unit.h')} {minutes}{t('unit.min')}"
        return f"{sign}{minutes}{t('unit.min')}"

    return format_span


def render(
    request: Request,
    staff: Staff | None,
    template: str,
    *,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    hub = request.app.state.hub
    language = language_of(request, staff)
    table = words_for(language)

    def t(key: str, **values: Any) -> str:
        # An unnamed value (a status, a channel) reads as itself.
        text = table.get(key) or words_for("en").get(key) or key.rpartition(".")[2]
        return text.format(**values) if values else text

    zone = ZoneInfo(hub.settings.reports.timezone)
    html = _env.get_template(template).render(
        request=request,
        staff=staff,
        t=t,
        lang=language,
        local=_local_time(zone),
        span=_span(t),
        now=hub.clock.now(),
        csrf_field=CSRF_FIELD,
        refresh=hub.settings.console.refresh_seconds,
        **context,
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
