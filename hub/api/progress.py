"""Public progress lookup: ``POST /api/v1/progress`` (JSON) and the page at ``/progress``.

No API key: the ticket number and the verification code from the acknowledgement are the
credential (``hub.progress_lookup`` says how the door is kept shut). Both are sent in a POST
body, never in the URL, so they do not end up in access logs, proxies or browser history.
The page is self-contained (no external assets, inline CSS only) and escapes everything it
shows; responses are ``no-store`` and may not be framed.

For cases from the web channel the page also takes what the customer adds and, once
resolved, a rating (``/progress/messages``, ``/progress/rating``): number and code are checked
again, and the web connector turns the text into an envelope from the contact it confirmed
when the ticket opened, so it threads onto the ticket like any message (docs/channels/web.md).
"""

from __future__ import annotations

import math
import secrets
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import jinja2
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from hub import notices
from hub.notices.wording import kind_text, local_time, outcome_text, status_text
from hub.progress_lookup import Limited, ProgressLookup, PublicTicket
from hub.ratelimit import retry_after_header

router = APIRouter(tags=["progress"])

NOT_FOUND = "no ticket matches this number and verification code"
PAGE_BODY_LIMIT = 4096
"""Bodies the public endpoints accept (the guard refuses larger ones before they are read)."""
FOLLOWUP_BODY_LIMIT = 32 * 1024
"""A follow-up is up to ``FOLLOWUP_MAX`` characters, urlencoded (a CJK character is 9 bytes)."""
FOLLOWUP_MAX = 2000
PUBLIC_PATHS = {
    "/api/v1/progress": PAGE_BODY_LIMIT,
    "/progress": PAGE_BODY_LIMIT,
    "/progress/messages": FOLLOWUP_BODY_LIMIT,
    "/progress/rating": PAGE_BODY_LIMIT,
}

_NO_STORE = {"cache-control": "no-store", "referrer-policy": "no-referrer"}
_PAGE_HEADERS = {
    **_NO_STORE,
    "content-security-policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
}
_pages = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
)


def lookup_of(request: Request) -> ProgressLookup:
    return request.app.state.progress_lookup


def _client(request: Request) -> str | None:
    # Behind a reverse proxy uvicorn has already put the forwarded client address here, for
    # proxies listed in FORWARDED_ALLOW_IPS (see docs/operators.md).
    return request.client.host if request.client else None


# --- JSON --------------------------------------------------------------------------------------


class ProgressQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    number: str = Field(min_length=1, max_length=40, examples=["TD-20261123-000001"])
    code: str = Field(min_length=1, max_length=40, examples=["K7QM3ZTA"])


class TimelineOut(BaseModel):
    at: datetime
    sender: Literal["customer", "bank"]
    channel: str
    text: str = Field(description="personal numbers (phone, id, card) are masked")


class ProgressOut(BaseModel):
    number: str
    kind: str = Field(description="consultation, complaint or suggestion")
    kind_text: str
    status: Literal["received", "in_progress", "waiting_for_customer", "resolved", "closed"]
    status_text: str = Field(description="the status in the ticket's language")
    language: str
    created_at: datetime
    due_at: datetime | None = Field(description="when we will answer; absent once resolved")
    outcome: str | None = Field(description="set once resolved")
    outcome_text: str | None
    timeline: list[TimelineOut] = Field(description="messages exchanged, oldest first")
    timeline_complete: bool = Field(description="false when only the newest are shown")

    @classmethod
    def of(cls, view: PublicTicket) -> ProgressOut:
        language = view.language
        return cls(
            number=view.number,
            kind=view.kind,
            kind_text=kind_text(view.kind, language),
            status=view.status,
            status_text=status_text(view.status, language),
            language=language,
            created_at=view.created_at,
            due_at=view.due_at,
            outcome=view.outcome,
            outcome_text=outcome_text(view.outcome, language) if view.outcome else None,
            timeline=[
                TimelineOut(at=e.at, sender=e.sender, channel=e.channel, text=e.text)
                for e in view.timeline
            ],
            timeline_complete=view.timeline_complete,
        )


