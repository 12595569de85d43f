"""The 12378 wire format (../shared/specs/hotline12378.md): transfers in, feedback out.

Validation is strict where a wrong value would mislead the bank (times without a zone, a
deadline before the complaint was received, attachment bytes that do not match their hash)
and lenient where the regulator may grow the format (unknown keys are ignored, transfer ids
may carry Chinese document numbering such as 京金转〔2026〕12号), because a transfer refused
is a complaint the bank never sees.

Two checks depend on the moment and the configuration (a ``received_at`` in the future, the
attachment size cap); they run only when the push passes them in the validation context, so
``parse`` can validate a stored transfer again, at any later time, and get the same answer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Literal

from pydantic import (
    AnyHttpUrl,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from hub.sdk import PlainText

CHINA = timezone(timedelta(hours=8), "CST")
"""China Standard Time; no daylight saving, so a fixed offset is exact."""

TransferType = Literal["forward", "assign", "hot_transfer"]
Outcome = Literal["resolved", "partially_resolved", "rejected", "withdrawn"]
Satisfaction = Literal["satisfied", "unsatisfied", "unknown"]

MAX_ATTACHMENTS = 20
FUTURE_SKEW = timedelta(minutes=10)
"""How far ahead of our clock a ``received_at`` may be (the regulator's clock may run fast)."""

TRANSFER_TYPE_ZH = {"forward": "转送", "assign": "转办", "hot_transfer": "一键呼转"}
TAG_SYNONYMS = {
    "老年": "elderly",
    "老年人": "elderly",
    "老人": "elderly",
    "外籍": "foreign",
    "外籍人士": "foreign",
    "外国人": "foreign",
    "境外": "foreign",
    "残障": "disabled",
    "残疾": "disabled",
    "残疾人": "disabled",
}
_TAG = re.compile(r"^[a-z][a-z0-9_]{0,29}$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ()\-]{4,30}$")
_ID_NUMBER = re.compile(r"^[0-9A-Z][0-9A-Z\-]{4,39}$")
_CODE = re.compile(r"^[A-Za-z0-9.\-]{1,20}$")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def normalize_phone(value: str) -> str:
    """Digits only, without China's country code, so ``+86 138-1234-5678`` and ``13812345678``
    are one identity; other countries keep a leading ``+``."""
    raw = value.strip()
    if not _PHONE.fullmatch(raw):
        raise ValueError("a phone number is digits, optionally with +, spaces, dashes, brackets")
    digits = re.sub(r"\D", "", raw)
    foreign = False
    if raw.startswith("+") or digits.startswith("00"):
        digits = digits.removeprefix("00")
        if digits.startswith("86"):
            digits = digits[2:]
        else:
            foreign = True
    elif len(digits) == 13 and digits.startswith("861"):
        digits = digits[2:]
    if not 5 <= len(digits) <= 20:
        raise ValueError("a phone number has 5 to 20 digits")
    return ("+" if foreign else "") + digits


def is_resident_id(value: str) -> bool:
    """An 18-character PRC resident identity number whose check character (GB 11643) holds."""
    if len(value) != 18 or not value[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS, strict=True))
    return value[17] == _ID_CHECK[total % 11]


def end_of_day(day: date) -> datetime:
    """A 办理时限 date means the whole of that day in China."""
    return datetime.combine(day, time(23, 59, 59), CHINA)


