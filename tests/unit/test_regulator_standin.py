"""The stand-in regulator endpoint answers as the spec says a branch does (loopback HTTP)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from hub.testing.standins.regulator import RegulatorStandIn
from tests.hotline_transfers import FEEDBACK_SECRET, STRANGER_SECRET, signed

RECORD = {
    "transfer_id": "T-1",
    "ticket_number": "TD-20261123-000001",
    "contacted_at": None,
    "decided_at": "2026-11-25T16:30:00+08:00",
    "outcome": "resolved",
    "summary": "",
    "extensions": [],
    "satisfaction": "unknown",
    "handler": "consumer-protection",
}


@pytest.fixture
async def stand_in() -> AsyncIterator[RegulatorStandIn]:
    regulator = RegulatorStandIn(secrets=[FEEDBACK_SECRET])
    await regulator.start()
    yield regulator
    await regulator.stop()


async def _post(
    url: str, record: object, secret: str = FEEDBACK_SECRET, msg_id: str = "m1"
) -> httpx.Response:
    body = json.dumps(record, ensure_ascii=False).encode()
    async with httpx.AsyncClient() as client:
        return await client.post(
            url, content=body, headers=signed(body, datetime.now(UTC), secret, msg_id)
        )


async def test_a_signed_record_is_kept_once_per_webhook_id(stand_in: RegulatorStandIn) -> None:
    assert (await _post(stand_in.url, RECORD)).status_code == 200
    assert (await _post(stand_in.url, RECORD)).status_code == 200
    assert [r["transfer_id"] for r in stand_in.received] == ["T-1"]
    assert [a.status for a in stand_in.attempts] == [200, 200]


async def test_bad_signatures_and_bad_records_are_refused(stand_in: RegulatorStandIn) -> None:
    assert (await _post(stand_in.url, RECORD, secret=STRANGER_SECRET)).status_code == 401
    wrong = await _post(stand_in.url, {**RECORD, "outcome": "won"}, msg_id="m2")
    assert wrong.status_code == 422 and "outcome" in wrong.json()["error"]
    naive = await _post(stand_in.url, {**RECORD, "decided_at": "2026-11-25 16:30"}, msg_id="m3")
    assert naive.status_code == 422 and "time zone" in naive.json()["error"]
    assert stand_in.received == []


async def test_it_can_be_told_to_be_down_or_to_refuse(stand_in: RegulatorStandIn) -> None:
    base = stand_in.url.removesuffix("/feedback")
    async with httpx.AsyncClient() as client:
        assert (await client.post(f"{base}/_control", json={"mode": "down"})).status_code == 200
        assert (await client.head(stand_in.url)).status_code == 503
        assert (await _post(stand_in.url, RECORD)).status_code == 503
        await client.post(f"{base}/_control", json={"mode": "refuse"})
        refused = await _post(stand_in.url, RECORD)
        assert refused.status_code == 422 and "请补充" in refused.text
        assert (await client.post(f"{base}/_control", json={"mode": "nap"})).status_code == 400
        await client.post(f"{base}/_control", json={"mode": "ok"})
        assert (await _post(stand_in.url, RECORD)).status_code == 200
        listed = (await client.get(f"{base}/_control/feedback")).json()
    assert listed["mode"] == "ok" and len(listed["received"]) == 1
