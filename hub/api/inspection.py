"""Inspections and regulatory reporting: verify the audit trail, export a ticket's whole
history, and statistics by period, kind, channel, business category and cause."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from hub import inspection
from hub.api.dependencies import hub_of
from hub.auth import Principal, Role, require
from ticket_core import TicketNotFound
from ticket_core.reports import DEFAULT_DIMENSIONS, Dimension, Grouping, ReportError

router = APIRouter(prefix="/api/v1", tags=["inspection"])

TICKET_PATTERN = r"^[A-Z]{2,6}-\d{8}-\d{6,12}$"
TicketNumber = Annotated[str, Path(pattern=TICKET_PATTERN)]
Auditor = Annotated[Principal, Depends(require(Role.auditor, Role.admin))]
Inspector = Annotated[Principal, Depends(require(Role.auditor, Role.supervisor, Role.admin))]


class ProblemOut(BaseModel):
    ticket: str | None = Field(description="the ticket's number; null for an orphaned event")
    event_id: int | None = Field(description="the event concerned; null for the ticket's head")
    kind: Literal["edited", "out_of_place", "head_mismatch", "orphaned"]
    detail: str = Field(description="what was found and what it suggests")


class VerificationOut(BaseModel):
    ok: bool
    ticket: str | None = Field(description="the ticket verified, or null for all")
    tickets_checked: int
    events_checked: int
    problem_count: int
    problems: list[ProblemOut] = Field(description="the first 1000 problems")
    problems_truncated: bool


@router.get(
    "/audit/verify",
    response_model=VerificationOut,
    summary="Verify the hash-chained audit trail of one ticket or of all",
    responses={404: {"description": "no such ticket"}},
)
async def verify_audit(
    request: Request,
    _: Auditor,
    ticket: Annotated[str | None, Query(pattern=TICKET_PATTERN)] = None,
) -> VerificationOut:
    """Every event's hash is recomputed and every link followed up to the ticket's head;
    `ok` is false when any event was edited, removed, reordered or inserted. Without
    `ticket` the whole store is streamed, which takes time on a large database (the CLI's
    `tongdao audit verify` does the same without an HTTP timeout)."""
    try:
        result = await inspection.verify_audit(hub_of(request), ticket)
    except TicketNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    return VerificationOut.model_validate(result.as_dict())


@router.get(
    "/tickets/{number}/export",
    summary="The ticket's whole history as one document, for an inspection",
    responses={
        200: {"description": "the export document (format `tongdao.ticket-export/1`)"},
        404: {"description": "no such ticket"},
    },
)
async def export_ticket(number: TicketNumber, request: Request, who: Inspector) -> JSONResponse:
    """Ticket, customer (masked), every message with internal notes and delivery states,
    attachment metadata, SLA clocks, the audit chain with hashes and its verification. The
    export is recorded on the ticket as a `ticket.exported` audit event, included in the
    document it produces."""
    try:
        document = await inspection.export_ticket(hub_of(request), number, actor=who.actor)
    except TicketNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    return JSONResponse(
        document,
        headers={"content-disposition": f'attachment; filename="{number}-export.json"'},
    )


@router.get(
    "/reports/statistics",
    summary="Regulatory statistics by period: received, decided, SLA attainment",
    responses={
        200: {
            "description": "JSON, or CSV with `format=csv`",
            "content": {"text/csv": {}},
        },
        422: {"description": "a parameter is wrong; `detail` names it"},
    },
)
async def statistics(
    request: Request,
    _: Inspector,
    first: Annotated[date, Query(alias="from", description="first day, e.g. 2026-11-01")],
    last: Annotated[date, Query(alias="to", description="last day, included")],
    group: Annotated[Grouping, Query(description="length of each period")] = Grouping.month,
    by: Annotated[
        list[Dimension] | None,
        Query(description="break down by these (repeat); default all but channel_code"),
    ] = None,
    tz: Annotated[
        str | None,
        Query(max_length=64, description="IANA time zone; default reports.timezone"),
    ] = None,
    output: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
) -> Any:
    """Tickets received in each period (a cohort), by kind, channel, business category and
    cause (JR/T 0169 codes, with the operator's labels), with first-response and resolution
    attainment and the share decided in time, as of now (see docs/operators.md)."""
    try:
        report = await inspection.statistics(
            hub_of(request),
            first,
            last,
            grouping=group,
            dimensions=by if by is not None else DEFAULT_DIMENSIONS,
            timezone=tz,
        )
    except ReportError as exc:
        raise HTTPException(422, str(exc)) from None
    if output == "csv":
        filename = f"statistics-{first}-{last}-{group.value}.csv"
        # With a byte-order mark, so spreadsheet programs read the Chinese text as UTF-8.
        return Response(
            report.as_csv().encode("utf-8-sig"),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{filename}"'},
        )
    return JSONResponse(report.as_json())