class Complainant(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    name: PlainText = Field(min_length=1, max_length=100)
    phone: str = Field(max_length=40)
    id_number: str | None = Field(default=None, max_length=40)
    address: PlainText | None = Field(default=None, max_length=500)
    tags: list[str] = Field(default_factory=list, max_length=10)

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        return normalize_phone(value)

    @field_validator("id_number")
    @classmethod
    def _id_number(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.replace(" ", "").upper()
        if not value:
            return None
        if not _ID_NUMBER.fullmatch(value):
            raise ValueError("an id number is 5 to 40 letters, digits or dashes")
        return value

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        tags: list[str] = []
        for item in value:
            if not isinstance(item, str):
                raise ValueError("tags are strings such as elderly, foreign")
            tag = TAG_SYNONYMS.get(item.strip(), item.strip().lower())
            if not _TAG.fullmatch(tag):
                raise ValueError(f"tag {item!r}: use a-z, 0-9 and _ (e.g. elderly, foreign)")
            if tag not in tags:
                tags.append(tag)
        return tags


class Institution(BaseModel):
    """The bank's branch complained about. ``code`` is optional: the regulator's default sheet
    has no column for it, and a push and a sheet must accept the same transfers."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    code: str | None = Field(default=None, max_length=40, pattern=r"^[A-Za-z0-9._\-]*$")
    name: PlainText = Field(min_length=1, max_length=200)


class Category(BaseModel):
    """JR/T 0169-2018 codes: channel (A), business (B), cause (C)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    channel: str | None = None
    business: str | None = None
    cause: str | None = None

    @field_validator("channel", "business", "cause")
    @classmethod
    def _code(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not _CODE.fullmatch(value):
            raise ValueError("a JR/T 0169 code is 1 to 20 letters, digits, dots or dashes")
        return value

    def codes(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump().items() if v}


class TransferAttachment(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    name: PlainText = Field(min_length=1, max_length=255)
    content_type: str = Field(min_length=3, max_length=120, pattern=r"^[\w.+-]+/[\w.+-]+$")
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    data: str | None = Field(default=None, min_length=1, description="base64")
    url: AnyHttpUrl | None = None

    @field_validator("data")
    @classmethod
    def _base64(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("data is not valid base64") from None
        limit = (info.context or {}).get("max_attachment_bytes")
        if limit is not None and len(raw) > limit:
            raise ValueError(f"the attachment is larger than {limit} bytes")
        return value

    @model_validator(mode="after")
    def _data_or_url(self) -> TransferAttachment:
        if (self.data is None) == (self.url is None):
            raise ValueError("give exactly one of data (base64) and url")
        if self.data is not None and self.sha256 is not None:
            actual = hashlib.sha256(self.decoded()).hexdigest()
            if actual != self.sha256.lower():
                raise ValueError("sha256 does not match the attachment's data")
        return self

    def decoded(self) -> bytes:
        return base64.b64decode(self.data or "")


class Transfer(BaseModel):
    """One complaint the regulator passes on. Fields are declared in the order the cross-field
    checks need them (``received_at`` before ``transferred_at`` and ``deadline``)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    transfer_id: PlainText = Field(min_length=1, max_length=64)
    transfer_type: TransferType
    regulator_branch: PlainText = Field(min_length=1, max_length=200)
    received_at: AwareDatetime
    transferred_at: AwareDatetime
    deadline: date | None = None
    complainant: Complainant
    institution: Institution
    category: Category | None = None
    summary: PlainText = Field(min_length=1, max_length=20000)
    demands: PlainText | None = Field(default=None, max_length=5000)
    attachments: list[TransferAttachment] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)
    call_id: PlainText | None = Field(default=None, max_length=64, validate_default=True)

    @field_validator("received_at")
    @classmethod
    def _not_in_future(cls, value: datetime, info: ValidationInfo) -> datetime:
        now = (info.context or {}).get("now")
        if now is not None and value > now + FUTURE_SKEW:
            raise ValueError("received_at is in the future; the legal clock cannot start later")
        return value

    @field_validator("transferred_at")
    @classmethod
    def _after_receipt(cls, value: datetime, info: ValidationInfo) -> datetime:
        received = info.data.get("received_at")
        if received is not None and value < received:
            raise ValueError("transferred_at is earlier than received_at")
        return value

    @field_validator("deadline")
    @classmethod
    def _deadline_after_receipt(cls, value: date | None, info: ValidationInfo) -> date | None:
        received = info.data.get("received_at")
        if value is not None and received is not None and value < received.astimezone(CHINA).date():
            raise ValueError("deadline is before the day the complaint was received")
        return value

    @field_validator("call_id")
    @classmethod
    def _call_for_hot_transfer(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value == "":
            value = None
        if info.data.get("transfer_type") == "hot_transfer" and value is None:
            raise ValueError("a hot_transfer names the call handed over (call_id)")
        return value


class Batch(BaseModel):
    """``{"transfers": [...]}``; the cap is checked against the config by the connector."""

    model_config = ConfigDict(extra="ignore")

    transfers: list[Transfer] = Field(min_length=1)


class FeedbackRecord(BaseModel):
    """What the bank tells the branch once it has decided (spec: "Feedback to the regulator")."""

    model_config = ConfigDict(extra="ignore")

    transfer_id: str = Field(min_length=1, max_length=64)
    ticket_number: str = Field(min_length=1, max_length=32)
    contacted_at: AwareDatetime | None = None
    decided_at: AwareDatetime
    outcome: Outcome
    # No length caps on what the bank wrote: a record refused here could never be sent, and
    # the ticket could never close. The branch's endpoint says so if it minds.
    summary: str = ""
    extensions: list[dict[str, Any]] = Field(default_factory=list)
    satisfaction: Satisfaction = "unknown"
    handler: str = ""

    @field_validator("contacted_at", "decided_at")
    @classmethod
    def _china_time(cls, value: datetime | None) -> datetime | None:
        # The branch reads the record in its own time zone; the instant is the same.
        return value.astimezone(CHINA) if value is not None else None
