"""What every router needs from the request: the running hub."""

from __future__ import annotations

from fastapi import Request

from hub.runtime import Hub


def hub_of(request: Request) -> Hub:
    return request.app.state.hub
