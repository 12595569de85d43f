"""An ASGI guard in front of the REST API: no key, no body read; no body beyond the cap.

FastAPI reads and parses a request body before it runs the dependency that checks the API
key, so without this a caller with no key could make the hub read any amount of JSON.

A few paths are public (the customer's progress lookup): they need no key, and get their own,
smaller cap, since anybody may send them anything.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_BODY_LIMIT = 256 * 1024


async def _refuse(send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class ApiGuard:
    def __init__(
        self,
        app: ASGIApp,
        prefix: str = "/api/",
        limit: int = API_BODY_LIMIT,
        public: Mapping[str, int] | None = None,
        open_prefixes: Mapping[str, int] | None = None,
    ) -> None:
        """``public`` maps exact paths that need no key to their body cap in bytes;
        ``open_prefixes`` does the same for whole trees (the console: its own sign-in)."""
        self.app = app
        self.prefix = prefix
        self.limit = limit
        self.public = dict(public or {})
        self.open_prefixes = dict(open_prefixes or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        public_limit = self.public.get(path)
        if public_limit is None:
            public_limit = next(
                (cap for p, cap in self.open_prefixes.items() if path.startswith(p)), None
            )
        if public_limit is None and not path.startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if public_limit is None and not headers.get(b"authorization", b"").strip():
            await _refuse(
                send,
                401,
                "an API key is required: Authorization: Bearer <key>",
                [(b"www-authenticate", b"Bearer")],
            )
            return
        limit = self.limit if public_limit is None else public_limit
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _refuse(send, 413, f"request body is larger than {limit} bytes", [])
            return
        received = 0
        started = refused = False

        async def bounded_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit and not refused:
                    refused = True
                    if not started:
                        await _refuse(send, 413, f"request body is larger than {limit} bytes", [])
                    # The app sees the client leave and stops reading.
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 has been sent; whatever the app answers is dropped
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, bounded_receive, tracking_send)
