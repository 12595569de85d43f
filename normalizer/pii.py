"""Masked display forms of personal data: enough for an agent to recognise, not to reuse."""

from __future__ import annotations


def mask_phone(value: str) -> str:
    """Mobiles keep their prefix and last four (138****5678); shorter numbers their last two."""
    digits = "".join(ch for ch in value if ch.isdigit())
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
