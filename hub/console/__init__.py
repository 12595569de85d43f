"""The agent console at ``/console``: server-rendered pages (Jinja2) made live with htmx,
every asset served from here. ``install`` adds it to the app."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from hub.console import dashboard, oversight, queue, signin, ticket_page
from hub.console.rendering import render
from hub.console.sessions import ConsoleRefusal, current_staff
from hub.ratelimit import SlidingWindow

__all__ = ["install"]


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConsoleRefusal)
    if exc.status == 401:
        target = _sign_in_address(request)
        if request.headers.get("hx-request"):
            return Response(status_code=204, headers={"hx-redirect": target})
        return RedirectResponse(target, status_code=303)
    template = "_refusal.html" if request.headers.get("hx-request") else "refused.html"
    return render(request, exc.staff, template, status=exc.status, message=exc.message)


async def _invalid(request: Request, exc: Exception) -> Response:
    """A console form or address that does not validate gets a page naming the field, not
    the API's JSON; every other path keeps FastAPI's answer."""
    assert isinstance(exc, RequestValidationError)
    if not request.url.path.startswith("/console"):
        return await request_validation_exception_handler(request, exc)
    problems = "; ".join(
        f"{'.'.join(str(p) for p in error['loc'][1:]) or 'request'}: {error['msg']}"
        for error in exc.errors()
    )
    staff = await current_staff(request)
    if staff is None:
        return RedirectResponse(_sign_in_address(request), status_code=303)
    template = "_refusal.html" if request.headers.get("hx-request") else "refused.html"
    return render(request, staff, template, status=422, message=problems)


def _sign_in_address(request: Request) -> str:
    """Back to where the person was, filters and all, once signed in."""
    back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/console/login?{urlencode({'next': back})}"


def install(app: FastAPI) -> None:
    settings = app.state.hub.settings.console
    app.state.console_sign_ins = SlidingWindow(settings.sign_ins_per_minute, timedelta(minutes=1))
    for module in (signin, queue, ticket_page, oversight, dashboard):
        app.include_router(module.router, prefix="/console")
    static = Path(__file__).parent / "static"
    app.mount("/console/static", StaticFiles(directory=static), name="console-static")
    app.add_exception_handler(ConsoleRefusal, _refused)
    app.add_exception_handler(RequestValidationError, _invalid)

    @app.get("/console", include_in_schema=False)
    async def console_root() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=307)
