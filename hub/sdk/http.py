"""Reading hostile HTTP requests: bounded bodies and errors that name the problem."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

MIB = 1024 * 1024


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"request body is larger than {limit} bytes")
        self.limit = limit


async def read_limited_body(request: Request, limit: int = MIB) -> bytes:
    """Read the body without ever holding more than ``limit`` bytes of it."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def error_response(
    status: int, detail: str, errors: list[dict[str, Any]] | None = None
) -> JSONResponse:
    content: dict[str, Any] = {"detail": detail}
    if errors:
        content["errors"] = errors
    return JSONResponse(content, status_code=status)


def validation_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors as ``{"field": "a.b", "message": ...}``, one per bad field."""
    return [
        {
            "field": ".".join(str(part) for part in err["loc"]) or "body",
            "message": err["msg"],
        }
        for err in exc.errors(include_url=False, include_input=False)
    ]
