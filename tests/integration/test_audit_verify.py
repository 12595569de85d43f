"""``tongdao audit verify`` against a real database: rows tampered with by raw SQL (edited,
deleted in the middle and at the end, swapped, forged and inserted, moved between tickets)
are caught, naming the ticket and the event; an untouched database verifies, exit code 0.
Run on SQLite and PostgreSQL, the CLI as a real subprocess on the test's database."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from hub.runtime import Hub
from hub.sdk import InboundEnvelope
from tests.app_pushes import app_message
from tests.conftest import drain
from ticket_core import AuditEvent, ManualClock, Ticket, UTCDateTime, add_note, get_ticket
from ticket_core.audit import ProblemKind, event_hash, verify_store

TONGDAO = str(Path(sys.executable).with_name("tongdao"))


@dataclass(frozen=True, slots=True)
class Case:
    """Two tickets made through the pipeline; ``a`` has a note too. Event ids oldest first."""

    a: str
    b: str
    a_id: int
    b_id: int
    a_events: list[int]
    b_events: list[int]


async def _events(hub: Hub, number: str) -> tuple[int, list[int]]:
    async with hub.sessions() as session:
        ticket = await get_ticket(session, number)
        ids = (
            await session.exec(
                select(AuditEvent.id)
                .where(AuditEvent.ticket_id == ticket.id)
                .order_by(col(AuditEvent.id))
            )
        ).all()
    assert ticket.id is not None
    return ticket.id, [i for i in ids if i is not None]


@pytest.fixture
async def case(hub: Hub, clock: ManualClock) -> Case:
    for external_id, user in (("m-a", "u-a"), ("m-b", "u-b")):
        await hub.envelopes.accept(
            InboundEnvelope(
                channel="app",
                external_id=external_id,
                body=app_message("我要投诉，信用卡被重复扣费", user_id=user),
                content_type="application/json",
                received_at=clock.now(),
            )
        )
        await drain(hub)
        clock.advance(minutes=5)
    async with hub.reads() as session:  # numbers carry the opening date, which may be yesterday
        numbers = (await session.exec(select(Ticket.number).order_by(col(Ticket.id)))).all()
    number_a, number_b = (str(n) for n in numbers)
    async with hub.sessions() as session, session.begin():
        ticket = await get_ticket(session, number_a, for_update=True)
        await add_note(session, ticket, text="已联系清算部门", author="agent:li", now=clock.now())
    a_id, a_events = await _events(hub, number_a)
    b_id, b_events = await _events(hub, number_b)
    assert len(a_events) >= 5 and len(b_events) >= 4
    return Case(number_a, number_b, a_id, b_id, a_events, b_events)


async def _sql(hub: Hub, statement: str, **params: Any) -> None:
    query = sa.text(statement)
    if "at" in params:
        query = query.bindparams(sa.bindparam("at", type_=UTCDateTime))
    async with hub.sessions() as session, session.begin():
        await session.exec(query, params=params)


async def _head(hub: Hub, ticket_id: int) -> str:
    async with hub.sessions() as session:
        rows = await session.exec(
            sa.text("SELECT audit_head FROM ticket WHERE id = :id"), params={"id": ticket_id}
        )
        return str(rows.scalar_one())


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TONGDAO_")},
        "TONGDAO_DATABASE__URL": database_url,
        "COLUMNS": "200",
    }
    return subprocess.run(
        [TONGDAO, *args], env=environment, capture_output=True, text=True, timeout=60, check=False
    )


async def tongdao(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a subprocess; the event loop keeps running meanwhile."""
    return await asyncio.to_thread(_cli, database_url, *args)


Expected = list[tuple[str, ProblemKind, int | None]]
Tampering = Callable[[Hub, Case], Awaitable[Expected]]


async def edit_after(hub: Hub, c: Case) -> Expected:
    await _sql(
        hub,
        'UPDATE audit_event SET "after" = :v WHERE id = :id',
        v='{"status": "closed"}',
        id=c.a_events[3],
    )
    return [(c.a, ProblemKind.edited, c.a_events[3])]


async def edit_actor(hub: Hub, c: Case) -> Expected:
    await _sql(
        hub, "UPDATE audit_event SET actor = 'agent:mallory' WHERE id = :id", id=c.a_events[1]
    )
    return [(c.a, ProblemKind.edited, c.a_events[1])]


async def edit_time(hub: Hub, c: Case) -> Expected:
    earlier = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
    await _sql(hub, "UPDATE audit_event SET at = :at WHERE id = :id", at=earlier, id=c.a_events[2])
    return [(c.a, ProblemKind.edited, c.a_events[2])]


