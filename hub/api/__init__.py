"""The REST API under /api/v1, plus health endpoints."""

from hub.api.health import router as health_router
from hub.api.inspection import router as inspection_router
from hub.api.operations import router as operations_router
from hub.api.tickets import router as tickets_router
from hub.api.webhooks import router as webhooks_router

__all__ = [
    "health_router",
    "inspection_router",
    "operations_router",
    "tickets_router",
    "webhooks_router",
]