class Problem(BaseModel):
    detail: str


@router.post(
    "/api/v1/progress",
    response_model=ProgressOut,
    summary="A customer's view of their ticket (no API key: number and verification code)",
    responses={
        404: {"model": Problem, "description": "unknown number or wrong code (one answer)"},
        429: {"model": Problem, "description": "too many attempts; see Retry-After"},
    },
)
async def progress_api(body: ProgressQuery, request: Request) -> Response:
    found = await lookup_of(request).lookup(_client(request), body.number, body.code)
    if isinstance(found, Limited):
        return JSONResponse(
            {"detail": _too_many_en(found.retry_after)},
            status_code=429,
            headers={**_NO_STORE, "retry-after": retry_after_header(found.retry_after)},
        )
    if found is None:
        return JSONResponse({"detail": NOT_FOUND}, status_code=404, headers=_NO_STORE)
    return JSONResponse(ProgressOut.of(found).model_dump(mode="json"), headers=_NO_STORE)


def _too_many_en(seconds: float) -> str:
    return f"too many attempts; try again in {retry_after_header(seconds)} seconds"


# --- the page ----------------------------------------------------------------------------------

PageLanguage = Literal["zh-CN", "en"]

_WORDS: dict[str, dict[str, str]] = {
    "zh-CN": {
        "title": "工单进度查询",
        "intro": "请输入工单号和受理通知中的查询码。",
        "number": "工单号",
        "code": "查询码",
        "submit": "查询",
        "not_found": "未找到与该工单号和查询码相符的工单，请核对后重试。",
        "too_many": "尝试次数过多，请在 {minutes} 分钟后再试。",
        "kind": "类型",
        "status": "状态",
        "created": "受理时间",
        "due": "预计答复时间",
        "outcome": "处理结果",
        "timeline": "往来消息",
        "customer": "您",
        "bank": "本行",
        "older": "仅显示最近的消息。",
        "other": "English",
        "steps": "办理进程",
        "step.received": "已受理",
        "step.assigned": "已分派专人处理",
        "step.in_progress": "处理中",
        "step.waiting_for_customer": "待您补充",
        "step.resolved": "已办结",
        "step.closed": "已结案",
        "add": "补充信息",
        "add.hint": "补充说明或材料线索（最多 2000 字），我们会附在此工单上。",
        "add.submit": "提交补充",
        "add.done": "已收到您的补充信息，稍后将显示在往来消息中。",
        "add.empty": "请填写补充内容。",
        "add.other_channel": "如需补充信息，请通过您提交此工单时使用的渠道回复。",
        "rate": "满意度评价",
        "rate.hint": "请为本次处理打分（1 = 非常不满意，5 = 非常满意）。",
        "rate.submit": "提交评价",
        "rate.done": "感谢您的评价。",
        "rated": "您已评价：{answer}",
        "satisfied": "满意",
        "unsatisfied": "不满意",
        "further": "如对处理结果不满意",
        "further.review": (
            "您可以申请由本行上级机构（消费者权益保护部门）复核，请联系客服或回复本工单说明理由。"
        ),
        "further.regulator": "您也可以拨打国家金融监督管理总局金融消费者投诉服务热线 12378 反映。",
    },
    "en": {
        "title": "Ticket progress",
        "intro": "Enter your ticket number and the progress code from our acknowledgement.",
        "number": "Ticket number",
        "code": "Progress code",
        "submit": "Look up",
        "not_found": "No ticket matches this number and code. Please check both and try again.",
        "too_many": "Too many attempts. Please try again in {minutes} minutes.",
        "kind": "Type",
        "status": "Status",
        "created": "Received",
        "due": "We will answer by",
        "outcome": "Outcome",
        "timeline": "Messages",
        "customer": "You",
        "bank": "Us",
        "older": "Only the most recent messages are shown.",
        "other": "中文",
        "steps": "Progress",
        "step.received": "Received",
        "step.assigned": "Assigned to a case handler",
        "step.in_progress": "In progress",
        "step.waiting_for_customer": "Waiting for you",
        "step.resolved": "Decided",
        "step.closed": "Closed",
        "add": "Add information",
        "add.hint": (
            "Anything more we should know (at most 2000 characters); we add it to this case."
        ),
        "add.submit": "Send",
        "add.done": "We have your information; it will show among the messages shortly.",
        "add.empty": "Please write what you want to add.",
        "add.other_channel": "To add information, reply on the channel you used to contact us.",
        "rate": "Rate how we handled it",
        "rate.hint": "From 1 (very dissatisfied) to 5 (very satisfied).",
        "rate.submit": "Send rating",
        "rate.done": "Thank you for your rating.",
        "rated": "Your rating: {answer}",
        "satisfied": "satisfied",
        "unsatisfied": "dissatisfied",
        "further": "If you disagree with the outcome",
        "further.review": (
            "You may ask for a review by our superior body (the consumer protection "
            "department): contact customer service or reply on this case with your reasons."
        ),
        "further.regulator": (
            "You may also call the financial regulator's consumer complaint hotline, 12378."
        ),
    },
}


