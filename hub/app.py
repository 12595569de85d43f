"""The FastAPI application: REST API, channel routes of every enabled connector, health."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, RedirectResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hub import logs
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
from hub.console import install as install_console
from hub.progress_lookup import ProgressLookup
from hub.runtime import Hub
from hub.settings import Settings
from ticket_core import Clock

CONSOLE_BODY_LIMIT = 256 * 1024
"""A console form carries at most a 20,000-character reply (a Chinese one is about 180 KB
form-encoded); nothing larger is read."""

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
    warm_up: bool = False,
) -> FastAPI:
    """Build the app. ``hub`` may be given already built (tests); ``run_workers`` defaults to
    ``settings.workers_in_process`` (on SQLite, ``serve`` runs the workers itself); ``warm_up``
    (``tongdao serve``) loads the classifier before the app takes requests."""
    settings = settings or (hub.settings if hub else Settings())
    hub = hub or Hub(settings, clock=clock)
    workers = settings.workers_in_process if run_workers is None else run_workers

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await hub.open()
        if warm_up and workers:
            hub.warm_up()
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
    app.add_middleware(
        ApiGuard,
        public=PUBLIC_PATHS if lookup else None,
        open_prefixes={"/console/": CONSOLE_BODY_LIMIT},
    )
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

    if settings.console.enabled:
        install_console(app)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest().decode(), media_type=CONTENT_TYPE_LATEST)

    return app


def app_from_environment() -> FastAPI:
    """The app of one of several ``tongdao serve --processes N`` processes, each configured
    as the parent was (environment and configuration file)."""
    settings = Settings()
    logs.configure(settings.log.level, settings.log.json_format)
    return create_app(settings, warm_up=True)
