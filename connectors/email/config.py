"""``[connectors.email]``: the bank's mailbox (IMAP in), its mail server (SMTP out), and the
limits on what a mail may bring in. docs/channels/email.md has examples for the common servers.
"""

from __future__ import annotations

import re
from enum import StrEnum
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Any, ClassVar, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from hub.sdk import MIB, ConnectorConfig

_ADDRESS = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+$")
_DOMAIN = re.compile(r"^[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+$")


def _address(value: str) -> str:
    value = value.strip()
    if not _ADDRESS.match(value) or "+" in value.partition("@")[0]:
        raise ValueError("must be a plain mail address such as support@bank.example")
    local, _, domain = value.rpartition("@")
    return f"{local}@{domain.lower()}"


class Security(StrEnum):
    ssl = "ssl"
    """TLS from the first byte (IMAPS 993, SMTPS 465)."""
    starttls = "starttls"
    """Plain connection upgraded to TLS before login (IMAP 143, submission 587)."""
    none = "none"
    """No TLS: only for a server on the same host or a test stand-in."""


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OAuth2(_Settings):
    """OAuth 2.0 client credentials, for servers that refuse passwords (Exchange Online).
    The connector fetches an access token from ``token_url`` and logs in with XOAUTH2."""

    token_url: AnyHttpUrl = Field(
        description="e.g. https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token"
    )
    client_id: str = Field(min_length=1, max_length=200)
    client_secret: SecretStr
    scope: str = Field(
        default="https://outlook.office365.com/.default", min_length=1, max_length=500
    )


class _Server(_Settings):
    usual_ports: ClassVar[dict[str, int]]

    host: str = Field(min_length=1, max_length=253)
    port: int = Field(default=0, ge=0, le=65535, description="0: the usual port for security")
    security: Security = Security.ssl
    username: str = Field(default="", max_length=320)
    password: SecretStr | None = None
    oauth2: OAuth2 | None = None
    ca_file: str | None = Field(
        default=None, description="PEM file of the CAs to trust (a bank's internal CA)"
    )

    @model_validator(mode="before")
    @classmethod
    def _usual_port(cls, data: Any) -> Any:
        """No port given: the usual one for the chosen security."""
        if isinstance(data, dict) and not data.get("port"):
            security = str(data.get("security", cls.model_fields["security"].default))
            if security in cls.usual_ports:
                return {**data, "port": cls.usual_ports[security]}
        return data

    @model_validator(mode="after")
    def _one_way_to_log_in(self) -> _Server:
        if self.password is not None and self.oauth2 is not None:
            raise ValueError("give either password or oauth2, not both")
        return self


class ImapMailbox(_Server):
    """One folder of one mailbox to take mail from."""

    usual_ports: ClassVar[dict[str, int]] = {"ssl": 993, "starttls": 143, "none": 143}

    name: str = Field(
        default="inbox",
        pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$",
        description="names this mailbox in the poll cursor; keep it stable",
    )
    folder: str = Field(default="INBOX", min_length=1, max_length=200)

    @model_validator(mode="after")
    def _credentials(self) -> ImapMailbox:
        if not self.username:
            raise ValueError("username is required")
        if self.password is None and self.oauth2 is None:
            raise ValueError("password or oauth2 is required")
        return self


class SmtpServer(_Server):
    """The server that sends our mail (the bank's relay, or the provider's submission)."""

    usual_ports: ClassVar[dict[str, int]] = {"ssl": 465, "starttls": 587, "none": 25}

    security: Security = Security.starttls
    local_hostname: str | None = Field(default=None, max_length=253)


Network = IPv4Network | IPv6Network


class Intake(_Settings):
    """Mail delivered to the hub directly by the bank's mail server (SMTP or LMTP), for banks
    that route the complaint address to it instead of a mailbox."""

    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    protocol: Literal["smtp", "lmtp"] = "lmtp"
    allowed_clients: list[Network] = Field(
        default_factory=lambda: [ip_network("127.0.0.1/32"), ip_network("::1/128")],
        description="addresses of the mail servers allowed to deliver",
    )

    @field_validator("allowed_clients", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        if isinstance(value, list):
            return [ip_network(i, strict=False) if isinstance(i, str) else i for i in value]
        return value


class EmailConfig(ConnectorConfig):
    address: str = Field(description="the address customers write to; our mail comes from it")
    aliases: list[str] = Field(
        default_factory=list, description="other addresses of ours that reach the same mailbox"
    )
    display_name: str = Field(default="", max_length=100, description="shown as the sender")
    mailboxes: list[ImapMailbox] = Field(default_factory=list, max_length=20)
    smtp: SmtpServer | None = None
    intake: Intake | None = None
    plus_addressing: bool = Field(
        default=False,
        description=(
            "answers carry Reply-To: support+TD-…@bank; only when the mail server delivers "
            "plus-addresses to the mailbox"
        ),
    )
    message_id_domain: str | None = Field(default=None, description="default: the address's")
    poll_seconds: float = Field(default=60.0, ge=5, le=3600)
    idle: bool = Field(default=True, description="wait for new mail with IMAP IDLE")
    backlog: Literal["all", "new"] = Field(
        default="all", description="on first connection: take every mail there, or only new ones"
    )
    batch_size: int = Field(default=50, ge=1, le=500, description="mails per mailbox per poll")
    max_message_bytes: int = Field(default=25 * MIB, ge=64 * 1024, le=200 * MIB)
    max_attachment_bytes: int = Field(default=10 * MIB, ge=1024, le=100 * MIB)
    max_attachments: int = Field(default=10, ge=0, le=100)
    max_text_chars: int = Field(default=100_000, ge=1000, le=1_000_000)
    timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    fallback_subject: str = Field(default="您的来信", max_length=100)
    ignore_senders: list[str] = Field(
        default_factory=list,
        description="addresses or @domains whose mail never opens a ticket (monitoring, ...)",
    )

    @field_validator("address")
    @classmethod
    def _check_address(cls, value: str) -> str:
        return _address(value)

    @field_validator("aliases")
    @classmethod
    def _check_aliases(cls, value: list[str]) -> list[str]:
        return [_address(item) for item in value]

    @field_validator("message_id_domain")
    @classmethod
    def _check_domain(cls, value: str | None) -> str | None:
        if value is not None and not _DOMAIN.match(value):
            raise ValueError("must be a domain name such as bank.example")
        return value.lower() if value else value

    @field_validator("ignore_senders")
    @classmethod
    def _check_ignored(cls, value: list[str]) -> list[str]:
        for item in value:
            if not (_ADDRESS.match(item) or (item.startswith("@") and _DOMAIN.match(item[1:]))):
                raise ValueError(f"{item!r} is neither an address nor an @domain")
        return [item.lower() for item in value]

    @field_validator("mailboxes")
    @classmethod
    def _unique_names(cls, value: list[ImapMailbox]) -> list[ImapMailbox]:
        names = [box.name for box in value]
        if len(set(names)) != len(names):
            raise ValueError("each mailbox needs its own name")
        return value

    @property
    def our_addresses(self) -> tuple[str, ...]:
        return (self.address, *self.aliases)

    @property
    def id_domain(self) -> str:
        return self.message_id_domain or self.address.rpartition("@")[2]
