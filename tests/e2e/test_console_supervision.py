"""The supervisors' console pages over real HTTP, signed in as real staff accounts: the review
queue with who proposed each outcome, escalations, and the dashboard whose CSV numbers match
a known set of tickets (volume by channel and kind in the reporting time zone, backlog by age
as the clock moves, resolution attainment by team, top categories). Agents are refused. On
SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from hub.app import create_app
from hub.auth import Role
from hub.runtime import Hub
from hub.settings import Settings
from hub.testing import serving
from tests.console_accounts import add_staff, sign_in
from tests.console_desk import Desk
from ticket_core import (
    Kind,
    ManualClock,
    Outcome,
    Status,
    TransitionRequest,
)

T0 = datetime(2026, 9, 1, 1, 0, tzinfo=UTC)  # 09:00 on 1 September in Shanghai
RANGE = {"from": "2026-09-01", "to": "2026-09-10", "group": "day"}

Console = Callable[[Role], Awaitable[httpx.AsyncClient]]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database={"url": database_url},
        worker={"in_process": False},
        # Plain HTTP on loopback; sessions outlast the weeks the tests move the clock by.
        console={"secure_cookie": False, "session_hours": 24 * 60, "idle_minutes": 60 * 24 * 60},
    )


@pytest.fixture
async def base_url(hub: Hub) -> AsyncIterator[str]:
    async with serving(create_app(hub=hub, run_workers=False)) as url:
        yield url


@pytest.fixture
async def console(hub: Hub, base_url: str) -> AsyncIterator[Console]:
    """Sign in a new account of a role, each in its own client (its own cookies)."""
    clients: list[httpx.AsyncClient] = []

    async def signed_in(role: Role) -> httpx.AsyncClient:
        username = await add_staff(hub, f"{role.value}-{len(clients)}", role, language="zh-CN")
        client = httpx.AsyncClient(base_url=base_url, timeout=10)
        clients.append(client)
        answer = await sign_in(client, username)
        assert answer.status_code == 303, answer.text
        return client

    yield signed_in
    for client in clients:
        await client.aclose()


@dataclass(frozen=True, slots=True)
class Tickets:
    """a, b: app, 1 Sep (cards; a met its clock, b breached it); f: app, 1 Sep 17:00 UTC, so
    2 Sep in Shanghai (cards, met); c: wechat, 2 Sep (wealth, met); d: email suggestion,
    3 Sep, uncategorised, open; e: wechat complaint, 6 Sep (cards), rejected and under review.
    Ten days in, d and e have breached and sit in the escalation queue."""

    a: str
    b: str
    c: str
    d: str
    e: str
    f: str


@pytest.fixture
async def tickets(hub: Hub, clock: ManualClock) -> Tickets:
    desk = Desk(hub, clock)
    clock.set(T0)
    a = await desk.receive("app", Kind.complaint, "信用卡", "cards", "重复扣费")
    b = await desk.receive("app", Kind.consultation, "信用卡", "cards", "年费怎么收")
    clock.set(T0 + timedelta(hours=2))
    await desk.resolve(a)
    clock.set(T0 + timedelta(hours=16))
    f = await desk.receive("app", Kind.consultation, "信用卡", "cards", "额度查询")
    clock.set(T0 + timedelta(hours=17))
    await desk.resolve(f)
    clock.set(T0 + timedelta(hours=30))  # b's 24-hour resolution clock has run out
    await desk.resolve(b)
    clock.set(T0 + timedelta(days=1))
    c = await desk.receive("wechat", Kind.complaint, "理财", "wealth", "收益与宣传不符")
    clock.advance(hours=1)
    await desk.resolve(c)
    clock.set(T0 + timedelta(days=2))
    d = await desk.receive("email", Kind.suggestion, None, None, "建议延长营业时间")
    clock.set(T0 + timedelta(days=5))
    e = await desk.receive("wechat", Kind.complaint, "信用卡", "cards", "手机号13812345678被盗刷")
    clock.advance(hours=1)
    await desk.move(
        e,
        TransitionRequest(Status.in_progress),
        TransitionRequest(Status.under_review, Outcome.rejected, "交易为本人操作，不予退款"),
        actor="agent:alice",
    )
    clock.set(T0 + timedelta(days=10))
    await hub.scheduler.tick()
    return Tickets(a, b, c, d, e, f)


async def _csv(client: httpx.AsyncClient, dataset: str, **params: str) -> list[dict[str, str]]:
    response = await client.get("/console/dashboard.csv", params={"dataset": dataset, **params})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


def _by(rows: list[dict[str, str]], key: str) -> dict[str, dict[str, str]]:
    return {row[key]: row for row in rows}


async def test_dashboard_csv_counts_received_tickets_by_channel_and_kind_per_local_day(
    console: Console, tickets: Tickets
) -> None:
    supervisor = await console(Role.supervisor)
    channels = _by(await _csv(supervisor, "volume_channel", **RANGE), "period")
    assert list(channels) == [f"2026-09-{day:02d}" for day in range(1, 11)]
    assert channels["2026-09-01"] == {
        "period": "2026-09-01",
        "period_start": "2026-09-01",
        "period_end": "2026-09-01",
        "app": "2",
        "email": "0",
        "wechat": "0",
        "total": "2",
    }
    # f arrived at 17:00 UTC on 1 September: 2 September in Shanghai.
    assert (channels["2026-09-02"]["app"], channels["2026-09-02"]["wechat"]) == ("1", "1")
    assert channels["2026-09-03"]["email"] == "1"
    assert channels["2026-09-06"]["wechat"] == "1"
    assert sum(int(row["total"]) for row in channels.values()) == 6

    kinds = _by(await _csv(supervisor, "volume_kind", **RANGE), "period")
    assert {k: kinds["2026-09-02"][k] for k in ("complaint", "consultation", "suggestion")} == {
        "complaint": "1",
        "consultation": "1",
        "suggestion": "0",
    }
    weeks = await _csv(supervisor, "volume_kind", **(RANGE | {"group": "week"}))
    assert [(w["period"], w["complaint"], w["total"]) for w in weeks] == [
        ("2026-W36", "3", "6"),
        ("2026-W37", "0", "0"),
    ]


async def test_dashboard_ranks_categories_and_measures_attainment_per_team(
    console: Console, tickets: Tickets
) -> None:
    supervisor = await console(Role.supervisor)
    categories = await _csv(supervisor, "categories", **RANGE)
    assert [(c["category"], c["complaint"], c["consultation"], c["total"]) for c in categories] == [
        ("信用卡", "2", "2", "4"),
        ("", "0", "0", "1"),
        ("理财", "1", "0", "1"),
    ]
    attainment = await _csv(supervisor, "attainment", **RANGE)
    # Decided in the range: cards a and f met, b breached; wealth c met. Lowest first.
    assert attainment == [
        {"team": "cards", "met": "2", "breached": "1", "total": "3", "met_share": "0.6667"},
        {"team": "wealth", "met": "1", "breached": "0", "total": "1", "met_share": "1.0000"},
    ]
    later = await _csv(supervisor, "attainment", **(RANGE | {"from": "2026-09-03"}))
    assert later == []


async def test_dashboard_page_draws_every_chart_within_the_content_policy(
    console: Console, tickets: Tickets
) -> None:
    supervisor = await console(Role.supervisor)
    page = await supervisor.get("/console/dashboard", params=RANGE)
    assert page.status_code == 200, page.text
    html = page.text
    assert "看板" in html  # the account speaks Chinese
    for name in ("volume_channel", "volume_kind", "backlog", "attainment", "categories"):
        assert f'data-testid="figure-{name}"' in html
        assert f"dataset={name}" in html
    assert html.count('<svg class="chart"') == 5
    assert html.count('role="img"') == 5
    assert "<title>信用卡 · " in html  # a bar's hover text names its category
    assert "67% · 3" in html  # cards' attainment beside its bar
    assert not re.search(r"\sstyle=|<style|<script>", html)
    assert "dashboard.css" in html
    css = await supervisor.get("/console/static/dashboard.css")
    assert css.status_code == 200

    wrong = await supervisor.get("/console/dashboard", params={"from": "2026-09-10", "to": "x"})
    assert wrong.status_code == 422
    assert "日期格式应如 2026-09-01" in wrong.text


async def test_backlog_buckets_open_tickets_by_age_as_the_clock_moves(
    console: Console, tickets: Tickets, clock: ManualClock
) -> None:
    supervisor = await console(Role.supervisor)

    async def backlog() -> dict[str, str]:
        rows = await _csv(supervisor, "backlog", **RANGE)
        return {row["age"]: row["total"] for row in rows}

    # Ten days in, d (suggestion) is 8 days old and e (complaint) 5.
    assert await backlog() == {
        "lt_1d": "0",
        "1_3d": "0",
        "3_7d": "1",
        "7_15d": "1",
        "15_30d": "0",
        "gt_30d": "0",
    }
    clock.set(T0 + timedelta(days=21))
    assert (await backlog())["15_30d"] == "2"
    clock.set(T0 + timedelta(days=33))
    rows = await _csv(supervisor, "backlog", **RANGE)
    assert _by(rows, "age")["gt_30d"] == {
        "age": "gt_30d",
        "complaint": "0",
        "consultation": "0",
        "suggestion": "1",
        "total": "1",
    }
    assert _by(rows, "age")["15_30d"]["complaint"] == "1"


async def test_review_queue_lists_the_outcome_under_review_with_its_proposer(
    console: Console, tickets: Tickets
) -> None:
    supervisor = await console(Role.supervisor)
    page = await supervisor.get("/console/review")
    assert page.status_code == 200, page.text
    row = _row(page.text, f"review-{tickets.e}")
    assert f'href="/console/tickets/{tickets.e}"' in row
    assert "agent:alice" in row
    assert "交易为本人操作，不予退款" in row
    assert "13812345678" not in page.text  # the subject is masked
    assert "2026-09-06 10:00" in row  # proposed at, Shanghai time
    for other in (tickets.a, tickets.d):
        assert other not in page.text


async def test_escalations_list_open_breached_tickets_earliest_due_first(
    console: Console, tickets: Tickets
) -> None:
    supervisor = await console(Role.supervisor)
    page = await supervisor.get("/console/escalations")
    assert page.status_code == 200, page.text
    listed = re.findall(r'data-testid="escalation-([A-Z0-9-]+)"', page.text)
    # b breached too but is decided; d was due on 4 Sep, e on 9 Sep.
    assert listed == [tickets.d, tickets.e]
    assert "5天 0小时" in _row(page.text, f"escalation-{tickets.d}")  # overdue since 5 Sep 01:00


async def test_agents_are_refused_and_auditors_see_only_the_dashboard(
    console: Console, tickets: Tickets
) -> None:
    agent = await console(Role.agent)
    for path in ("/console/review", "/console/escalations", "/console/dashboard"):
        assert (await agent.get(path)).status_code == 403
    refused = await agent.get("/console/dashboard.csv", params={"dataset": "backlog"})
    assert refused.status_code == 403
    assert "text/csv" not in refused.headers["content-type"]

    auditor = await console(Role.auditor)
    assert (await auditor.get("/console/dashboard")).status_code == 200
    assert (await auditor.get("/console/review")).status_code == 403
    assert (
        await auditor.get("/console/dashboard.csv", params={"dataset": "nope"})
    ).status_code == 422


def _row(html: str, testid: str) -> str:
    found = re.search(rf'<tr data-testid="{testid}">(.*?)</tr>', html, re.S)
    assert found is not None, testid
    return found[1]
