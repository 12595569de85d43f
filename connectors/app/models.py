"""The app channel's wire format (specs/api.md)."""

from __future__ import annotations

import base64
import binascii
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_ATTACHMENTS = 5
# C0 controls but tab, newline and carriage return; PostgreSQL cannot store NUL in text.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class AppAttachment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    content_type: str = Field(min_length=3, max_length=120, pattern=r"^[\w.+-]+/[\w.+-]+$")
    data: str = Field(min_length=1, description="base64")

    @field_validator("data")
    @classmethod
    def _base64(cls, value: str) -> str:
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("data is not valid base64") from None
        return value

    def decoded(self) -> bytes:
        return base64.b64decode(self.data)


class AppMessageIn(BaseModel):
    """A message a customer wrote in the bank's app, as the app's backend pushes it."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    @field_validator("user_id", "text", "phone", "name", "ticket_number")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and _CONTROL.search(value):
            raise ValueError("control characters (such as NUL) are not allowed")
        return value

    user_id: str = Field(min_length=1, max_length=128)
    text: str = Field(min_length=1, max_length=20000)
    phone: str | None = Field(default=None, max_length=32, pattern=r"^\+?[0-9 -]{5,32}$")
    name: str | None = Field(default=None, max_length=100)
    ticket_number: str | None = Field(default=None, max_length=32)
    attachments: list[AppAttachment] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)


class AppCallback(BaseModel):
    """What the hub delivers to the app's ``callback_url``."""

    event: str = "message"
    ticket_number: str
    user_id: str
    text: str
    purpose: str
    message_id: str
    sent_at: str
