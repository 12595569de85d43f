"""12378 transfers for tests: a valid transfer to vary, the branches' secrets, and signed pushes
(signed with the reference ``standardwebhooks`` library, so our verification is checked against
an independent implementation)."""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from standardwebhooks import Webhook

BEIJING_SECRET = "whsec_YmVpamluZy1icmFuY2gtcHVzaC1zZWNyZXQtMDAwMQ=="
SHANGHAI_SECRET = "whsec_c2hhbmdoYWktYnJhbmNoLXB1c2gtc2VjcmV0LTAwMg=="
FEEDBACK_SECRET = "whsec_YmVpamluZy1icmFuY2gtZmVlZGJhY2stc2VjcmV0MQ=="
STRANGER_SECRET = "whsec_bm9ib2R5LXdlLWtub3ctYWJvdXQtc2VjcmV0LTAwMw=="
BEIJING = "国家金融监督管理总局北京监管局"
SHANGHAI = "国家金融监督管理总局上海监管局"
RESIDENT_ID = "11010519491231002X"
"""A well-formed PRC resident id number (its check character holds)."""
PATH = "/channels/hotline12378/transfers"

_serial = itertools.count(1)


def hotline_config(feedback_url: str, **extra: Any) -> dict[str, Any]:
    return {
        "branches": {
            "beijing": {
                "name": BEIJING,
                "aliases": ["北京监管局"],
                "secret": BEIJING_SECRET,
                "feedback_url": feedback_url,
                "feedback_secret": FEEDBACK_SECRET,
            },
            "shanghai": {
                "name": SHANGHAI,
                "secret": SHANGHAI_SECRET,
                "feedback_url": feedback_url,
            },
        },
        **extra,
    }


def transfer(now: datetime | None = None, **overrides: Any) -> dict[str, Any]:
    """A valid transfer received a day before ``now``; ``overrides`` replace top-level keys."""
    now = now or datetime.now(UTC)
    body: dict[str, Any] = {
        "transfer_id": f"BJ12378-{next(_serial):06d}-{uuid.uuid4().hex[:6]}",
        "transfer_type": "assign",
        "regulator_branch": BEIJING,
        "received_at": (now - timedelta(days=1)).isoformat(),
        "transferred_at": (now - timedelta(hours=2)).isoformat(),
        "complainant": {"name": "王秀英", "phone": "13812345678"},
        "institution": {"code": "B0001H111000001", "name": "某银行北京分行朝阳支行"},
        "category": {"channel": "A01", "business": "B0203", "cause": "C0101"},
        "summary": "信用卡年费未经同意扣收 300 元，多次致电客服未处理。",
        "demands": "退还年费并道歉",
    }
    body.update(overrides)
    return body


def signed(
    body: bytes, at: datetime, secret: str = BEIJING_SECRET, msg_id: str | None = None
) -> dict[str, str]:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body.decode()),
        "content-type": "application/json",
    }


def encode(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode()


async def push(
    client: httpx.AsyncClient,
    payload: Any,
    at: datetime,
    secret: str = BEIJING_SECRET,
    msg_id: str | None = None,
) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else encode(payload)
    return await client.post(PATH, content=body, headers=signed(body, at, secret, msg_id))
