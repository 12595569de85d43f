"""``[connectors.wechat]``: the WeChat API's address, limits, and one table per account.

```toml
[connectors.wechat]
api_base_url = "https://api.weixin.qq.com"

[connectors.wechat.accounts.retail]          # served at /channels/wechat/retail
token = "..."                                # 服务器配置 → 令牌(Token)
encoding_aes_key = "..."                     # 消息加解密密钥(EncodingAESKey), 43 characters
app_id = "wx..."
app_secret = "..."
mode = "safe"                                # plaintext | compatible | safe

[connectors.wechat.accounts.retail.templates.default]
template_id = "..."
url = "https://m.bank.example/tickets/{ticket_number}"
data = { character_string1 = "{ticket_number}", thing2 = "{text}", time3 = "{sent_at}" }
```
"""

from __future__ import annotations

import base64
import binascii
import re
import string
from datetime import timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator, model_validator

from hub.sdk import MIB, ConnectorConfig

Mode = Literal["plaintext", "compatible", "safe"]

PLACEHOLDERS = frozenset({"ticket_number", "text", "purpose", "sent_at", "date", "account"})
"""What a template's ``url`` and ``data`` values may name, in ``{braces}``."""

_ACCOUNT_NAME = re.compile(r"[a-z0-9_-]{1,32}")