def _page(
    language: PageLanguage,
    *,
    status_code: int = 200,
    number: str = "",
    error: str | None = None,
    view: PublicTicket | None = None,
    headers: dict[str, str] | None = None,
    code: str = "",
    can_follow_up: bool = False,
    notice: str | None = None,
    field_error: str | None = None,
) -> HTMLResponse:
    words = _WORDS[language]
    zone = notices.current().zone
    shown = None
    if view is not None:
        shown = {
            "number": view.number,
            "kind": kind_text(view.kind, language),
            "status": status_text(view.status, language),
            "created": local_time(view.created_at, language, zone).long,
            "due": local_time(view.due_at, language, zone).long if view.due_at else None,
            "outcome": outcome_text(view.outcome, language) if view.outcome else None,
            "timeline": [
                {
                    "sender": e.sender,
                    "who": words[e.sender],
                    "at": local_time(e.at, language, zone).long,
                    "text": e.text,
                }
                for e in view.timeline
            ],
            "complete": view.timeline_complete,
            "public_status": view.status,
            "steps": [
                {"text": words[f"step.{m.step}"], "at": local_time(m.at, language, zone).long}
                for m in view.milestones
                if f"step.{m.step}" in words
            ],
            "rated": words["rated"].format(answer=words[view.satisfaction])
            if view.satisfaction in ("satisfied", "unsatisfied")
            else None,
        }
    html = _pages.get_template("progress.html").render(
        lang=language,
        other_lang="en" if language == "zh-CN" else "zh-CN",
        words=words,
        number=number,
        error=error,
        view=shown,
        code=code,
        can_follow_up=can_follow_up,
        notice=notice,
        field_error=field_error,
        nonce=secrets.token_urlsafe(16),
        followup_max=FOLLOWUP_MAX,
    )
    return HTMLResponse(html, status_code=status_code, headers={**_PAGE_HEADERS, **(headers or {})})


def _language(value: str | None) -> PageLanguage:
    return "en" if (value or "").lower().startswith("en") else "zh-CN"


@router.get("/progress", response_class=HTMLResponse, include_in_schema=False)
async def progress_form(lang: Annotated[str | None, Query(max_length=10)] = None) -> HTMLResponse:
    return _page(_language(lang))


