"""The FastAPI application: REST API, channel routes of every enabled connector, health."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, RedirectResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hub.api import (
    health_router,
    inspection_router,
    operations_router,
    tickets_router,
    webhooks_router,
)
from hub.api.agents import router as agents_router
from hub.api.customers import router as customers_router
from hub.api.guard import ApiGuard
from hub.api.progress import PUBLIC_PATHS
from hub.api.progress import router as progress_router
from hub.progress_lookup import ProgressLookup
from hub.runtime import Hub
from hub.settings import Settings
from ticket_core import Clock

DESCRIPTION = """
Tongdao takes customers' messages in from every channel, keeps one ticket per case,
drives its lifecycle and clocks, and answers on the channel the customer used.

* Channel routes live under `/channels/<name>` and are signed (Standard Webhooks).
* The REST API under `/api/v1` takes `Authorization: Bearer <key>` (`tongdao keys create`).
"""


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    hub: Hub | None = None,
    run_workers: bool | None = None,
) -> FastAPI:
    """Build the app. ``hub`` may be given already built (tests); ``run_workers`` defaults to
    ``settings.workers_in_process`` (on SQLite, ``serve`` runs the workers itself)."""
    settings = settings or (hub.settings if hub else Settings())
    hub = hub or Hub(settings, clock=clock)
    workers = settings.workers_in_process if run_workers is None else run_workers

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await hub.open()
        stop = asyncio.Event()
        task = asyncio.create_task(hub.run_workers(stop)) if workers else None
        try:
            yield
        finally:
            stop.set()
            if task is not None:
                await task
            await hub.close()

    app = FastAPI(
        title="Tongdao",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.hub = hub
    lookup = settings.progress_lookup.enabled
    app.add_middleware(ApiGuard, public=PUBLIC_PATHS if lookup else None)
    app.include_router(health_router)
    app.include_router(tickets_router)
    app.include_router(operations_router)
    app.include_router(webhooks_router)
    app.include_router(inspection_router)
    app.include_router(customers_router)
    app.include_router(agents_router)
    if lookup:
        app.state.progress_lookup = ProgressLookup(
            settings, sessions=hub.sessions, reads=hub.reads, clock=hub.clock
        )
        app.include_router(progress_router)
    for name, connector in hub.registry.items():
        router = connector.router()
        if router is not None:
            app.include_router(router, prefix=f"/channels/{name}")
    if "web" in hub.registry:
        # The customer's complaint form has a short public address (connectors/web).
        @app.get("/web", include_in_schema=False)
        @app.get("/web/", include_in_schema=False)
        async def web_form(request: Request) -> RedirectResponse:
            query = f"?{request.url.query}" if request.url.query else ""
            return RedirectResponse(f"/channels/web/{query}", status_code=307)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest().decode(), media_type=CONTENT_TYPE_LATEST)

    return app