def _placeholders(template: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ValueError(f"{template!r} is not a valid template: {exc}") from None


class TemplateConfig(ConnectorConfig):
    """A template message (模板消息) used when the 48-hour window is closed.

    ``data`` maps each of the template's keys to a value with placeholders; values are cut to
    the length WeChat allows for the key's type (``thing`` 20 characters, ``phrase`` 5,
    ``character_string`` 32, ...), because WeChat refuses the whole message otherwise.
    """

    template_id: str = Field(min_length=1, max_length=128)
    url: str | None = Field(default=None, max_length=1024)
    data: dict[str, str] = Field(min_length=1, max_length=20)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        unknown = _placeholders(value) - PLACEHOLDERS
        if unknown:
            raise ValueError(
                f"unknown placeholder(s) {sorted(unknown)}; use {sorted(PLACEHOLDERS)}"
            )
        if not value.startswith(("https://", "http://")):
            raise ValueError("the url must start with https:// or http://")
        return value

    @field_validator("data")
    @classmethod
    def _data(cls, value: dict[str, str]) -> dict[str, str]:
        for key, template in value.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", key):
                raise ValueError(f"{key!r} is not a template key (such as thing2 or keyword1)")
            unknown = _placeholders(template) - PLACEHOLDERS
            if unknown:
                raise ValueError(
                    f"{key}: unknown placeholder(s) {sorted(unknown)}; use {sorted(PLACEHOLDERS)}"
                )
        return value


class AccountConfig(ConnectorConfig):
    """One Official Account, as its 基本配置 / 服务器配置 pages show it."""

    token: SecretStr = Field(description="服务器配置 → 令牌(Token): signs every push")
    encoding_aes_key: SecretStr | None = Field(
        default=None,
        description="消息加解密密钥(EncodingAESKey), 43 characters; compatible and safe mode",
    )
    app_id: str = Field(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    app_secret: SecretStr
    mode: Mode = Field(default="safe", description="消息加解密方式 chosen for the account")
    original_id: str | None = Field(
        default=None,
        max_length=64,
        description="原始ID (gh_…); when set, pushes addressed to another account are refused",
    )
    templates: dict[str, TemplateConfig] = Field(
        default_factory=dict,
        description="by purpose (acknowledgement, progress, reply) or 'default'",
    )
    menu_requests: dict[str, str] = Field(
        default_factory=dict,
        description="menu click EventKey -> the request it stands for; such a click opens a ticket",
    )

    @field_validator("token")
    @classmethod
    def _token(cls, value: SecretStr) -> SecretStr:
        if not re.fullmatch(r"[A-Za-z0-9]{3,32}", value.get_secret_value()):
            raise ValueError("WeChat tokens are 3 to 32 letters and digits")
        return value

    @field_validator("encoding_aes_key")
    @classmethod
    def _aes_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return value
        raw = value.get_secret_value()
        if not re.fullmatch(r"[A-Za-z0-9]{43}", raw):
            raise ValueError("an EncodingAESKey is 43 letters and digits")
        try:
            key = base64.b64decode(raw + "=", validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("the EncodingAESKey is not valid base64") from None
        if len(key) != 32:
            raise ValueError("the EncodingAESKey must decode to 32 bytes")
        return value

    @field_validator("menu_requests")
    @classmethod
    def _menu(cls, value: dict[str, str]) -> dict[str, str]:
        for key, text in value.items():
            if not key or len(key) > 128 or not text.strip() or len(text) > 500:
                raise ValueError(f"{key!r}: an EventKey up to 128 characters and a request text")
        return value

    @model_validator(mode="after")
    def _mode_needs_key(self) -> AccountConfig:
        if self.mode != "plaintext" and self.encoding_aes_key is None:
            raise ValueError(f"mode {self.mode!r} needs encoding_aes_key")
        return self

    @property
    def aes_key(self) -> bytes | None:
        if self.encoding_aes_key is None:
            return None
        return base64.b64decode(self.encoding_aes_key.get_secret_value() + "=")


class WeChatConfig(ConnectorConfig):
    api_base_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("https://api.weixin.qq.com"),
        description="WeChat's API, or a stand-in that speaks the same protocol",
    )
    accounts: dict[str, AccountConfig] = Field(
        min_length=1, description="one table per account: [connectors.wechat.accounts.<name>]"
    )
    max_body_bytes: int = Field(
        default=64 * 1024, gt=0, le=MIB, description="pushes are small; anything larger is refused"
    )
    timestamp_tolerance_seconds: int = Field(default=300, ge=30, le=3600)
    max_media_bytes: int = Field(
        default=10 * MIB, gt=0, le=20 * MIB, description="images and voice larger are not kept"
    )
    media_fetch_attempts: int = Field(default=8, ge=1, le=30)
    media_retry_initial_seconds: float = Field(default=30.0, gt=0, le=3600)
    poll_seconds: float = Field(
        default=5.0, gt=0, le=300, description="how often pending media fetches are looked at"
    )
    reply_window_hours: float = Field(
        default=48.0, gt=0, le=48, description="WeChat's customer-service message window"
    )
    window_margin_seconds: int = Field(
        default=300,
        ge=0,
        le=3600,
        description="treat the window as closed this long before WeChat does (clock skew)",
    )
    max_text_bytes: int = Field(
        default=2000, ge=200, le=2048, description="one customer-service text message"
    )
    max_parts: int = Field(
        default=3, ge=1, le=10, description="a longer reply is split into at most this many"
    )
    rate_limit_per_second: float = Field(
        default=50.0, gt=0, le=10000, description="sends per account and process"
    )
    follow_up_hours: float = Field(
        default=72.0,
        ge=0,
        le=24 * 30,
        description="a customer's message this soon after the hub last wrote to them joins "
        "that ticket (0: only an explicit ticket number does)",
    )
    timezone: str = Field(default="Asia/Shanghai", description="for {sent_at} and {date}")

    @field_validator("accounts")
    @classmethod
    def _names(cls, value: dict[str, AccountConfig]) -> dict[str, AccountConfig]:
        for name in value:
            if not _ACCOUNT_NAME.fullmatch(name):
                raise ValueError(f"account name {name!r}: use 1-32 of a-z, 0-9, _ and -")
        app_ids = [account.app_id for account in value.values()]
        if len(app_ids) != len(set(app_ids)):
            raise ValueError("two accounts share an app_id; each account is configured once")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @property
    def reply_window(self) -> timedelta:
        return timedelta(hours=self.reply_window_hours)

    @property
    def api_base(self) -> str:
        return str(self.api_base_url).rstrip("/")
