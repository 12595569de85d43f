"""Rows of a regulator's sheet (or JSON Lines) as transfers.

Sheets are typed by people and exported by Excel, so a row is read generously before it is
validated by exactly the rules of a push: times without a zone are China time, Chinese
spellings of the transfer type and of tags are understood, a phone number Excel stored as a
number is read back as digits. What cannot be read back safely is refused with a reason: an
18-digit id number Excel kept as a number has already lost its last digits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any

from connectors.hotline12378.models import CHINA
from hub.sdk import BatchField

FIELDS: tuple[BatchField, ...] = (
    BatchField("transfer_id", ("转办编号",), required=True),
    BatchField("transfer_type", ("转办类型",), required=True),
    BatchField("regulator_branch", ("监管机构",), required=True),
    BatchField("received_at", ("受理时间",), required=True),
    BatchField("transferred_at", ("转办时间",), required=True),
    BatchField("deadline", ("办理时限",)),
    BatchField("complainant.name", ("投诉人",), required=True),
    BatchField("complainant.phone", ("联系电话",), required=True),
    BatchField("complainant.id_number", ("证件号码",)),
    BatchField("complainant.address", ("联系地址",)),
    BatchField("complainant.tags", ("客户标签",), description="comma-separated"),
    BatchField("institution.code", ("被投诉机构代码",)),
    BatchField("institution.name", ("被投诉机构",), required=True),
    BatchField("category.channel", ("渠道代码",)),
    BatchField("category.business", ("业务代码",)),
    BatchField("category.cause", ("原因代码",)),
    BatchField("summary", ("投诉事项",), required=True),
    BatchField("demands", ("诉求",)),
    BatchField("call_id", ("呼叫编号",)),
    # Whole objects, as JSON Lines in the push's own shape carry them.
    BatchField("complainant"),
    BatchField("institution"),
    BatchField("category"),
    BatchField("attachments"),
)
BY_NAME = {f.name: f for f in FIELDS}

TRANSFER_TYPES = {
    "forward": "forward",
    "assign": "assign",
    "hot_transfer": "hot_transfer",
    "转送": "forward",
    "转办": "assign",
    "一键呼转": "hot_transfer",
    "呼转": "hot_transfer",
}
_TIMES = ("received_at", "transferred_at")
_DIGITS_ONLY = ("complainant.phone", "complainant.id_number", "transfer_id", "call_id")
_TAG_SEPARATORS = re.compile(r"[,，;；、/|\s]+")
_CHINESE_DATE = re.compile(
    r"^(\d{4})年(\d{1,2})月(\d{1,2})日?(?:\s*(\d{1,2})[:：时](\d{1,2})(?:[:：分](\d{1,2})秒?)?)?$"
)
EXCEL_DIGITS = 15
"""Excel keeps 15 significant digits of a number; longer ids typed as numbers are corrupted."""


def describe(name: str) -> str:
    found = BY_NAME.get(name)
    return found.describe() if found else name


def transfer_from_row(values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The row as a transfer in the push's shape (not yet validated), and what could not be
    read, by field. Unreadable cells are left out, so validation still reports the others."""
    transfer: dict[str, Any] = {}
    problems: dict[str, str] = {}
    # Whole objects first, so a dotted column can complete or correct them.
    for name in ("complainant", "institution", "category"):
        if name in values:
            if not isinstance(values[name], dict):
                problems[name] = "an object is expected"
            else:
                transfer[name] = dict(values[name])
    if "attachments" in values:
        transfer["attachments"] = values["attachments"]
    for name, value in values.items():
        if name in ("complainant", "institution", "category", "attachments"):
            continue
        try:
            cell = _cell(name, value)
        except ValueError as exc:
            problems[name] = str(exc)
            continue
        if cell is None:
            continue
        head, _, tail = name.partition(".")
        if tail:
            target = transfer.setdefault(head, {})
            if isinstance(target, dict):
                target[tail] = cell
        else:
            transfer[name] = cell
    return transfer, problems


def _cell(name: str, value: Any) -> Any:
    """One cell as the push would carry it; ``None`` for an empty cell."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if name in _TIMES:
        return _datetime(value).isoformat()
    if name == "deadline":
        return _date(value).isoformat()
    if name == "transfer_type":
        text = str(value).strip()
        return TRANSFER_TYPES.get(text, TRANSFER_TYPES.get(text.lower(), text))
    if name == "complainant.tags":
        if isinstance(value, list):
            return value
        return [t for t in _TAG_SEPARATORS.split(str(value)) if t]
    if name in _DIGITS_ONLY:
        return _text_of_number(name, value)
    if isinstance(value, datetime | date | time):
        raise ValueError("a date is not expected here")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bool | dict | list):
        raise ValueError("text is expected here")
    return str(value).strip()


def _text_of_number(name: str, value: Any) -> str:
    if isinstance(value, bool):
        raise ValueError("text is expected here")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("a number with decimals is not an id or phone number")
        value = int(value)
    if isinstance(value, int):
        digits = str(value)
        if name == "complainant.id_number" and len(digits) > EXCEL_DIGITS:
            raise ValueError(
                "the sheet holds it as a number, which keeps only 15 digits; "
                "format the column as text and export it again"
            )
        return digits
    if isinstance(value, str):
        return value.strip()
    raise ValueError("text is expected here")


def _datetime(value: Any) -> datetime:
    """A cell as an aware time; no zone means China time, a bare date its first moment (the
    earliest reading, so a clock never starts later than the complaint was received)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time(0))
    elif isinstance(value, str):
        moment = _parse_text_time(value.strip())
    else:
        raise ValueError("a date and time is expected, such as 2026-11-20 09:30")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=CHINA)


def _parse_text_time(text: str) -> datetime:
    match = _CHINESE_DATE.fullmatch(text)
    if match:
        year, month, day, hour, minute, second = (int(g) if g else 0 for g in match.groups())
        try:
            return datetime(year, month, day, hour, minute, second)
        except ValueError as exc:
            raise ValueError(f"{text!r} is not a valid date: {exc}") from None
    candidate = text.replace("/", "-")
    if candidate.endswith(("Z", "z")):
        candidate = candidate[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(candidate)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a date and time such as 2026-11-20 09:30 or 2026-11-20T09:30+08:00"
        ) from None


def _date(value: Any) -> date:
    if isinstance(value, datetime):
        return (value if value.tzinfo is None else value.astimezone(CHINA)).date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        moment = _parse_text_time(value.strip())
        return (moment if moment.tzinfo is None else moment.astimezone(CHINA)).date()
    raise ValueError("a date is expected, such as 2026-12-05")
