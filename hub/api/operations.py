"""Receipts for pushes, and the operator's view of envelopes, the outbox and connectors."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from sqlmodel import col, select

from hub import outbox
from hub.api.dependencies import hub_of
from hub.api.schemas import EnvelopeOut, OutboxOut, ReceiptOut
from hub.auth import Principal, Role, require
from hub.store import Envelope, EnvelopeStatus, OutboxRow, OutboxStatus

router = APIRouter(prefix="/api/v1", tags=["operations"])

Reader = Annotated[Principal, Depends(require(*Role))]
ReceiptParam = Annotated[str, Path(pattern=r"^rcpt_[A-Za-z0-9_-]{1,60}$")]
RowId = Annotated[int, Path(ge=1, le=2**62)]
Admin = Annotated[Principal, Depends(require(Role.admin))]
Operator = Annotated[Principal, Depends(require(Role.admin, Role.integrator))]


@router.get(
    "/receipts/{receipt}",
    response_model=ReceiptOut,
    tags=["channels"],
    summary="What became of a pushed message",
)
async def read_receipt(receipt: ReceiptParam, request: Request, _: Reader) -> ReceiptOut:
    async with hub_of(request).reads() as session:
        row = (await session.exec(select(Envelope).where(Envelope.receipt == receipt))).first()
    if row is None:
        raise HTTPException(404, f"no receipt {receipt!r}")
    if row.status == EnvelopeStatus.processed:
        status = "processed"
    elif (
        row.status == EnvelopeStatus.refused
        or row.attempts >= hub_of(request).settings.worker.envelope_max_attempts
    ):
        status = "failed"  # retries spent: an operator must act; until then it is pending
    else:
        status = "pending"
    return ReceiptOut(
        receipt=row.receipt,
        status=status,  # type: ignore[arg-type]
        ticket_number=row.ticket_number,
        error=row.last_error,
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
    async with hub_of(request).reads() as session:
        rows = (await session.exec(query)).all()
    return [EnvelopeOut.model_validate(r, from_attributes=True) for r in rows]


@router.post(
    "/envelopes/{envelope_id}/retry",
    response_model=EnvelopeOut,
    summary="Process a failed envelope again now, with a fresh retry budget",
)
async def retry_envelope(envelope_id: RowId, request: Request, _: Admin) -> EnvelopeOut:
    hub = hub_of(request)
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
    async with hub_of(request).reads() as session:
        rows = (await session.exec(query)).all()
    return [OutboxOut.model_validate(r, from_attributes=True) for r in rows]


@router.post(
    "/outbox/{row_id}/replay",
    response_model=OutboxOut,
    summary="Send a delivery again (same idempotency key, fresh retry budget)",
)
async def replay_row(row_id: RowId, request: Request, _: Admin) -> OutboxOut:
    hub = hub_of(request)
    async with hub.sessions() as session, session.begin():
        try:
            row = await outbox.replay(session, row_id, hub.clock.now())
        except outbox.InFlight as exc:
            raise HTTPException(409, str(exc)) from None
        if row is None:
            raise HTTPException(404, f"no outbox row {row_id}")
    hub.wake.set()
    return OutboxOut.model_validate(row, from_attributes=True)


@router.get("/connectors", summary="Enabled connectors and their health")
async def connectors(request: Request, _: Operator) -> list[dict[str, Any]]:
    hub = hub_of(request)
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
