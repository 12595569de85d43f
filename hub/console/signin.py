"""Signing in and out, and the viewer's language."""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta
from typing import Annotated

import structlog
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import select

from hub.console.accounts import SignInRefused, sign_in
from hub.console.rendering import render
from hub.console.sessions import COOKIE, Anyone, close_session, open_session
from hub.ratelimit import SlidingWindow, client_key
from hub.runtime import Hub
from hub.store import StaffAccount

router = APIRouter()
log = structlog.get_logger("hub.console")
_LOGIN_COOKIE = "tongdao_login"


def _safe_next(value: str | None) -> str:
    """Only the console's own pages: an open redirect would make the sign-in page a phish."""
    if value and value.startswith("/console/") and "//" not in value and "\\" not in value:
        return value
    return "/console/"


def _login_page(request: Request, *, error: str | None = None, status: int = 200) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(
        request,
        None,
        "login.html",
        status=status,
        error=error,
        login_token=token,
        next=_safe_next(request.query_params.get("next")),
    )
    _set_cookie(request, response, _LOGIN_COOKIE, token, max_age=3600)
    return response


def _set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=request.app.state.hub.settings.console.secure_cookie,
    )


@router.get("/login", include_in_schema=False)
async def login_form(request: Request) -> Response:
    return _login_page(request)


@router.post("/login", include_in_schema=False)
async def login(
    request: Request,
    username: Annotated[str, Form(max_length=120)],
    password: Annotated[str, Form(max_length=1024)],
    login_token: Annotated[str, Form(max_length=100)],
    next: Annotated[str, Form(max_length=500)] = "/console/",
) -> Response:
    cookie = request.cookies.get(_LOGIN_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), login_token.encode()):
        return _login_page(request, error="login.expired", status=403)
    hub: Hub = request.app.state.hub
    settings = hub.settings.console
    now = hub.clock.now()
    # Lock-out guards an account; this guards the hub from a flood of guesses at any name.
    attempts: SlidingWindow = request.app.state.console_sign_ins
    client = client_key(request.client.host if request.client else None)
    if attempts.retry_after(client, now) > 0:
        log.warning("console.sign_in_throttled", client=client)
        return _login_page(request, error="login.throttled", status=429)
    attempts.hit(client, now)
    async with hub.sessions() as session, session.begin():
        try:
            account = await sign_in(
                session,
                username.strip(),
                password,
                now,
                failures_to_lock=settings.lockout_failures,
                lock_for=timedelta(minutes=settings.lockout_minutes),
            )
        except SignInRefused as refused:
            refusal = refused
        else:
            refusal = None
            token = await open_session(session, account, hub)
    if refusal is not None:
        # What was typed as a name may be a password: it is logged only for a real account.
        named = username.strip()[:120] if refusal.reason != "invalid" else None
        log.warning("console.sign_in_refused", username=named, client=client, reason=refusal.reason)
        return _login_page(request, error=f"login.{refusal.reason}", status=401)
    log.info("console.signed_in", username=account.username, role=account.role)
    response = RedirectResponse(_safe_next(next), status_code=303)
    _set_cookie(request, response, COOKIE, token, max_age=int(settings.session_hours * 3600))
    response.delete_cookie(_LOGIN_COOKIE, path="/console")
    return response


@router.post("/logout", include_in_schema=False)
async def logout(request: Request, staff: Anyone) -> Response:
    await close_session(request.app.state.hub, staff)
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(COOKIE, path="/console")
    return response


@router.post("/language", include_in_schema=False)
async def language(
    request: Request,
    staff: Anyone,
    lang: Annotated[str, Form(pattern="^(zh-CN|en)$")],
    back: Annotated[str, Form(max_length=500)] = "/console/",
) -> Response:
    hub: Hub = request.app.state.hub
    async with hub.sessions() as session, session.begin():
        account = (
            await session.exec(select(StaffAccount).where(StaffAccount.id == staff.account_id))
        ).one()
        account.language = lang
        session.add(account)
    return RedirectResponse(_safe_next(back), status_code=303)