@router.post("/progress", response_class=HTMLResponse, include_in_schema=False)
async def progress_page(request: Request) -> HTMLResponse:
    form = await request.form(max_files=0, max_fields=5)
    fields = {
        name: value if isinstance(value, str) else ""
        for name in ("number", "code", "lang")
        for value in [form.get(name, "")]
    }
    language = _language(fields["lang"])
    number, code = fields["number"][:40], fields["code"][:40]
    words = _WORDS[language]
    if not number.strip() or not code.strip():
        return _page(language, status_code=422, number=number, error=words["not_found"])
    found = await lookup_of(request).lookup(_client(request), number, code)
    if isinstance(found, Limited):
        minutes = max(1, math.ceil(found.retry_after / 60))
        return _page(
            language,
            status_code=429,
            number=number,
            error=words["too_many"].format(minutes=minutes),
            headers={"retry-after": retry_after_header(found.retry_after)},
        )
    if found is None:
        return _page(language, status_code=404, number=number, error=words["not_found"])
    return _page(
        language,
        number=found.number,
        view=found,
        code=code,
        can_follow_up=_web_of(request) is not None and found.channel == "web",
    )


# --- follow-ups and rating from the page -------------------------------------------------------


def _web_of(request: Request) -> Any | None:
    """The web connector when it is enabled: it owns the envelopes a customer's follow-ups
    become (``WebConnector.followup_envelope``), so they thread onto the ticket like any
    message of that channel."""
    connector = request.app.state.hub.registry.get("web")
    return connector if hasattr(connector, "followup_envelope") else None


async def _followup(request: Request, kind: Literal["text", "score"]) -> HTMLResponse:
    """Re-check number and code (the attempt counts against the lookup's limits), then store
    what the customer added as a web envelope; a worker threads it onto the ticket. The
    ``nonce`` from the rendered form is the envelope's id, so a double submit stores once."""
    form = await request.form(max_files=0, max_fields=8)
    fields = {
        name: value if isinstance(value, str) else ""
        for name in ("number", "code", "lang", "nonce", "text", "score")
        for value in [form.get(name, "")]
    }
    language = _language(fields["lang"])
    words = _WORDS[language]
    number, code = fields["number"][:40], fields["code"][:40]
    found = await lookup_of(request).lookup(_client(request), number, code)
    if isinstance(found, Limited):
        return _page(
            language,
            status_code=429,
            number=number,
            error=words["too_many"].format(minutes=max(1, math.ceil(found.retry_after / 60))),
            headers={"retry-after": retry_after_header(found.retry_after)},
        )
    if found is None:
        return _page(language, status_code=404, number=number, error=words["not_found"])
    web = _web_of(request)

    def again(
        status: int, notice: str | None = None, field_error: str | None = None
    ) -> HTMLResponse:
        return _page(
            language,
            status_code=status,
            number=found.number,
            view=found,
            code=code,
            can_follow_up=web is not None and found.channel == "web",
            notice=notice,
            field_error=field_error,
        )

    if web is None or found.channel != "web":
        return again(409, field_error=words["add.other_channel"])
    text: str | None = None
    score: int | None = None
    if kind == "text":
        text = fields["text"].replace("\r\n", "\n").strip()
        if not text:
            return again(422, field_error=words["add.empty"])
        text = text[:FOLLOWUP_MAX]
        if found.status == "closed":
            return again(409, field_error=words["add.other_channel"])
    else:
        if fields["score"] not in ("1", "2", "3", "4", "5") or found.status != "resolved":
            return again(422, field_error=words["rate.hint"])
        score = int(fields["score"])
    nonce = fields["nonce"][:40] or secrets.token_urlsafe(16)
    _, reply_to = await lookup_of(request).reply_address(found.number)
    envelope = web.followup_envelope(
        ticket_number=found.number,
        reply_to=reply_to,
        nonce=nonce,
        text=text,
        score=score,
        received_at=request.app.state.hub.clock.now(),
    )
    if envelope is None:
        return again(409, field_error=words["add.other_channel"])
    await request.app.state.hub.envelopes.accept(envelope)
    return again(200, notice=words["add.done" if kind == "text" else "rate.done"])


@router.post("/progress/messages", response_class=HTMLResponse, include_in_schema=False)
async def progress_add(request: Request) -> HTMLResponse:
    return await _followup(request, "text")


@router.post("/progress/rating", response_class=HTMLResponse, include_in_schema=False)
async def progress_rate(request: Request) -> HTMLResponse:
    return await _followup(request, "score")
