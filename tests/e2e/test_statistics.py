"""Regulatory statistics over tickets made through the real app channel, with the injected
clock moved so some are decided in time and some late: exact counts and attainment, JSON and
CSV, by the API and the CLI; who may read them. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from hub.auth import Role
from hub.runtime import Hub
from hub.settings import ReportSettings, Settings
from hub.testing import SignedWebhookReceiver
from tests import tongdao_cli
from tests.app_pushes import app_message, push
from tests.conftest import drain
from ticket_core import ManualClock

T0 = datetime(2026, 9, 1, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai, a Tuesday
EDGE = datetime(2026, 9, 30, 17, 0, tzinfo=UTC)  # 1 October 01:00 in Shanghai
COMPLAINT = "我要投诉，信用卡被重复扣费"
CONSULTATION = "请问信用卡年费怎么收取？"
CAUSE_LABEL = "测试标签：收费"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"reports": ReportSettings(code_labels={"cause": {"C01": CAUSE_LABEL}})}
    )


@dataclass(frozen=True, slots=True)
class Scenario:
    """t1: complaint answered and resolved within hours (in time); t2: complaint answered on
    day 31 and resolved on day 32 (both late); t3: consultation never answered (overdue);
    t4: complaint at 01:00 Shanghai time on 1 October (in time); t5: complaint received an
    hour before the report (pending)."""

    t1: str
    t2: str
    t3: str
    t4: str
    t5: str


class Desk:
    """An agent working tickets through the API."""

    def __init__(self, api: httpx.AsyncClient, hub: Hub, headers: dict[str, str]) -> None:
        self.api, self.hub, self.headers = api, hub, headers

    async def reply(self, number: str) -> None:
        response = await self.api.post(
            f"/api/v1/tickets/{number}/replies",
            json={"text": "已收到，正在核实"},
            headers=self.headers,
        )
        assert response.status_code == 202, response.text
        await drain(self.hub)

    async def resolve(self, number: str) -> None:
        response = await self.api.post(
            f"/api/v1/tickets/{number}/transitions",
            json={"to": "resolved", "outcome": "resolved", "summary": "已退回重复扣款"},
            headers=self.headers,
        )
        assert response.status_code == 200, response.text


async def _open(
    api: httpx.AsyncClient,
    hub: Hub,
    clock: ManualClock,
    receiver: SignedWebhookReceiver,
    text: str,
    user: str,
) -> str:
    assert (await push(api, app_message(text, user_id=user), clock.now())).status_code == 202
    await drain(hub)
    return next(r["ticket_number"] for r in receiver.received if r["user_id"] == user)


@pytest.fixture
async def scenario(
    api: httpx.AsyncClient,
    hub: Hub,
    clock: ManualClock,
    receiver: SignedWebhookReceiver,
    make_key,
) -> Scenario:
    desk = Desk(api, hub, await make_key(Role.agent))
    clock.set(T0)
    t1 = await _open(api, hub, clock, receiver, COMPLAINT, "u-1")
    t2 = await _open(api, hub, clock, receiver, COMPLAINT, "u-2")
    t3 = await _open(api, hub, clock, receiver, CONSULTATION, "u-3")
    clock.set(T0 + timedelta(hours=1))
    await desk.reply(t1)
    clock.set(T0 + timedelta(hours=2))
    await desk.resolve(t1)
    clock.set(EDGE)
    t4 = await _open(api, hub, clock, receiver, COMPLAINT, "u-4")
    clock.advance(minutes=30)
    await desk.reply(t4)
    clock.advance(minutes=30)
    await desk.resolve(t4)
    clock.set(T0 + timedelta(days=31))
    await desk.reply(t2)
    clock.set(T0 + timedelta(days=32))
    await desk.resolve(t2)
    t5 = await _open(api, hub, clock, receiver, COMPLAINT, "u-5")
    clock.advance(hours=1)
    # The 12378 connector brings JR/T 0169 codes; the app channel does not, so set them here
    # as that connector will.
    codes = {t1: '{"business": "B01", "cause": "C01"}', t2: '{"business": "B01", "cause": "C02"}'}
    async with hub.sessions() as session, session.begin():
        for number, value in codes.items():
            await session.exec(
                sa.text(
                    "UPDATE ticket SET category_codes = :codes, category = 'cards' "
                    "WHERE number = :number"
                ),
                params={"codes": value, "number": number},
            )
    return Scenario(t1, t2, t3, t4, t5)


def counts(**given: int) -> dict[str, Any]:
    """The count columns of a report line: zeros unless given, rates derived."""
    c = {
        name: given.get(name, 0)
        for name in (
            "received",
            "decided",
            "first_response_in_time",
            "first_response_late",
            "first_response_pending",
            "resolution_in_time",
            "resolution_late",
            "resolution_pending",
            "decided_late",
        )
    }

    def rate(part: int, whole: int) -> float | None:
        return round(part / whole, 4) if whole else None

    return {
        "received": c["received"],
        "decided": c["decided"],
        "open": c["received"] - c["decided"],
        "first_response_in_time": c["first_response_in_time"],
        "first_response_late": c["first_response_late"],
        "first_response_pending": c["first_response_pending"],
        "first_response_attainment": rate(
            c["first_response_in_time"], c["first_response_in_time"] + c["first_response_late"]
        ),
        "resolution_in_time": c["resolution_in_time"],
        "resolution_late": c["resolution_late"],
        "resolution_pending": c["resolution_pending"],
        "resolution_attainment": rate(
            c["resolution_in_time"], c["resolution_in_time"] + c["resolution_late"]
        ),
        "decided_in_time": c["resolution_in_time"],
        "decided_late": c["decided_late"],
        "decided_in_time_share": rate(
            c["resolution_in_time"], c["resolution_in_time"] + c["decided_late"]
        ),
    }


# In September (Shanghai time): t1 in time, t2 late, t3 overdue; in October: t4 in time, t5
# not yet due.
SEPTEMBER_COMPLAINTS = counts(
    received=2,
    decided=2,
    first_response_in_time=1,
    first_response_late=1,
    resolution_in_time=1,
    resolution_late=1,
    decided_late=1,
)
SEPTEMBER_CONSULTATIONS = counts(received=1, resolution_late=1)
OCTOBER_COMPLAINTS = counts(
    received=2,
    decided=1,
    first_response_in_time=1,
    first_response_pending=1,
    resolution_in_time=1,
    resolution_pending=1,
)


async def _statistics(
    api: httpx.AsyncClient, headers: dict[str, str], **params: Any
) -> httpx.Response:
    query = {"from": "2026-09-01", "to": "2026-10-31", **params}
    return await api.get("/api/v1/reports/statistics", params=query, headers=headers)


async def test_monthly_statistics_count_received_decided_and_attainment_exactly(
    api: httpx.AsyncClient, scenario: Scenario, make_key, clock: ManualClock
) -> None:
    response = await _statistics(api, await make_key(Role.supervisor), group="month", by="kind")
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["as_of"] == clock.now().isoformat()
    assert (report["group"], report["timezone"], report["dimensions"]) == (
        "month",
        "Asia/Shanghai",
        ["kind"],
    )
    assert report["rows"] == [
        {"period": "2026-09", "kind": "complaint", **SEPTEMBER_COMPLAINTS},
        {"period": "2026-09", "kind": "consultation", **SEPTEMBER_CONSULTATIONS},
        {"period": "2026-10", "kind": "complaint", **OCTOBER_COMPLAINTS},
    ]
    assert report["periods"] == [
        {
            "period": "2026-09",
            "start": "2026-09-01",
            "end": "2026-09-30",
            **counts(
                received=3,
                decided=2,
                first_response_in_time=1,
                first_response_late=1,
                resolution_in_time=1,
                resolution_late=2,
                decided_late=1,
            ),
        },
        {"period": "2026-10", "start": "2026-10-01", "end": "2026-10-31", **OCTOBER_COMPLAINTS},
    ]
    assert report["total"] == counts(
        received=5,
        decided=3,
        first_response_in_time=2,
        first_response_late=1,
        first_response_pending=1,
        resolution_in_time=2,
        resolution_late=2,
        resolution_pending=1,
        decided_late=1,
    )
    assert report["total"]["first_response_attainment"] == 0.6667
    assert report["total"]["resolution_attainment"] == 0.5
    assert report["total"]["decided_in_time_share"] == 0.6667


async def test_the_reporting_time_zone_decides_the_period_of_a_ticket_near_midnight(
    api: httpx.AsyncClient, scenario: Scenario, make_key
) -> None:
    headers = await make_key(Role.auditor)
    shanghai = (await _statistics(api, headers, by="kind")).json()["periods"]
    utc = (await _statistics(api, headers, by="kind", tz="UTC")).json()["periods"]
    assert [p["received"] for p in shanghai] == [3, 2]
    assert [p["received"] for p in utc] == [4, 1]


async def test_breakdown_by_business_category_and_cause_codes_with_configured_labels(
    api: httpx.AsyncClient, scenario: Scenario, make_key
) -> None:
    response = await _statistics(
        api,
        await make_key(Role.auditor),
        group="quarter",
        by=["category", "business_code", "cause_code"],
    )
    report = response.json()
    assert [p["period"] for p in report["periods"]] == ["2026-Q3", "2026-Q4"]
    keys = ("period", "category", "business_code", "business_label", "cause_code", "cause_label")
    # t1 and t2 carry the codes set above; the others the classifier's own reading of their
    # text (a card fee: cards, B01, C01), filled in because the app channel gives none.
    assert [(tuple(r[k] for k in keys), r["received"]) for r in report["rows"]] == [
        (("2026-Q3", "cards", "B01", None, "C01", CAUSE_LABEL), 2),
        (("2026-Q3", "cards", "B01", None, "C02", None), 1),
        (("2026-Q4", "cards", "B01", None, "C01", CAUSE_LABEL), 2),
    ]
    first = report["rows"][0]
    assert (first["resolution_in_time"], first["decided_in_time_share"]) == (1, 1.0)


async def test_daily_and_weekly_periods_start_at_local_midnight_and_monday(
    api: httpx.AsyncClient, scenario: Scenario, make_key
) -> None:
    headers = await make_key(Role.admin)
    daily = (await _statistics(api, headers, group="day", by="channel")).json()
    assert len(daily["periods"]) == 61
    busy = [(p["period"], p["received"]) for p in daily["periods"] if p["received"]]
    assert busy == [("2026-09-01", 3), ("2026-10-01", 1), ("2026-10-03", 1)]
    weekly = (await _statistics(api, headers, group="week", by="channel")).json()
    assert weekly["periods"][0] == {
        **weekly["periods"][0],
        "period": "2026-W36",
        "start": "2026-09-01",
        "end": "2026-09-06",
    }
    assert {r["channel"] for r in weekly["rows"]} == {"app"}


async def test_csv_has_group_period_and_total_lines_readable_by_spreadsheets(
    api: httpx.AsyncClient, scenario: Scenario, make_key
) -> None:
    response = await _statistics(api, await make_key(Role.auditor), by="kind", format="csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert "statistics-2026-09-01-2026-10-31-month.csv" in response.headers["content-disposition"]
    assert response.content.startswith("\ufeff".encode())
    lines = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [(r["level"], r["period"], r["kind"], r["received"]) for r in lines] == [
        ("group", "2026-09", "complaint", "2"),
        ("group", "2026-09", "consultation", "1"),
        ("group", "2026-10", "complaint", "2"),
        ("period", "2026-09", "", "3"),
        ("period", "2026-10", "", "2"),
        ("total", "", "", "5"),
    ]
    consultations = lines[1]
    assert consultations["first_response_attainment"] == ""
    assert consultations["resolution_attainment"] == "0.0"
    total = lines[-1]
    assert (total["period_start"], total["period_end"]) == ("2026-09-01", "2026-10-31")
    assert (total["decided"], total["open"], total["decided_in_time_share"]) == ("3", "2", "0.6667")


@pytest.mark.parametrize("role", [Role.agent, Role.integrator])
async def test_agents_and_integrators_may_not_read_statistics(
    api: httpx.AsyncClient, make_key, role: Role
) -> None:
    response = await _statistics(api, await make_key(role))
    assert response.status_code == 403
    assert response.json()["detail"] == (
        f"role {role.value} may not do this (allowed: auditor, supervisor, admin)"
    )


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"from": "2026-10-31", "to": "2026-09-01"}, "the range is empty: from 2026-10-31"),
        ({"tz": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        (
            {"from": "2020-01-01", "to": "2026-12-31", "group": "day"},
            "gives 2557 periods, more than 1000",
        ),
    ],
)
async def test_a_report_that_cannot_be_made_is_422_naming_why(
    api: httpx.AsyncClient, make_key, params: dict[str, str], detail: str
) -> None:
    response = await _statistics(api, await make_key(Role.auditor), **params)
    assert response.status_code == 422
    assert detail in response.json()["detail"]


async def test_unknown_grouping_or_dimension_is_422(api: httpx.AsyncClient, make_key) -> None:
    headers = await make_key(Role.auditor)
    assert (await _statistics(api, headers, group="year")).status_code == 422
    assert (await _statistics(api, headers, by="customer")).status_code == 422


# --- the CLI ------------------------------------------------------------------------------


async def tongdao(
    database_url: str, cwd: Path, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        tongdao_cli.run, cwd, *args, TONGDAO_DATABASE__URL=database_url, **env
    )


async def test_cli_writes_json_and_csv_files_with_labels_from_the_config_file(
    scenario: Scenario, database_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "tongdao.toml"
    config.write_text('[reports.code_labels.cause]\n"C02" = "测试标签：扣款"\n', encoding="utf-8")
    range_ = ("--from", "2026-09-01", "--to", "2026-10-31")
    written = await tongdao(
        database_url,
        tmp_path,
        "report",
        "statistics",
        *range_,
        "--group",
        "month",
        "--by",
        "kind",
        "--by",
        "cause_code",
        "--format",
        "json",
        "-o",
        "report.json",
        TONGDAO_CONFIG=str(config),
    )
    assert written.returncode == 0, written.stdout + written.stderr
    assert "wrote statistics for 2 periods, 5 tickets, to report.json" in written.stderr
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    # The CLI reads the system clock: long after the scenario, t5 is overdue too.
    assert report["total"] == counts(
        received=5,
        decided=3,
        first_response_in_time=2,
        first_response_late=2,
        resolution_in_time=2,
        resolution_late=3,
        decided_late=1,
    )
    labelled = [r for r in report["rows"] if r["cause_code"] == "C02"]
    assert [(r["kind"], r["cause_label"], r["received"]) for r in labelled] == [
        ("complaint", "测试标签：扣款", 1)
    ]

    csv_file = await tongdao(
        database_url, tmp_path, "report", "statistics", *range_, "-o", "report.csv"
    )
    assert csv_file.returncode == 0, csv_file.stderr
    raw = (tmp_path / "report.csv").read_bytes()
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[-1]["level"] == "total" and rows[-1]["received"] == "5"
    assert {"kind", "channel", "category", "business_code", "cause_code"} <= set(rows[0])

    to_stdout = await tongdao(
        database_url, tmp_path, "report", "statistics", *range_, "--by", "channel"
    )
    assert to_stdout.returncode == 0
    assert to_stdout.stdout.splitlines()[0].startswith("level,period,period_start,period_end,")
    assert "group,2026-09,2026-09-01,2026-09-30,app,3," in to_stdout.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--from", "2026-09-31", "--to", "2026-10-31"), "--from '2026-09-31' is not a date"),
        (("--from", "2026-09-01", "--to", "2026-10-31", "--group", "year"), "--group 'year'"),
        (("--from", "2026-09-01", "--to", "2026-10-31", "--by", "customer"), "--by 'customer'"),
        (("--from", "2026-09-01", "--to", "2026-10-31", "--format", "xlsx"), "--format 'xlsx'"),
        (("--from", "2026-10-01", "--to", "2026-09-01"), "the range is empty"),
    ],
)
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # no backend's concern
async def test_cli_refuses_bad_arguments_naming_them(
    database_url: str, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result = await tongdao(database_url, tmp_path, "report", "statistics", *args)
    assert result.returncode == 2
    assert message in result.stderr