async def edit_action(hub: Hub, c: Case) -> Expected:
    await _sql(
        hub, "UPDATE audit_event SET action = 'message.note' WHERE id = :id", id=c.b_events[1]
    )
    return [(c.b, ProblemKind.edited, c.b_events[1])]


async def edit_hash(hub: Hub, c: Case) -> Expected:
    await _sql(hub, "UPDATE audit_event SET hash = :h WHERE id = :id", h="f" * 64, id=c.a_events[1])
    return [(c.a, ProblemKind.edited, c.a_events[1])]


async def move_to_other_ticket(hub: Hub, c: Case) -> Expected:
    await _sql(
        hub, "UPDATE audit_event SET ticket_id = :t WHERE id = :id", t=c.b_id, id=c.a_events[2]
    )
    return [
        (c.a, ProblemKind.out_of_place, c.a_events[3]),
        (c.b, ProblemKind.edited, c.a_events[2]),
    ]


async def delete_middle(hub: Hub, c: Case) -> Expected:
    await _sql(hub, "DELETE FROM audit_event WHERE id = :id", id=c.a_events[2])
    return [(c.a, ProblemKind.out_of_place, c.a_events[3])]


async def delete_last(hub: Hub, c: Case) -> Expected:
    await _sql(hub, "DELETE FROM audit_event WHERE id = :id", id=c.a_events[-1])
    return [(c.a, ProblemKind.head_mismatch, None)]


async def delete_all_of_a_ticket(hub: Hub, c: Case) -> Expected:
    await _sql(hub, "DELETE FROM audit_event WHERE ticket_id = :t", t=c.b_id)
    return [(c.b, ProblemKind.head_mismatch, None)]


async def swap_two(hub: Hub, c: Case) -> Expected:
    first, second = c.a_events[1], c.a_events[2]
    await _sql(hub, "UPDATE audit_event SET id = -1 WHERE id = :id", id=first)
    await _sql(hub, "UPDATE audit_event SET id = :new WHERE id = :id", new=first, id=second)
    await _sql(hub, "UPDATE audit_event SET id = :new WHERE id = -1", new=second)
    # Row ``first`` now holds the later event and row ``second`` the earlier one.
    return [
        (c.a, ProblemKind.out_of_place, first),
        (c.a, ProblemKind.out_of_place, second),
    ]


async def append_forged(hub: Hub, c: Case) -> Expected:
    """A forger who knows the hash recipe appends a well-formed event but cannot move the
    head without the hub."""
    head = await _head(hub, c.a_id)
    at = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    after = {"status": "closed", "outcome": "rejected"}
    digest = event_hash(
        head,
        ticket_id=c.a_id,
        actor="agent:mallory",
        action="ticket.status_changed",
        before={},
        after=after,
        at=at,
    )
    await _sql(
        hub,
        'INSERT INTO audit_event (ticket_id, actor, action, "before", "after", at, prev_hash, '
        "hash) VALUES (:t, 'agent:mallory', 'ticket.status_changed', '{}', "
        """'{"status": "closed", "outcome": "rejected"}', :at, :prev, :hash)""",
        t=c.a_id,
        at=at,
        prev=head,
        hash=digest,
    )
    return [(c.a, ProblemKind.head_mismatch, None)]


async def insert_into_the_middle(hub: Hub, c: Case) -> Expected:
    """An event forged to follow an old one: it and the head both give it away."""
    async with hub.sessions() as session:
        prev = (await session.get(AuditEvent, c.b_events[1])).hash  # type: ignore[union-attr]
    await _sql(
        hub,
        'INSERT INTO audit_event (ticket_id, actor, action, "before", "after", at, prev_hash, '
        "hash) VALUES (:t, 'agent:mallory', 'message.note', '{}', '{}', :at, :prev, :hash)",
        t=c.b_id,
        at=datetime(2026, 11, 23, 12, 0, tzinfo=UTC),
        prev=prev,
        hash="e" * 64,
    )
    forged = (await _events(hub, c.b))[1][-1]
    return [
        (c.b, ProblemKind.edited, forged),
        (c.b, ProblemKind.out_of_place, forged),
        (c.b, ProblemKind.head_mismatch, None),
    ]


async def rewind_head(hub: Hub, c: Case) -> Expected:
    async with hub.sessions() as session:
        earlier = (await session.get(AuditEvent, c.a_events[-2])).hash  # type: ignore[union-attr]
    await _sql(hub, "UPDATE ticket SET audit_head = :h WHERE id = :id", h=earlier, id=c.a_id)
    return [(c.a, ProblemKind.head_mismatch, None)]


