"""``tongdao import tickets`` against real SQLite and PostgreSQL: counts, rejects, dedup on
rerun, resume after an interruption, audit chains that verify, personal data masked, customers
found by their identities."""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.settings import DatabaseSettings
from hub.store import create_engine, read_session_factory, session_factory
from hub.ticket_import import ImportInterrupted, import_tickets
from ticket_core.audit import verify_store
from ticket_core.customers import identity_hash, resolve_customer
from ticket_core.intake import IdentityClaim
from ticket_core.policies import DEFAULT_BOOK

KEY = b"test-identity-key"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
HEADINGS = [
    "source_id",
    "number",
    "kind",
    "status",
    "channel",
    "created_at",
    "customer_name",
    "customer_phone",
    "message_at",
    "message_direction",
    "message_text",
    "legacy_notes",
]


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    instance = create_engine(DatabaseSettings(url=database_url))
    yield instance
    await instance.dispose()


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(HEADINGS)
        writer.writerows(rows)
    return path


GOOD_AND_BAD = [
    # A closed complaint, two messages, its own number kept.
    ["A1", "TD-20250301-000007", "投诉", "closed", "phone", "2025-03-01 09:00", "张三",
     "13812345678", "2025-03-01 09:00", "in", "信用卡重复扣费，卡号6222021234567890", "x"],
    ["A1", "", "", "", "", "", "", "", "2025-03-02 10:00", "out", "已退款", ""],
    # An open complaint of the same customer: its clocks run from its receipt.
    ["A2", "OLD-77", "complaint", "in_progress", "app", "2026-11-20 09:00", "张三",
     "13812345678", "", "", "转账失败", ""],
    # Bad: no kind, a date that is not one; both reasons given.
    ["B1", "", "", "closed", "web", "someday", "", "13900000000", "", "", "hello", ""],
    # Bad: no identity.
    ["B2", "", "suggestion", "closed", "web", "2025-01-01", "", "", "", "", "more ATMs", ""],
    # A third good one, a new customer.
    ["A3", "", "consultation", "resolved", "wechat", "2025-05-05 08:00", "Li Si",
     "13700001111", "", "", "利率多少", ""],
]  # fmt: skip


async def run(engine: AsyncEngine, path: Path, **kw: object) -> object:
    options: dict[str, object] = {
        "source": "legacy",
        "identity_key": KEY,
        "book": DEFAULT_BOOK,
        "now": NOW,
        "actor": "cli:test",
        **kw,
    }
    return await import_tickets(engine, path, **options)  # type: ignore[arg-type]


async def count(engine: AsyncEngine, table: str, where: str = "") -> int:
    async with engine.connect() as conn:
        query = f"SELECT count(*) FROM {table} {where}"
        return (await conn.execute(sa.text(query))).scalar_one()


async def verify(engine: AsyncEngine) -> None:
    result = await verify_store(read_session_factory(engine))
    assert result.ok, [str(p) for p in result.problems]
    assert result.tickets_checked == await count(engine, "ticket")


async def test_good_tickets_load_bad_ones_go_to_the_reject_file_with_reasons(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "history.csv", GOOD_AND_BAD)
    report = await run(engine, path)
    assert (report.tickets, report.loaded, report.duplicate, report.rejected) == (5, 3, 0, 2)
    assert report.messages == 4
    assert report.ignored_columns == ("legacy_notes",)

    with report.rejects_path.open(encoding="utf-8-sig") as handle:
        rejected = list(csv.reader(handle))
    assert rejected[0][:3] == ["line", "reasons", "source_id"]
    assert [r[2] for r in rejected[1:]] == ["B1", "B2"]
    assert "kind: missing" in rejected[1][1] and "created_at: 'someday'" in rejected[1][1]
    assert "customer: no identity" in rejected[2][1]

    async with engine.connect() as conn:
        tickets = {
            r.source_id: r
            for r in await conn.execute(
                sa.text(
                    "SELECT id, number, status, customer_id, sla_policy, source_system, "
                    "source_id, resolution_due_at FROM ticket"
                )
            )
        }
        customers = (
            await conn.execute(sa.text("SELECT id, display_name, phone_masked FROM customer"))
        ).all()
        identities = (
            await conn.execute(sa.text("SELECT kind, value_hash, masked FROM customer_identity"))
        ).all()
        clocks = (await conn.execute(sa.text("SELECT ticket_id, name FROM sla_clock"))).all()
        texts = (await conn.execute(sa.text("SELECT text FROM message"))).scalars().all()
    assert tickets["A1"].number == "TD-20250301-000007"  # its own number, valid and free
    assert tickets["A2"].number == f"TD-20261124-{tickets['A2'].id:06d}"  # OLD-77: a new one
    # One customer for A1 and A2 (the same phone), another for A3.
    assert tickets["A1"].customer_id == tickets["A2"].customer_id != tickets["A3"].customer_id
    assert sorted((c.display_name, c.phone_masked) for c in customers) == [
        ("L* S*", "137****1111"),
        ("张*", "138****5678"),
    ]
    # Identities are keyed hashes with a mask, never the number itself.
    assert ("phone", identity_hash(KEY, "phone", "13812345678"), "138****5678") in identities
    assert not any("13812345678" in str(tuple(i)) for i in identities)
    # Only the open ticket has clocks; closed and resolved history carries none.
    assert {t for t, _ in clocks} == {tickets["A2"].id}
    assert tickets["A2"].sla_policy and tickets["A2"].resolution_due_at is not None
    assert tickets["A1"].sla_policy is None
    # Message text is stored as every channel stores it (masked when read by an auditor).
    assert "信用卡重复扣费，卡号6222021234567890" in texts
    await verify(engine)


