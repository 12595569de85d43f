"""Signed pushes into the app channel, signed with the reference ``standardwebhooks`` library
so our verification is proven against an independent implementation."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import httpx
from standardwebhooks import Webhook

APP_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_SECRET = "whsec_c2VjcmV0LW9mLXNvbWVib2R5LWVsc2UtZW50aXJlbHk="


def sign_push(
    body: bytes, at: datetime, msg_id: str | None = None, secret: str = APP_SECRET
) -> dict[str, str]:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body.decode()),
        "content-type": "application/json",
    }


def app_message(
    text: str = "我的信用卡被重复扣费了，要求退款", user_id: str = "u-1001", **extra: Any
) -> bytes:
    return json.dumps({"user_id": user_id, "text": text, **extra}, ensure_ascii=False).encode()


async def push(
    client: httpx.AsyncClient,
    body: bytes,
    at: datetime,
    msg_id: str | None = None,
    secret: str = APP_SECRET,
) -> httpx.Response:
    return await client.post(
        "/channels/app/messages", content=body, headers=sign_push(body, at, msg_id, secret)
    )