TAMPERINGS: list[Tampering] = [
    edit_after,
    edit_actor,
    edit_time,
    edit_action,
    edit_hash,
    move_to_other_ticket,
    delete_middle,
    delete_last,
    delete_all_of_a_ticket,
    swap_two,
    append_forged,
    insert_into_the_middle,
    rewind_head,
]


async def test_untouched_database_verifies_with_exit_code_0(
    hub: Hub, case: Case, database_url: str
) -> None:
    result = await verify_store(hub.reads)
    assert result.ok and result.problems == []
    assert result.tickets_checked == 2
    assert result.events_checked == len(case.a_events) + len(case.b_events)
    cli = await tongdao(database_url, "audit", "verify")
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert f"checked 2 tickets, {result.events_checked} audit events" in cli.stdout
    assert "the audit trail verifies" in cli.stdout


@pytest.mark.parametrize("tamper", TAMPERINGS, ids=lambda t: t.__name__)
async def test_tampered_row_is_caught_naming_ticket_and_event(
    hub: Hub, case: Case, tamper: Tampering
) -> None:
    expected = await tamper(hub, case)
    result = await verify_store(hub.reads)
    found = {(p.ticket_number, p.kind, p.event_id) for p in result.problems}
    assert not result.ok
    assert set(expected) <= found, [str(p) for p in result.problems]
    touched = {number for number, _, _ in expected}
    assert {p.ticket_number for p in result.problems} == touched


async def test_cli_names_each_problems_ticket_kind_and_event_and_exits_1(
    hub: Hub, case: Case, database_url: str
) -> None:
    """The matrix above proves what the verifier finds; this, that the command says it."""
    expected = await move_to_other_ticket(hub, case) + await rewind_head(hub, case)
    kinds = {ProblemKind.edited, ProblemKind.out_of_place, ProblemKind.head_mismatch}
    assert {kind for _, kind, _ in expected} == kinds
    result = await verify_store(hub.reads)
    assert set(expected) <= {(p.ticket_number, p.kind, p.event_id) for p in result.problems}
    cli = await tongdao(database_url, "audit", "verify")
    assert cli.returncode == 1, cli.stdout + cli.stderr
    assert f"{result.problem_count} problems:" in cli.stdout
    for number, kind, event_id in expected:
        line = next(
            (
                line
                for line in cli.stdout.splitlines()
                if f"[{kind.value}] ticket {number}:" in line
                and (event_id is None or f"event {event_id} " in line)
            ),
            None,
        )
        assert line is not None, (number, kind, event_id, cli.stdout)


async def test_verify_one_ticket_checks_only_that_one(
    hub: Hub, case: Case, database_url: str
) -> None:
    await delete_middle(hub, case)
    clean = await tongdao(database_url, "audit", "verify", "--ticket", case.b)
    assert clean.returncode == 0, clean.stdout
    assert f"checked ticket {case.b}, {len(case.b_events)} audit events" in clean.stdout
    broken = await tongdao(database_url, "audit", "verify", "--ticket", case.a)
    assert broken.returncode == 1
    assert f"ticket {case.a}: event {case.a_events[3]} " in broken.stdout
    unknown = await tongdao(database_url, "audit", "verify", "--ticket", "TD-20990101-000009")
    assert unknown.returncode == 2
    assert "no ticket numbered 'TD-20990101-000009'" in unknown.stdout


async def test_streaming_in_small_batches_finds_the_same(hub: Hub, case: Case) -> None:
    await edit_actor(hub, case)
    await delete_last(hub, case)
    whole = await verify_store(hub.reads)
    batched = await verify_store(hub.reads, batch_size=1)
    assert (batched.tickets_checked, batched.events_checked) == (
        whole.tickets_checked,
        whole.events_checked,
    )
    assert [str(p) for p in batched.problems] == [str(p) for p in whole.problems]
    limited = await verify_store(hub.reads, problem_limit=1)
    assert limited.problem_count == whole.problem_count == 2
    assert len(limited.problems) == 1


async def test_chain_keeps_verifying_as_the_ticket_changes(
    hub: Hub, case: Case, clock: ManualClock
) -> None:
    for minutes in (1, 2, 3):
        clock.advance(timedelta(minutes=minutes))
        async with hub.sessions() as session, session.begin():
            ticket = await get_ticket(session, case.b, for_update=True)
            await add_note(
                session, ticket, text=f"跟进 {minutes}", author="agent:li", now=clock.now()
            )
    result = await verify_store(hub.reads, ticket_number=case.b)
    assert result.ok
    assert result.events_checked == len(case.b_events) + 3
