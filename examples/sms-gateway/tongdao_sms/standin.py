"""A local stand-in of the SMS gateway, speaking its protocol over HTTP on loopback.

It accepts downlink messages (deduplicating on ``client_ref`` as the real gateway does),
answers health checks, and can push uplink callbacks to a hub, signed like the gateway.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
from aiohttp import web

from tongdao_sms.connector import sign_uplink


class SmsGatewayStandIn:
    def __init__(self, api_key: str, signing_key: str) -> None:
        self.api_key = api_key
        self.signing_key = signing_key
        self.sent: dict[str, dict[str, Any]] = {}
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _sms(self, request: web.Request) -> web.Response:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return web.json_response({"code": "UNAUTHORIZED"}, status=401)
        payload = await request.json()
        if not str(payload.get("to", "")).lstrip("+").isdigit():
            return web.json_response({"code": "INVALID_NUMBER"}, status=400)
        ref = payload["client_ref"]
        self.sent.setdefault(ref, payload)
        return web.json_response({"id": f"sms_{ref}", "status": "accepted"})

    async def _health(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/v1/sms", self._sms)
        app.router.add_get("/v1/health", self._health)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def push_uplink(
        self, hub_url: str, phone: str, text: str, msg_id: str | None = None
    ) -> httpx.Response:
        body = json.dumps(
            {"msg_id": msg_id or uuid.uuid4().hex, "from": phone, "to": "10690000", "text": text},
            ensure_ascii=False,
        ).encode()
        stamp = int(time.time())
        async with httpx.AsyncClient() as client:
            return await client.post(
                f"{hub_url}/channels/sms/uplink",
                content=body,
                headers={
                    "content-type": "application/json",
                    "x-sms-timestamp": str(stamp),
                    "x-sms-signature": sign_uplink(self.signing_key, stamp, body),
                },
            )
