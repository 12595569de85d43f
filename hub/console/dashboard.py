"""The dashboard page and its CSV downloads (supervisors, admins and auditors)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from hub.auth import Role
from hub.console.figures import (
    FIGURES,
    GROUPINGS,
    RangeError,
    default_range,
    figures_for,
    parse_range,
    today_in,
)
from hub.console.rendering import SECURITY_HEADERS, language_of, render
from hub.console.sessions import ConsoleRefusal, Staff, staff_only
from hub.console.words import words_for
from hub.runtime import Hub

router = APIRouter()
Viewer = Annotated[Staff, Depends(staff_only(Role.supervisor, Role.admin, Role.auditor))]


@router.get("/dashboard", include_in_schema=False)
async def dashboard(request: Request, staff: Viewer) -> Response:
    hub: Hub = request.app.state.hub
    today, zone = today_in(hub)
    notice: tuple[str, str] | None = None
    try:
        span = parse_range(request.query_params, today, zone)
    except RangeError as error:
        span, notice = default_range(today), ("error", str(error))
    figures = await figures_for(hub, span)
    return render(
        request,
        staff,
        "dashboard.html",
        status=422 if notice else 200,
        active="dashboard",
        dates=span,
        groupings=[g.value for g in GROUPINGS],
        figures=figures,
        notice=notice,
        timezone=hub.settings.reports.timezone,
    )


@router.get("/dashboard.csv", include_in_schema=False)
async def dashboard_csv(request: Request, staff: Viewer) -> Response:
    """One figure's numbers, for a spreadsheet; the same ``from``, ``to`` and ``group``."""
    hub: Hub = request.app.state.hub
    today, zone = today_in(hub)
    dataset = request.query_params.get("dataset", "")
    try:
        if dataset not in FIGURES:
            raise RangeError("dash.error.dataset")
        span = parse_range(request.query_params, today, zone)
    except RangeError as error:
        words = words_for(language_of(request, staff))
        raise ConsoleRefusal(422, words.get(str(error), str(error)), staff) from None
    grid = (await figures_for(hub, span, dataset))[dataset]
    filename = f"tongdao-{dataset}-{span.first}-{span.last}-{span.grouping.value}.csv"
    return Response(
        grid.as_csv(),
        media_type="text/csv; charset=utf-8",
        headers=SECURITY_HEADERS | {"content-disposition": f'attachment; filename="{filename}"'},
    )
