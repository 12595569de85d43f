"""How a confirmation code or a ticket's messages reach the customer's confirmed contact.

The web has no way back to a visitor once the tab is closed, so everything the hub tells a
web customer (the one-time code, the acknowledgement with the progress code, answers) goes to
the phone number or address they confirmed. A sender is chosen by the contact's kind: SMS
through an HTTP SMS gateway, email through SMTP. Both answer with a ``DeliveryResult`` and never
raise for the peer's behaviour, so the outbox can retry or dead-letter as for any channel.
"""

from __future__ import annotations

import json
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol

import aiosmtplib
import httpx

from hub.sdk import DeliveryResult, post_json


class Sender(Protocol):
    """Delivers a short text to one contact of the sender's kind (``phone`` or ``email``)."""

    kind: str

    async def send(self, to: str, subject: str, text: str, key: str) -> DeliveryResult:
        """``key`` is stable across retries of the same text; peers use it to drop repeats."""
        ...

    async def check(self) -> tuple[bool, str]:
        """Whether the peer answers, and what it said, for ``health``."""
        ...


class HttpSmsSender:
    """An HTTP SMS gateway: ``POST {url}/v1/sms`` with a bearer key and
    ``{"to", "text", "client_ref"}``; the gateway drops a repeated ``client_ref``. This is the
    protocol of the example gateway (``examples/sms-gateway``) and of
    ``hub.testing.standins.sms_gateway``; a bank with another gateway writes another sender."""

    kind = "phone"

    def __init__(self, url: str, api_key: str, http: httpx.AsyncClient) -> None:
        self._url = url.rstrip("/")
        self._api_key = api_key
        self._http = http

    async def send(self, to: str, subject: str, text: str, key: str) -> DeliveryResult:
        body = json.dumps(
            {"to": to, "text": text, "client_ref": key[:64]}, ensure_ascii=False
        ).encode()
        headers = {"authorization": f"Bearer {self._api_key}"}
        return await post_json(self._http, f"{self._url}/v1/sms", body, headers)

    async def check(self) -> tuple[bool, str]:
        try:
            response = await self._http.get(f"{self._url}/v1/health")
        except Exception as exc:
            return False, f"SMS gateway unreachable: {type(exc).__name__}"
        return response.status_code < 500, f"SMS gateway answered {response.status_code}"


class SmtpSender:
    """Mail through the bank's submission server (aiosmtplib). 4xx replies and connection
    failures are worth retrying; 5xx replies (unknown mailbox) are not."""

    kind = "email"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        ca_file: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._host = host
        self._port = port
        self._sender = sender
        self._username = username
        self._password = password
        self._starttls = starttls
        self._ca_file = ca_file
        self._timeout = timeout

    def _tls(self) -> ssl.SSLContext | None:
        if not self._starttls:
            return None
        return ssl.create_default_context(cafile=self._ca_file)

    async def send(self, to: str, subject: str, text: str, key: str) -> DeliveryResult:
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=False)
        domain = self._sender.rpartition("@")[2] or "tongdao.invalid"
        message["Message-ID"] = make_msgid(idstring=key[:40].replace("@", "-"), domain=domain)
        message.set_content(text)
        try:
            await aiosmtplib.send(
                message,
                hostname=self._host,
                port=self._port,
                username=self._username,
                password=self._password,
                start_tls=self._starttls,
                tls_context=self._tls(),
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPResponseException as exc:
            reason = f"SMTP {exc.code}: {exc.message}"[:200]
            if 400 <= exc.code < 500:
                return DeliveryResult.retry(reason)
            return DeliveryResult.give_up(reason)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return DeliveryResult.retry(f"SMTP unreachable: {type(exc).__name__}: {exc}"[:200])
        return DeliveryResult.delivered(str(message["Message-ID"]))

    async def check(self) -> tuple[bool, str]:
        client = aiosmtplib.SMTP(
            hostname=self._host, port=self._port, timeout=self._timeout, start_tls=False
        )
        try:
            await client.connect()
            await client.quit()
        except Exception as exc:
            return False, f"SMTP server unreachable: {type(exc).__name__}"
        return True, "SMTP server answered"
