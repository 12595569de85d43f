"""What several drills share: the app channel's secret and pushes, fresh databases for the
command line, and latency summaries."""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from hub.sdk import signed_headers
from hub.settings import DatabaseSettings
from hub.store import create_engine, upgrade

APP_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
POSTGRES_URL = os.environ.get(
    "TONGDAO_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


def app_message(text: str, user_id: str) -> bytes:
    return json.dumps({"user_id": user_id, "text": text}, ensure_ascii=False).encode()


def app_push_headers(body: bytes, at: datetime, msg_id: str) -> dict[str, str]:
    """Signed as the app backend signs every (re)try: with the time of that try."""
    return {**signed_headers(APP_SECRET, msg_id, body, at), "content-type": "application/json"}


@contextlib.asynccontextmanager
async def fresh_database(kind: str, workdir: Path) -> AsyncIterator[str]:
    """A new, migrated database: a SQLite file in ``workdir``, or a PostgreSQL database
    created on ``TONGDAO_TEST_POSTGRES_URL``'s server and dropped afterwards."""
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{workdir}/tongdao.db"
        await _migrate(url)
        yield url
        return
    admin = make_url(POSTGRES_URL).set(drivername="postgresql")
    name = f"tongdao_drill_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False), timeout=5)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    try:
        await _migrate(url)
        yield url
    finally:
        conn = await asyncpg.connect(admin.render_as_string(hide_password=False), timeout=5)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


async def _migrate(url: str) -> None:
    engine = create_engine(DatabaseSettings(url=url))
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def latency_summary(values: Sequence[float]) -> str:
    if not values:
        return "n=0"
    return (
        f"n={len(values)} p50={statistics.median(values) * 1000:.1f}ms "
        f"p95={percentile(values, 0.95) * 1000:.1f}ms max={max(values) * 1000:.1f}ms"
    )