async def test_a_rerun_or_a_second_file_with_the_same_tickets_stores_nothing_twice(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "history.csv", GOOD_AND_BAD)
    await run(engine, path)
    finished = await run(engine, path)
    assert finished.already_finished is not None and finished.loaded == 3
    again = await run(engine, path, restart=True)
    assert (again.loaded, again.duplicate, again.rejected) == (0, 3, 2)
    other = tmp_path / "overlap.jsonl"
    other.write_text(
        json.dumps(
            {
                "source_id": "A1",
                "kind": "complaint",
                "channel": "phone",
                "created_at": "2025-03-01 09:00",
                "customer_phone": "13812345678",
                "messages": [{"text": "again"}],
            },
            ensure_ascii=False,
        )
        + "\n"
        + json.dumps(
            {
                "source_id": "A9",
                "number": "TD-20250301-000007",  # taken by A1: A9 gets a number of its own
                "kind": "complaint",
                "channel": "phone",
                "created_at": "2025-03-01 09:00",
                "customer_phone": "13812345678",
                "messages": [{"text": "new one"}],
            },
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )
    third = await run(engine, other)
    assert (third.loaded, third.duplicate) == (1, 1)
    assert await count(engine, "ticket") == 4
    assert await count(engine, "customer") == 2
    assert await count(engine, "ticket", "WHERE number = 'TD-20250301-000007'") == 1
    await verify(engine)


async def test_an_interrupted_import_resumes_to_exactly_the_whole_file(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    path = tmp_path / "many.jsonl"
    lines = []
    for n in range(230):
        record: dict[str, object] = {
            "source_id": f"T{n}",
            "kind": "complaint",
            "channel": "app",
            "created_at": "2025-06-01T08:00:00+08:00",
            "customer_app_user": f"u{n % 17}",
            "messages": [{"text": f"问题 {n}"}, {"text": "好的", "direction": "out"}],
        }
        if n % 50 == 7:
            record["kind"] = "rant"  # rejected: one per 50
        lines.append(json.dumps(record, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    with pytest.raises(ImportInterrupted):
        await run(engine, path, batch_size=40, stop_after=2)
    assert await count(engine, "ticket") == 78  # two batches of 40, two rejected
    resumed = await run(engine, path, batch_size=40)
    assert resumed.resumed_at_line == 81
    assert (resumed.tickets, resumed.loaded, resumed.duplicate, resumed.rejected) == (
        230,
        225,
        0,
        5,
    )
    assert await count(engine, "ticket") == 225
    assert await count(engine, "message") == 450
    assert await count(engine, "customer") == 17
    rejects = resumed.rejects_path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(r)["line"] for r in rejects] == [8, 58, 108, 158, 208]
    await verify(engine)


async def test_imported_tickets_join_the_customer_a_channel_already_knows(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        known = await resolve_customer(
            session,
            KEY,
            (IdentityClaim("email", "li.si@example.com", "l***@example.com", True),),
            display_name="L* S*",
            phone_masked=None,
            now=NOW,
        )
    path = tmp_path / "one.jsonl"
    path.write_text(
        json.dumps(
            {
                "source_id": "E1",
                "kind": "consultation",
                "channel": "email",
                "created_at": "2025-02-02",
                "customer_email": "Li.Si@example.com",
                "customer_phone": "13600001234",
                "messages": [{"text": "hello"}],
            }
        )
        + "\n",
        encoding="utf-8",
    )
    report = await run(engine, path)
    assert report.loaded == 1 and report.customers_created == 0
    async with engine.connect() as conn:
        owner = (await conn.execute(sa.text("SELECT customer_id FROM ticket"))).scalar_one()
        kinds = (
            await conn.execute(
                sa.text("SELECT kind FROM customer_identity WHERE customer_id = :c ORDER BY kind"),
                {"c": known.id},
            )
        ).scalars()
        assert owner == known.id
        assert list(kinds) == ["email", "phone"]  # the new phone remembered on that customer
