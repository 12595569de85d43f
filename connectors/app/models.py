"""The app channel's wire format (specs/api.md)."""

from __future__ import annotations

import base64
import binascii

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hub.sdk import PlainText

MAX_ATTACHMENTS = 5


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

    user_id: PlainText = Field(min_length=1, max_length=128)
    text: PlainText = Field(min_length=1, max_length=20000)
    phone: str | None = Field(default=None, max_length=32, pattern=r"^\+?[0-9 -]{5,32}$")
    name: PlainText | None = Field(default=None, max_length=100)
    ticket_number: PlainText | None = Field(default=None, max_length=32)
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
