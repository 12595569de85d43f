"""Receipts for pushes, and the operator's view of envelopes, the outbox and connectors."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from sqlmodel import col, select

from hub import outbox
from hub.api.schemas import EnvelopeOut, OutboxOut, ReceiptOut
from hub.auth import Principal, Role, require
from hub.runtime import Hub
from hub.store import Envelope, EnvelopeStatus, OutboxRow, OutboxStatus

router = APIRouter(prefix="/api/v1", tags=["operations"])

Reader = Annotated[Principal, Depends(require(*Role))]
Admin = Annotated[Principal, Depends(require(Role.admin))]
Operator = Annotated[Principal, Depends(require(Role.admin, Role.integrator))]


def _hub(request: Request) -> Hub:
    return request.app.state.hub


@router.get(
    "/receipts/{receipt}",
    response_model=ReceiptOut,
    tags=["channels"],
    summary="What became of a pushed message",
)
async def read_receipt(receipt: str, request: Request, _: Reader) -> ReceiptOut:
    async with _hub(request).sessions() as session:
        row = (await session.exec(select(Envelope).where(Envelope.receipt == receipt))).first()
    if row is None:
        raise HTTPException(404, f"no receipt {receipt!r}")
    status = {"processed": "processed", "failed": "failed"}.get(row.status, "pending")
    return ReceiptOut(
        receipt=row.receipt,
        status=status,
        ticket_number=row.ticket_number,  # type: ignore[arg-type]
        error=row.last_error if status == "failed" else None,
    )


@router.get("/envelopes", response_model=list[EnvelopeOut], summary="Stored inbound envelopes")
async def list_envelopes(
    request: Request,
    _: Operator,
    status: Annotated[EnvelopeStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[EnvelopeOut]:
    query = select(Envelope).order_by(col(Envelope.id).desc()).limit(limit)
    if status is not None:
        query = query.where(Envelope.status == status)
    async with _hub(request).sessions() as session:
        rows = (await session.exec(query)).all()
    return [EnvelopeOut.model_validate(r, from_attributes=True) for r in rows]


@router.post(
    "/envelopes/{envelope_id}/retry",
    response_model=EnvelopeOut,
    summary="Process a failed envelope again now, with a fresh retry budget",
)
async def retry_envelope(envelope_id: int, request: Request, _: Admin) -> EnvelopeOut:
    hub = _hub(request)
    async with hub.sessions() as session, session.begin():
        row = await session.get(Envelope, envelope_id)
        if row is None:
            raise HTTPException(404, f"no envelope {envelope_id}")
        if row.status == EnvelopeStatus.processed:
            raise HTTPException(409, f"envelope {envelope_id} is already processed")
        row.attempts = 0
        row.next_attempt_at = hub.clock.now()
        session.add(row)
    hub.wake.set()
    return EnvelopeOut.model_validate(row, from_attributes=True)


@router.get("/outbox", response_model=list[OutboxOut], summary="Outbound deliveries")
async def list_outbox(
    request: Request,
    _: Operator,
    status: Annotated[OutboxStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[OutboxOut]:
    query = select(OutboxRow).order_by(col(OutboxRow.id).desc()).limit(limit)
    if status is not None:
        query = query.where(OutboxRow.status == status)
    async with _hub(request).sessions() as session:
        rows = (await session.exec(query)).all()
    return [OutboxOut.model_validate(r, from_attributes=True) for r in rows]


@router.post(
    "/outbox/{row_id}/replay",
    response_model=OutboxOut,
    summary="Send a delivery again (same idempotency key, fresh retry budget)",
)
async def replay_row(row_id: int, request: Request, _: Admin) -> OutboxOut:
    hub = _hub(request)
    async with hub.sessions() as session, session.begin():
        row = await outbox.replay(session, row_id, hub.clock.now())
        if row is None:
            raise HTTPException(404, f"no outbox row {row_id}")
    hub.wake.set()
    return OutboxOut.model_validate(row, from_attributes=True)


@router.get("/connectors", summary="Enabled connectors and their health")
async def connectors(request: Request, _: Operator) -> list[dict[str, Any]]:
    hub = _hub(request)
    health = await hub.registry.health()
    return [
        {
            "name": name,
            "sdk_version": connector.sdk_version,
            "ok": health[name].ok,
            "detail": health[name].detail,
        }
        for name, connector in hub.registry.items()
    ]
