"""The complaint form's fields, checked on the server: what the customer typed is never
trusted, and every refusal names the field it belongs to so the page can show it there."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from connectors.web.words import AREAS, KINDS, WORDS, Language

DESCRIPTION_MIN = 5
DESCRIPTION_MAX = 4000
PHONE = re.compile(r"^1[3-9]\d{9}$")
EMAIL = re.compile(r"^[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(\.[A-Za-z0-9\-]{1,63})+$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
TEXT_FIELDS = ("kind", "area", "description", "contact_kind", "phone", "email", "lang")


@dataclass(frozen=True, slots=True)
class Contact:
    kind: str  # "phone" or "email"
    value: str

    def masked(self) -> str:
        """How pages show it back: enough to recognise, not to read off a shoulder."""
        if self.kind == "phone":
            return f"{self.value[:3]}****{self.value[-4:]}"
        local, _, domain = self.value.partition("@")
        return f"{local[:1]}***@{domain}"


@dataclass(slots=True)
class Checked:
    """The form as typed (to show it again) and the errors by field name."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    contact: Contact | None = None


def clean_text(value: str, limit: int) -> str:
    """NFC, no control characters but newlines and tabs, CRLF folded, at most ``limit``."""
    text = unicodedata.normalize("NFC", value[: limit * 2])
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def normalize_phone(typed: str) -> str:
    digits = unicodedata.normalize("NFKC", typed).strip()
    digits = re.sub(r"[\s\-()]", "", digits)
    for prefix in ("+86", "0086"):
        if digits.startswith(prefix):
            digits = digits[len(prefix) :]
    return digits


def check(raw: dict[str, str], language: Language) -> Checked:
    """Validate the text fields; files are checked separately (they need their bytes)."""
    words = WORDS[language]
    values = {name: clean_text(raw.get(name, ""), DESCRIPTION_MAX) for name in TEXT_FIELDS}
    values["consent"] = "yes" if raw.get("consent") == "yes" else ""
    result = Checked(values)
    errors = result.errors
    if values["kind"] not in KINDS:
        errors["kind"] = words["invalid_choice"] if values["kind"] else words["required"]
    if values["area"] not in AREAS:
        errors["area"] = words["invalid_choice"] if values["area"] else words["required"]
    description = values["description"].strip()
    if not description:
        errors["description"] = words["required"]
    elif len(description) < DESCRIPTION_MIN:
        errors["description"] = words["too_short"].format(min=DESCRIPTION_MIN)
    elif len(description) > DESCRIPTION_MAX:
        errors["description"] = words["too_long"].format(max=DESCRIPTION_MAX)
    kind = values["contact_kind"]
    if kind == "phone":
        phone = normalize_phone(values["phone"])
        if not phone:
            errors["phone"] = words["required"]
        elif not PHONE.match(phone):
            errors["phone"] = words["bad_phone"]
        else:
            result.contact = Contact("phone", phone)
    elif kind == "email":
        email = unicodedata.normalize("NFKC", values["email"]).strip()
        if not email:
            errors["email"] = words["required"]
        elif len(email) > 254 or not EMAIL.match(email):
            errors["email"] = words["bad_email"]
        else:
            local, _, domain = email.partition("@")
            result.contact = Contact("email", f"{local}@{domain.lower()}")
    else:
        errors["contact_kind"] = words["required"]
    if values["consent"] != "yes":
        errors["consent"] = words["consent_required"]
    return result
