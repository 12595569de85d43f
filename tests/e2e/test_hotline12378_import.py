"""``tongdao import hotline12378 FILE``: the regulator's sheets (CSV in GB18030 or UTF-8, XLSX,
JSON Lines) loaded through the same envelope store as pushes, on SQLite and PostgreSQL; the
CLI in a real subprocess where an operator would run it."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import func, select

from connectors.hotline12378.models import CHINA
from hub.importing import ImportFailed, import_path, importer_for, load_mapping, mapping_from
from hub.runtime import Hub
from hub.settings import Settings
from hub.store import Envelope
from tests import tongdao_cli
from tests.conftest import drain
from tests.hotline_transfers import BEIJING, hotline_config, push, transfer
from ticket_core import ManualClock, Ticket

FEEDBACK_URL = "http://127.0.0.1:9/feedback"
HEADINGS = [
    "转办编号",
    "转办类型",
    "监管机构",
    "受理时间",
    "转办时间",
    "办理时限",
    "投诉人",
    "联系电话",
    "证件号码",
    "被投诉机构",
    "投诉事项",
    "诉求",
]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database={"url": database_url},
        worker={"in_process": False},
        connectors={"hotline12378": hotline_config(FEEDBACK_URL)},
    )


def _row(number: int, **changes: Any) -> dict[str, Any]:
    row = {
        "转办编号": f"京金转〔2026〕{number:04d}号",
        "转办类型": "转办",
        "监管机构": "北京监管局",
        "受理时间": "2026-11-20 09:30",
        "转办时间": "2026/11/20 14:00",
        "办理时限": "2026-12-05",
        "投诉人": "刘䶮",
        "联系电话": f"1380000{number:04d}",
        "证件号码": "",
        "被投诉机构": "某银行北京分行朝阳支行",
        "投诉事项": f"第 {number} 件：理财产品销售时未揭示风险。",
        "诉求": "赔偿损失",
    }
    row.update(changes)
    return row


def _csv(rows: list[dict[str, Any]], headings: list[str] = HEADINGS) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(headings)
    for row in rows:
        writer.writerow([row.get(h, "") for h in headings])
    return out.getvalue()


def _sheet_with_two_bad_rows() -> list[dict[str, Any]]:
    return [
        _row(1),
        _row(2),
        _row(3, 联系电话="请回电"),
        _row(4),
        _row(5, 投诉事项="", 受理时间="昨天上午"),
    ]


async def _count(hub: Hub, model: type) -> int:
    async with hub.sessions() as session:
        return (await session.exec(select(func.count()).select_from(model))).one()


# --- the CLI, as an operator runs it -------------------------------------------------------


def _cli(tmp_path: Path, database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "tongdao.toml"
    if not config.exists():
        lines = ["[connectors.hotline12378.branches.beijing]"]
        branch = hotline_config(FEEDBACK_URL)["branches"]["beijing"]
        lines += [f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in branch.items()]
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tongdao_cli.run(
        tmp_path, *args, timeout=120, TONGDAO_CONFIG=str(config), TONGDAO_DATABASE__URL=database_url
    )


async def _stored(database_url: str) -> list[Envelope]:
    from hub.settings import DatabaseSettings
    from hub.store import create_engine, session_factory

    engine = create_engine(DatabaseSettings(url=database_url))
    try:
        async with session_factory(engine)() as session:
            return list((await session.exec(select(Envelope).order_by(Envelope.id))).all())
    finally:
        await engine.dispose()


@pytest.mark.slow
async def test_gb18030_csv_with_two_bad_rows_loads_the_rest_and_writes_the_rejects(
    tmp_path: Path, database_url: str
) -> None:
    sheet = tmp_path / "转办清单.csv"
    sheet.write_bytes(_csv(_sheet_with_two_bad_rows()).encode("gb18030"))

    first = _cli(tmp_path, database_url, "import", "hotline12378", str(sheet))
    assert first.returncode == 1, first.stdout + first.stderr
    assert "(csv, gb18030): 5 row(s)" in first.stdout
    assert "loaded 3, duplicate 0, rejected 2" in first.stdout
    rejects = tmp_path / "转办清单.rejects.csv"
    assert str(rejects.name) in first.stdout.replace("\n", "")
    with rejects.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["row", "reasons", *HEADINGS]
    assert [r[0] for r in rows[1:]] == ["4", "6"]
    assert "complainant.phone (联系电话)" in rows[1][1]
    assert rows[1][2:] == [_row(3, 联系电话="请回电")[h] for h in HEADINGS]
    assert "received_at (受理时间): '昨天上午' is not a date and time" in rows[2][1]
    assert "summary (投诉事项)" in rows[2][1]

    stored = await _stored(database_url)
    assert [e.external_id for e in stored] == [_row(n)["转办编号"] for n in (1, 2, 4)]
    assert stored[0].meta == {
        "branch": "beijing",
        "source": "import",
        "file": "转办清单.csv",
        "row": 2,
    }
    first_transfer = json.loads(stored[0].body)
    assert first_transfer["received_at"] == "2026-11-20T09:30:00+08:00"
    assert first_transfer["complainant"]["name"] == "刘䶮"

    again = _cli(tmp_path, database_url, "import", "hotline12378", str(sheet))
    assert again.returncode == 1
    assert "loaded 0, duplicate 3, rejected 2" in again.stdout
    assert [e.id for e in await _stored(database_url)] == [e.id for e in stored]


@pytest.mark.slow
async def test_a_sheet_missing_a_required_column_is_refused_before_anything_is_stored(
    tmp_path: Path, database_url: str
) -> None:
    sheet = tmp_path / "bank.csv"
    headings = [h for h in HEADINGS if h != "转办类型"]
    sheet.write_text(_csv([_row(1)], headings), encoding="utf-8")
    refused = _cli(tmp_path, database_url, "import", "hotline12378", str(sheet))
    assert refused.returncode == 2
    assert "no column for transfer_type (转办类型)" in refused.stdout
    assert await _stored(database_url) == []
    loaded = _cli(
        tmp_path, database_url, "import", "hotline12378", str(sheet), "--set", "transfer_type=转送"
    )
    assert loaded.returncode == 0, loaded.stdout
    assert "loaded 1, duplicate 0, rejected 0" in loaded.stdout


# --- in-process, through the hub's envelope store ------------------------------------------


async def _import(hub: Hub, path: Path, **options: Any) -> Any:
    return await import_path(
        importer_for(hub.registry, "hotline12378"), hub.envelopes, path, **options
    )


async def test_xlsx_sheet_loads_with_excel_typed_cells_and_clocks_from_receipt(
    hub: Hub, clock: ManualClock, tmp_path: Path
) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "转办"
    sheet.append(["说明：监管转办清单（2026-11-20）"])  # a title above the headings is common
    sheet.append([])
    sheet.append([*HEADINGS, "客户标签", "呼叫编号", "备注"])
    received = datetime(2026, 11, 20, 9, 30)
    common = (BEIJING, received, datetime(2026, 11, 20, 9, 45))
    sheet.append(
        [
            *("XLSX-1", "一键呼转", *common, date(2026, 11, 30), "张三", 13812345678),
            *("11010519491231002X", "朝阳支行", "来电反映被电话推销贷款。", None),
            *("老年人", "CALL-77", "ignored"),
        ]
    )
    # Excel kept this id number as a number: its last digits are already gone.
    sheet.append(
        [
            *("XLSX-2", "转送", *common, None, "李四", 13900001111.0),
            *(110105194912310020, "朝阳支行", "投诉", None),
        ]
    )
    sheet.append(["XLSX-3", "一键呼转", *common, None, "王五", "13700000000", None, "支行", "x"])
    sheet.append([None] * 5)  # Excel's trailing empty rows
    path = tmp_path / "transfers.xlsx"
    workbook.save(path)

    rejects = tmp_path / "out" / "rejects.csv"
    report = await _import(hub, path, rejects_path=rejects)
    assert (report.loaded, report.duplicate, report.rejected, report.empty) == (1, 0, 2, 1)
    assert report.ignored_columns == ("备注",)
    with rejects.open(encoding="utf-8-sig", newline="") as handle:
        rejected = list(csv.reader(handle))
    assert [(r[0], r[2]) for r in rejected[1:]] == [("5", "XLSX-2"), ("6", "XLSX-3")]
    assert "complainant.id_number (证件号码): the sheet holds it as a number" in rejected[1][1]
    assert "call_id (呼叫编号): " in rejected[2][1]
    assert rejected[1][5] == "2026-11-20 09:30:00", "cells are written back as the sheet shows"

    again = await _import(hub, path, rejects_path=rejects)
    assert (again.loaded, again.duplicate, again.rejected) == (0, 1, 2)

    await drain(hub)
    async with hub.sessions() as session:
        ticket = (await session.exec(select(Ticket))).one()
    assert ticket.clock_started_at == received.replace(tzinfo=CHINA)
    assert ticket.deadline_at == datetime(2026, 11, 30, 23, 59, 59, tzinfo=CHINA)
    assert ticket.priority == "urgent"
    assert ticket.is_vulnerable
    assert {(r["kind"], r["id"]) for r in ticket.external_refs} == {
        ("hotline12378.transfer", "XLSX-1"),
        ("hotline12378.call", "CALL-77"),
    }


async def test_json_lines_load_native_and_flat_records_and_reject_bad_lines(
    hub: Hub, clock: ManualClock, tmp_path: Path
) -> None:
    native = transfer(clock.now())
    flat = {
        "转办编号": "JL-2",
        "转办类型": "assign",
        "监管机构": "beijing",
        "受理时间": "2026-11-20T09:30:00+08:00",
        "转办时间": "2026-11-20T10:30:00+08:00",
        "投诉人": "赵六",
        "联系电话": "13911112222",
        "被投诉机构": "朝阳支行",
        "投诉事项": "ATM 吞卡",
    }
    lines = [json.dumps(native, ensure_ascii=False), "", "{broken", "[1, 2]", json.dumps(flat)]
    path = tmp_path / "transfers.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = await _import(hub, path)
    assert (report.loaded, report.duplicate, report.rejected) == (2, 0, 2)
    rejects = [
        json.loads(line)
        for line in path.with_name("transfers.rejects.jsonl").read_text("utf-8").splitlines()
    ]
    assert [(r["line"], r["text"]) for r in rejects] == [(3, "{broken"), (4, "[1, 2]")]
    assert "not valid JSON" in rejects[0]["reasons"][0]
    await drain(hub)
    assert await _count(hub, Ticket) == 2


async def test_a_mapping_file_reads_a_banks_own_headings(
    hub: Hub, clock: ManualClock, tmp_path: Path
) -> None:
    headings = ["投诉编号", "来电号码", "客户姓名", "登记时间", "下发时间", "网点", "内容"]
    path = tmp_path / "own.csv"
    path.write_text(
        _csv(
            [
                {
                    "投诉编号": "OWN-1",
                    "来电号码": "13812340000",
                    "客户姓名": "孙七",
                    "登记时间": "2026-11-21 08:00",
                    "下发时间": "2026-11-21 09:00",
                    "网点": "朝阳支行",
                    "内容": "柜台排队时间过长",
                }
            ],
            headings,
        ),
        encoding="utf-8",
    )
    with pytest.raises(ImportFailed, match="no column for transfer_id"):
        await _import(hub, path)
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(
        "[columns]\n"
        '"投诉编号" = "transfer_id"\n"来电号码" = "complainant.phone"\n'
        '"客户姓名" = "complainant.name"\n"登记时间" = "received_at"\n'
        '"下发时间" = "transferred_at"\n"网点" = "institution.name"\n"内容" = "summary"\n'
        "[defaults]\n"
        'transfer_type = "assign"\nregulator_branch = "北京监管局"\n',
        encoding="utf-8",
    )
    report = await _import(hub, path, mapping=load_mapping(mapping))
    assert (report.loaded, report.rejected) == (1, 0)
    with pytest.raises(ImportFailed, match="unknown field"):
        await _import(hub, path, mapping=mapping_from({"complainant.shoe_size": "42"}))


async def test_a_pushed_transfer_found_again_in_a_sheet_is_a_duplicate(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, tmp_path: Path
) -> None:
    body = transfer(clock.now())
    assert (await push(api, body, clock.now())).status_code == 202
    await drain(hub)
    path = tmp_path / "again.csv"
    path.write_text(_csv([_row(1, 转办编号=body["transfer_id"]), _row(2)]), encoding="utf-8")
    report = await _import(hub, path)
    assert (report.loaded, report.duplicate) == (1, 1)
    report = await _import(hub, path)
    assert (report.loaded, report.duplicate) == (0, 2)
    await drain(hub)
    assert await _count(hub, Ticket) == 2
    assert await _count(hub, Envelope) == 2


async def test_a_large_file_reports_progress_and_loads_every_row(
    hub: Hub, clock: ManualClock, tmp_path: Path
) -> None:
    path = tmp_path / "large.csv"
    path.write_text(_csv([_row(n) for n in range(1, 1201)]), encoding="utf-8")
    seen: list[tuple[int, int]] = []
    started = datetime.now()
    report = await _import(hub, path, progress=lambda done, total: seen.append((done, total)))
    assert (report.loaded, report.rejected) == (1200, 0)
    assert seen[-1] == (1200, 1200) and len(seen) >= 6
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert datetime.now() - started < timedelta(seconds=60)
    assert await _count(hub, Envelope) == 1200
