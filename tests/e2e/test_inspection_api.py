"""Inspections over real HTTP (and the CLI): verify the audit trail, export a ticket's whole
history; who may do which. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from hub.auth import Role
from hub.runtime import Hub
from hub.testing import SignedWebhookReceiver
from tests.app_pushes import app_message, push
from tests.conftest import drain
from ticket_core import ManualClock
from ticket_core.audit import GENESIS, event_hash

TONGDAO = str(Path(sys.executable).with_name("tongdao"))
USER_ID = "u-inspect-4711"
PHONE = "13812345678"
RECEIPT = b"\x89PNG\r\n\x1a\n receipt of the double charge"


@pytest.fixture
async def ticket(
    api: httpx.AsyncClient,
    hub: Hub,
    clock: ManualClock,
    receiver: SignedWebhookReceiver,
    make_key,
) -> str:
    """A complaint with an attachment, an internal note and a delivered reply."""
    body = app_message(
        "我要投诉，信用卡被重复扣费，请退款",
        user_id=USER_ID,
        phone=PHONE,
        name="王小明",
        attachments=[
            {
                "name": "receipt.png",
                "content_type": "image/png",
                "data": base64.b64encode(RECEIPT).decode(),
            }
        ],
    )
    assert (await push(api, body, clock.now())).status_code == 202
    await drain(hub)
    number = receiver.received[0]["ticket_number"]
    agent = await make_key(Role.agent)
    clock.advance(minutes=10)
    note = await api.post(
        f"/api/v1/tickets/{number}/notes", json={"text": "客户为老年人，注意沟通"}, headers=agent
    )
    assert note.status_code == 201
    clock.advance(minutes=20)
    reply = await api.post(
        f"/api/v1/tickets/{number}/replies",
        json={"text": "已为您核实，款项将原路退回。"},
        headers=agent,
    )
    assert reply.status_code == 202
    await drain(hub)
    return number


async def _tamper_after(hub: Hub, number: str) -> int:
    """Rewrite an audit row's ``after`` with raw SQL; returns the event's id."""
    async with hub.sessions() as session, session.begin():
        event_id = (
            await session.exec(
                sa.text(
                    "SELECT e.id FROM audit_event e JOIN ticket t ON t.id = e.ticket_id "
                    "WHERE t.number = :n AND e.action = 'message.note'"
                ),
                params={"n": number},
            )
        ).scalar_one()
        await session.exec(
            sa.text('UPDATE audit_event SET "after" = :v WHERE id = :id'),
            params={"v": '{"message_id": 1}', "id": event_id},
        )
    return int(event_id)


async def test_export_holds_notes_deliveries_attachments_and_a_chain_that_still_verifies(
    api: httpx.AsyncClient, ticket: str, make_key, clock: ManualClock
) -> None:
    auditor = await make_key(Role.auditor)
    clock.advance(hours=1)
    response = await api.get(f"/api/v1/tickets/{ticket}/export", headers=auditor)
    assert response.status_code == 200, response.text
    assert f'filename="{ticket}-export.json"' in response.headers["content-disposition"]
    document = response.json()
    assert document["format"] == "tongdao.ticket-export/1"
    assert document["exported_by"] == "auditor:test-auditor"
    assert document["exported_at"] == clock.now().isoformat()
    assert document["ticket"]["number"] == ticket
    assert document["ticket"]["kind"] == "complaint"

    messages = document["messages"]
    assert [(m["direction"], m["purpose"]) for m in messages] == [
        ("in", "customer"),
        ("out", "acknowledgement"),
        ("note", "note"),
        ("out", "reply"),
    ]
    assert messages[2]["text"] == "客户为老年人，注意沟通"
    assert [m["delivery_state"] for m in messages if m["direction"] == "out"] == [
        "delivered",
        "delivered",
    ]
    (attachment,) = document["attachments"]
    assert attachment == {
        "message_id": messages[0]["id"],
        "name": "receipt.png",
        "content_type": "image/png",
        "sha256": hashlib.sha256(RECEIPT).hexdigest(),
        "size": len(RECEIPT),
        "stored": True,
    }
    assert document["sla"]["policy"] and document["sla"]["resolution_due_at"]
    assert isinstance(document["sla"]["clocks"], list)

    events = document["audit"]["events"]
    assert events[-1]["action"] == "ticket.exported"
    assert events[-1]["actor"] == "auditor:test-auditor"
    assert document["audit"]["head"] == events[-1]["hash"]
    assert document["verification"] == {
        "ok": True,
        "events_checked": len(events),
        "problems": [],
    }
    # The document alone is enough to re-verify the chain.
    prev = GENESIS
    for event in events:
        assert event["prev_hash"] == prev
        fields = {k: event[k] for k in ("ticket_id", "actor", "action", "before", "after")}
        at = datetime.fromisoformat(event["at"])
        assert event_hash(prev, at=at, **fields) == event["hash"]
        prev = event["hash"]

    verified = await api.get("/api/v1/audit/verify", params={"ticket": ticket}, headers=auditor)
    assert verified.json()["ok"] is True
    assert verified.json()["events_checked"] == len(events)
    trail = (await api.get(f"/api/v1/tickets/{ticket}/audit", headers=auditor)).json()
    assert trail[-1]["action"] == "ticket.exported"


async def test_export_shows_the_customer_only_in_masked_forms(
    api: httpx.AsyncClient, ticket: str, make_key
) -> None:
    document = (
        await api.get(f"/api/v1/tickets/{ticket}/export", headers=await make_key(Role.auditor))
    ).json()
    customer = document["customer"]
    assert customer["phone"] == "138****5678"
    assert customer["display_name"] != "王小明"
    assert {i["kind"] for i in customer["identities"]} == {"app_user", "phone"}
    text = json.dumps(document, ensure_ascii=False)
    assert USER_ID not in text and PHONE not in text
    assert "value_hash" not in text and "reply_to" not in text
    assert "progress_code_hash" not in text


@pytest.mark.parametrize(
    ("role", "status"),
    [
        (Role.auditor, 200),
        (Role.supervisor, 200),
        (Role.admin, 200),
        (Role.agent, 403),
        (Role.integrator, 403),
    ],
)
async def test_who_may_export(
    api: httpx.AsyncClient, ticket: str, make_key, role: Role, status: int
) -> None:
    response = await api.get(f"/api/v1/tickets/{ticket}/export", headers=await make_key(role))
    assert response.status_code == status
    if status == 403:
        assert response.json()["detail"] == (
            f"role {role.value} may not do this (allowed: auditor, supervisor, admin)"
        )


async def test_export_of_an_unknown_ticket_is_404_and_records_nothing(
    api: httpx.AsyncClient, make_key
) -> None:
    response = await api.get(
        "/api/v1/tickets/TD-20990101-000001/export", headers=await make_key(Role.auditor)
    )
    assert response.status_code == 404
    assert "TD-20990101-000001" in response.json()["detail"]


async def test_verify_api_catches_a_tampered_row_naming_ticket_and_event(
    api: httpx.AsyncClient, hub: Hub, ticket: str, make_key
) -> None:
    auditor = await make_key(Role.auditor)
    clean = (await api.get("/api/v1/audit/verify", headers=auditor)).json()
    assert clean["ok"] is True and clean["problem_count"] == 0
    assert clean["tickets_checked"] == 1 and clean["events_checked"] >= 6
    event_id = await _tamper_after(hub, ticket)
    for params in ({}, {"ticket": ticket}):
        found = (await api.get("/api/v1/audit/verify", params=params, headers=auditor)).json()
        assert found["ok"] is False
        assert found["problems"] == [
            {
                "ticket": ticket,
                "event_id": event_id,
                "kind": "edited",
                "detail": f"event {event_id} (message.note): its content does not match its "
                "hash; a field (actor, action, before, after, time, ticket, previous hash) "
                "or the hash itself was changed",
            }
        ]


async def test_only_auditors_and_admins_verify(
    api: httpx.AsyncClient, ticket: str, make_key
) -> None:
    assert (
        await api.get("/api/v1/audit/verify", headers=await make_key(Role.admin))
    ).status_code == 200
    for role in (Role.agent, Role.supervisor, Role.integrator):
        refused = await api.get("/api/v1/audit/verify", headers=await make_key(role))
        assert refused.status_code == 403
        assert "allowed: auditor, admin" in refused.json()["detail"]
    unknown = await api.get(
        "/api/v1/audit/verify",
        params={"ticket": "TD-20990101-000001"},
        headers=await make_key(Role.auditor),
    )
    assert unknown.status_code == 404
    malformed = await api.get(
        "/api/v1/audit/verify", params={"ticket": "1 OR 1=1"}, headers=await make_key(Role.auditor)
    )
    assert malformed.status_code == 422


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TONGDAO_")},
        "TONGDAO_DATABASE__URL": database_url,
    }
    return subprocess.run(
        [TONGDAO, *args], env=environment, capture_output=True, text=True, timeout=60, check=False
    )


async def test_cli_export_writes_the_document_records_who_and_still_verifies(
    ticket: str, database_url: str, tmp_path: Path
) -> None:
    target = tmp_path / "inspection.json"
    exported = await asyncio.to_thread(
        _cli, database_url, "audit", "export", ticket, "-o", str(target), "--actor", "auditor:wang"
    )
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert f"exported {ticket} to {target}" in exported.stderr
    document = json.loads(target.read_text(encoding="utf-8"))
    assert document["exported_by"] == "auditor:wang"
    assert document["audit"]["events"][-1]["action"] == "ticket.exported"
    assert document["audit"]["events"][-1]["actor"] == "auditor:wang"
    assert document["verification"]["ok"] is True
    assert any(m["direction"] == "note" for m in document["messages"])

    to_stdout = await asyncio.to_thread(_cli, database_url, "audit", "export", ticket)
    assert to_stdout.returncode == 0
    again = json.loads(to_stdout.stdout)
    assert again["exported_by"].startswith("cli:")
    assert [e["action"] for e in again["audit"]["events"][-2:]] == [
        "ticket.exported",
        "ticket.exported",
    ]
    verified = await asyncio.to_thread(_cli, database_url, "audit", "verify", "--ticket", ticket)
    assert verified.returncode == 0, verified.stdout
    missing = await asyncio.to_thread(_cli, database_url, "audit", "export", "TD-20990101-000001")
    assert missing.returncode == 1
    assert "no ticket numbered 'TD-20990101-000001'" in missing.stderr
