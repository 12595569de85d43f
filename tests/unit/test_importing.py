"""Reading files for ``tongdao import``: encodings, headings and mappings (no database)."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from hub.importing import (
    Columns,
    ImportFailed,
    Source,
    decode,
    detect_format,
    load_mapping,
    parse_assignments,
    read_source,
)
from hub.sdk import BatchField, ColumnMapping

FIELDS = (
    BatchField("transfer_id", ("转办编号",), required=True),
    BatchField("complainant.phone", ("联系电话",), required=True),
    BatchField("complainant"),
    BatchField("summary", ("投诉事项",)),
)


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        ("转办编号,投诉事项\n1,扣费".encode(), "utf-8"),
        (codecs.BOM_UTF8 + "转办编号\n1".encode(), "utf-8-sig"),
        ("转办编号,投诉人\n1,刘䶮".encode("gb18030"), "gb18030"),
        ("转办编号\t投诉人\n1\t张三".encode("utf-16"), "utf-16"),
    ],
)
def test_the_encoding_is_detected(data: bytes, encoding: str) -> None:
    text, found = decode(data)
    assert found == encoding
    assert text.lstrip("\ufeff").startswith("转办编号")


def test_a_file_in_neither_encoding_is_refused_not_garbled() -> None:
    with pytest.raises(ImportFailed, match="neither UTF-8 nor GB18030"):
        decode(b"\x80\xff\xfe\x00 not text")
    with pytest.raises(ImportFailed, match="unknown encoding"):
        decode(b"x", "klingon")


def test_formats_come_from_the_extension_or_are_asked_for() -> None:
    assert detect_format(Path("a.CSV")) == "csv"
    assert detect_format(Path("a.xlsx")) == "xlsx"
    assert detect_format(Path("a.ndjson")) == "jsonl"
    assert detect_format(Path("a.dat"), "jsonl") == "jsonl"
    with pytest.raises(ImportFailed, match=r"old \.xls"):
        detect_format(Path("a.xls"))
    with pytest.raises(ImportFailed, match="--format"):
        detect_format(Path("a.dat"))


def test_headings_under_a_title_are_found_and_tabs_are_read(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("监管转办清单\n\n转办编号\t联系电话\t备注\nT1\t13800000000\tx\n", "utf-8")
    source = read_source(path, "csv", ColumnMapping())
    headings, rows = Columns(FIELDS, ColumnMapping()).tabulate(source)
    assert headings == ("转办编号", "联系电话", "备注")
    assert [(r.number, r.items) for r in rows] == [
        (4, (("转办编号", "T1"), ("联系电话", "13800000000"), ("备注", "x")))
    ]


def test_the_mapping_wins_over_labels_and_can_ignore_a_column() -> None:
    columns = Columns(FIELDS, ColumnMapping(columns={"编号": "transfer_id", "投诉事项": ""}))
    assert columns.field_of("编号") == "transfer_id"
    assert columns.field_of(" 转办编号 ") == "transfer_id"
    assert columns.field_of("投诉事项") is None
    assert columns.field_of("summary") == "summary"
    assert columns.check_headings(["编号", "联系电话", "投诉事项", "备注"]) == ("投诉事项", "备注")


def test_missing_and_doubled_columns_stop_the_file() -> None:
    columns = Columns(FIELDS, ColumnMapping())
    with pytest.raises(ImportFailed, match=r"no column for complainant.phone \(联系电话\)"):
        columns.check_headings(["转办编号"])
    assert columns.check_headings(["转办编号", "complainant"]) == ()
    with pytest.raises(ImportFailed, match="all hold transfer_id"):
        columns.check_headings(["转办编号", "transfer_id", "联系电话"])
    defaulted = Columns(FIELDS, ColumnMapping(defaults={"complainant.phone": "13800000000"}))
    assert defaulted.check_headings(["转办编号"]) == ()
    with pytest.raises(ImportFailed, match="the file is empty"):
        columns.tabulate(Source("csv", "utf-8", records=[(1, ("", None))]))


def test_a_mapping_naming_unknown_fields_or_keys_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImportFailed, match=r"unknown field.*shoe_size"):
        Columns(FIELDS, ColumnMapping(columns={"鞋码": "shoe_size"}))
    mapping = tmp_path / "m.toml"
    mapping.write_text('[colums]\n"a" = "b"\n', encoding="utf-8")
    with pytest.raises(ImportFailed, match="unknown key"):
        load_mapping(mapping)
    mapping.write_text('sheet = "转办"\n[columns]\n" 编号 " = "transfer_id"\n', encoding="utf-8")
    loaded = load_mapping(mapping)
    assert (loaded.sheet, dict(loaded.columns)) == ("转办", {"编号": "transfer_id"})
    mapping.write_text("[columns\n", encoding="utf-8")
    with pytest.raises(ImportFailed, match="not valid TOML"):
        load_mapping(mapping)


def test_set_options_are_field_equals_value() -> None:
    assert parse_assignments(["transfer_type=assign", "regulator_branch = 北京监管局"]) == {
        "transfer_type": "assign",
        "regulator_branch": "北京监管局",
    }
    with pytest.raises(ImportFailed, match="field=value"):
        parse_assignments(["transfer_type"])
