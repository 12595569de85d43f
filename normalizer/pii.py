"""Masked display forms of personal data: enough for an agent to recognise, not to reuse; and
personal data found in free text (``find_pii``, ``mask_pii``)."""

from __future__ import annotations

import re
from dataclasses import dataclass


def mask_phone(value: str) -> str:
    """Mobiles keep their prefix and last four (138****5678); shorter numbers their last two."""
    digits = "".join(filter(str.isdigit, value))
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    if len(digits) >= 11:
        return f"{digits[:3]}{'*' * (len(digits) - 7)}{digits[-4:]}"
    if len(digits) >= 7:
        return "*" * (len(digits) - 2) + digits[-2:]
    return "*" * len(digits)


def mask_email(value: str) -> str:
    local, _, domain = value.partition("@")
    if not domain:
        return mask_opaque(value)
    return f"{local[:1]}***@{domain}"


def mask_name(value: str) -> str:
    value = value.strip()
    if not value:
        return value
    if value.isascii():
        return " ".join(part[:1] + "*" * (len(part) - 1) for part in value.split())
    return value[0] + "*" * (len(value) - 1)


def mask_opaque(value: str) -> str:
    """For ids with no structure worth showing (app user ids, openids)."""
    if len(value) <= 4:
        return "*" * len(value)
    if len(value) <= 8:
        return f"{value[:1]}{'*' * (len(value) - 1)}"
    return f"{value[:2]}***{value[-2:]}"


def mask_identity(kind: str, value: str) -> str:
    if kind == "phone":
        return mask_phone(value)
    if kind == "email":
        return mask_email(value)
    return mask_opaque(value)


# --- personal data in free text ------------------------------------------------------------

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_FREE_TEXT = re.compile(
    r"(?P<email>[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})"
    r"|(?P<id>(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z]))"
    r"|(?P<card>(?<![\d-])\d{4}(?:[ -]?\d){9,15}(?![\d-]))"
    r"|(?P<phone>(?<![\d+])(?:\+?86[ -]?)?1[3-9]\d(?:[ -]?\d){8}(?!\d))"
)


@dataclass(frozen=True, slots=True)
class PiiMatch:
    kind: str  # "email", "id_number", "card", "phone"
    start: int
    end: int
    masked: str


def valid_prc_id(value: str) -> bool:
    """An 18-character resident identity number whose check character (GB 11643) agrees."""
    if len(value) != 18 or not value[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == value[17].upper()


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def mask_card(value: str) -> str:
    digits = "".join(ch for ch in value if ch.isdigit())
    return f"{digits[:4]} **** **** {digits[-4:]}"


def mask_id_number(value: str) -> str:
    return f"{value[:6]}********{value[-4:]}"


def find_pii(text: str) -> list[PiiMatch]:
    """Personal data in free text: emails, PRC identity numbers (check character verified),
    bank card numbers (13 to 19 digits, Luhn verified) and mainland mobile numbers. Numbers
    that fail their check (an order number, a date run) are left alone."""
    found: list[PiiMatch] = []
    for match in _FREE_TEXT.finditer(text):
        value = match.group()
        if match.lastgroup == "email":
            found.append(PiiMatch("email", match.start(), match.end(), mask_email(value)))
        elif match.lastgroup == "id" and valid_prc_id(value):
            found.append(PiiMatch("id_number", match.start(), match.end(), mask_id_number(value)))
        elif match.lastgroup in ("id", "card"):
            digits = "".join(ch for ch in value if ch.isdigit())
            if 13 <= len(digits) <= 19 and luhn_ok(digits):
                found.append(PiiMatch("card", match.start(), match.end(), mask_card(value)))
        elif match.lastgroup == "phone":
            found.append(PiiMatch("phone", match.start(), match.end(), mask_phone(value)))
    return found


def mask_pii(text: str, keep: frozenset[str] = frozenset()) -> str:
    """``text`` with every personal datum ``find_pii`` sees masked, except the kinds in
    ``keep`` (what a role with clearance may see)."""
    out, last = [], 0
    for item in find_pii(text):
        if item.kind in keep:
            continue
        out.append(text[last : item.start])
        out.append(item.masked)
        last = item.end
    out.append(text[last:])
    return "".join(out)
