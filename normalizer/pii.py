"""Masked display forms of personal data: enough for an agent to recognise, not to reuse."""

from __future__ import annotations


def mask_phone(value: str) -> str:
    digits = "".join(ch for ch in value if ch.isdigit())
    if len(digits) < 7:
        return "*" * len(digits)
    return f"{digits[:3]}{'*' * (len(digits) - 7)}{digits[-4:]}"


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
    return f"{value[:2]}***{value[-2:]}"


def mask_identity(kind: str, value: str) -> str:
    if kind == "phone":
        return mask_phone(value)
    if kind == "email":
        return mask_email(value)
    return mask_opaque(value)
