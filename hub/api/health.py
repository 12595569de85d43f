"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="200 while the process runs")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="200 only when the database is reachable and migrated")
async def readyz(request: Request) -> JSONResponse:
    if await request.app.state.hub.database_ready():
        return JSONResponse({"status": "ready"})
    return JSONResponse(
        {"status": "not ready", "detail": "database unreachable or not migrated"}, status_code=503
    )
