"""The customer's web: a public complaint form whose contact is confirmed by a one-time code
before the ticket opens, and the sender that brings the hub's answers to that contact.

Flow: ``GET /channels/web/`` shows the form (``/web/`` redirects here). ``POST`` checks the
CSRF token, the honeypot, the per-address limit, the fields and the files (by content), keeps
the submission as *pending* in the connector's shared state and sends a code to the contact.
``POST /confirm`` checks the code (constant time, single use, expiring, a few tries) and only
then stores the envelope and applies it at once (``ingest.apply``), so the page can show the
ticket number; the acknowledgement with the progress code leaves through the outbox to the
confirmed contact. Nobody can open a ticket in another person's name without that person's
phone or mailbox.

Nothing here uses JavaScript or an asset from elsewhere; pages are plain HTML forms with
inline CSS, so they work on any phone browser and under a strict Content-Security-Policy.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import math
import secrets
import uuid
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import AnyHttpUrl, Field, SecretStr, model_validator
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from connectors.web.forms import Checked, Contact, check
from connectors.web.guards import (
    SharedLimit,
    code_digest,
    code_ok,
    csrf_ok,
    csrf_token,
    new_browser_token,
    new_code,
    sniff,
)
from connectors.web.senders import HttpSmsSender, Sender, SmtpSender
from connectors.web.words import AREAS, KINDS, WORDS, Language, choose_language, size_text
from hub.sdk import (
    MIB,
    Attachment,
    BodyTooLarge,
    Capabilities,
    ChannelConnector,
    ConnectorConfig,
    ConnectorContext,
    DeliveryResult,
    Health,
    Identity,
    InboundEnvelope,
    InboundMessage,
    OutboundMessage,
    Unreadable,
    read_limited_body,
)

COOKIE = "td_web"
COOKIE_PATH = "/channels/web"
CHUNK = 48_000
"""Characters of base64 per state value (the state keeps values up to 64 KiB)."""
SECRET_LIFETIME = timedelta(days=3650)
_PAGE_HEADERS = {
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
    "content-security-policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
}
_pages = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


class WebConfig(ConnectorConfig):
    sms_gateway_url: AnyHttpUrl | None = Field(
        default=None, description="HTTP SMS gateway for codes and messages to phones"
    )
    sms_api_key: SecretStr | None = None
    smtp_host: str | None = Field(default=None, description="SMTP server for mail to addresses")
    smtp_port: int = Field(default=587, gt=0, lt=65536)
    smtp_starttls: bool = True
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str | None = Field(default=None, description="From: of the mail we send")
    smtp_ca_file: str | None = None
    code_ttl_seconds: int = Field(default=600, ge=60, le=3600)
    code_attempts: int = Field(default=5, ge=1, le=10)
    pending_ttl_seconds: int = Field(default=3600, ge=300, le=86400)
    submissions_per_address: int = Field(default=10, ge=1)
    address_window_seconds: int = Field(default=3600, ge=1)
    codes_per_contact: int = Field(default=3, ge=1)
    contact_window_seconds: int = Field(default=3600, ge=1)
    max_attachments: int = Field(default=3, ge=0, le=10)
    max_attachment_bytes: int = Field(default=5 * MIB, gt=0, le=20 * MIB)
    max_body_bytes: int = Field(default=16 * MIB, gt=0, le=64 * MIB)
    retention_years: int = Field(default=5, ge=1, le=30, description="said in the PIPL notice")
    secure_cookies: bool = Field(default=True, description="false only for plain-HTTP tests")

    @model_validator(mode="after")
    def _senders(self) -> WebConfig:
        if self.sms_gateway_url is None and self.smtp_host is None:
            raise ValueError("configure sms_gateway_url or smtp_host: codes need a way out")
        if self.sms_gateway_url is not None and self.sms_api_key is None:
            raise ValueError("sms_api_key is required with sms_gateway_url")
        if self.smtp_host is not None and not self.smtp_from:
            raise ValueError("smtp_from is required with smtp_host")
        if self.max_body_bytes < self.max_attachments * self.max_attachment_bytes:
            raise ValueError("max_body_bytes must hold max_attachments × max_attachment_bytes")
        return self


class Refused(Exception):
    """A submission the page answers with a message (``field`` None: at the top)."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def client_key(request: Request) -> str:
    """The address limits count by: IPv4, or an IPv6 /64 (one subscriber holds a whole /64).
    Behind a proxy, uvicorn has put the forwarded address here (FORWARDED_ALLOW_IPS)."""
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _minutes(seconds: float) -> int:
    return max(1, math.ceil(seconds / 60))


class WebConnector(ChannelConnector[WebConfig]):
    name = "web"
    sdk_version = "1.1"
    Config = WebConfig
    capabilities = Capabilities(
        message_kinds=("text",), attachments=True, max_attachment_bytes=5 * MIB
    )

    def __init__(self, config: WebConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self._secret: bytes | None = None
        self.senders: dict[str, Sender] = {}
        if config.sms_gateway_url is not None and config.sms_api_key is not None:
            self.senders["phone"] = HttpSmsSender(
                str(config.sms_gateway_url), config.sms_api_key.get_secret_value(), context.http
            )
        if config.smtp_host is not None and config.smtp_from:
            self.senders["email"] = SmtpSender(
                host=config.smtp_host,
                port=config.smtp_port,
                sender=config.smtp_from,
                username=config.smtp_username,
                password=config.smtp_password.get_secret_value() if config.smtp_password else None,
                starttls=config.smtp_starttls,
                ca_file=config.smtp_ca_file,
            )

    # --- shared secrets and limits --------------------------------------------------------

    async def secret(self) -> bytes:
        """One random key for the installation, made by whichever process asks first and kept
        in the shared state, so every process signs and checks the same CSRF tokens and codes."""
        if self._secret is None:
            state = self.context.state
            expires = self.context.clock.now() + SECRET_LIFETIME
            await state.claim("secret", secrets.token_hex(32), expires_at=expires)
            value = await state.get("secret")
            if value is None:  # pragma: no cover - only if the state lost it at once
                raise RuntimeError("the web connector's secret could not be kept")
            self._secret = bytes.fromhex(value)
        return self._secret

    async def _limit(self, name: str, limit: int, window_seconds: int) -> SharedLimit:
        return SharedLimit(
            self.context.state,
            self.context.clock,
            await self.secret(),
            name,
            limit,
            timedelta(seconds=window_seconds),
        )

    # --- routes ---------------------------------------------------------------------------

    def router(self) -> APIRouter:
        router = APIRouter(tags=["channel: web"], include_in_schema=False)
        router.add_api_route("/", self._form, methods=["GET"])
        router.add_api_route("/", self._submit, methods=["POST"])
        router.add_api_route("/confirm", self._confirm, methods=["POST"])
        router.add_api_route("/resend", self._resend, methods=["POST"])
        return router

    def _render(
        self,
        template: str,
        language: Language,
        browser_token: str,
        secret: bytes,
        *,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
        **values: Any,
    ) -> HTMLResponse:
        words = WORDS[language]
        html = _pages.get_template(template).render(
            lang=language,
            other_lang="en" if language == "zh-CN" else "zh-CN",
            words=words,
            csrf=csrf_token(secret, browser_token),
            kinds=KINDS,
            areas=AREAS,
            notice=words["notice.body"].format(years=self.config.retention_years),
            files_hint=words["attachments.hint"].format(
                count=self.config.max_attachments,
                size=size_text(self.config.max_attachment_bytes),
            ),
            max_attachments=self.config.max_attachments,
            contact_kinds=[k for k in ("phone", "email") if k in self.senders],
            **values,
        )
        response = HTMLResponse(
            html, status_code=status_code, headers={**_PAGE_HEADERS, **(headers or {})}
        )
        response.set_cookie(
            COOKIE,
            browser_token,
            max_age=self.config.pending_ttl_seconds,
            path=COOKIE_PATH,
            secure=self.config.secure_cookies,
            httponly=True,
            samesite="strict",
        )
        return response

    def _browser_token(self, request: Request) -> str:
        token = request.cookies.get(COOKIE, "")
        return token if 16 <= len(token) <= 64 else new_browser_token()

    def _form_page(
        self,
        request: Request,
        language: Language,
        secret: bytes,
        *,
        checked: Checked | None = None,
        error: str | None = None,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
    ) -> HTMLResponse:
        values = checked.values if checked else {}
        return self._render(
            "form.html",
            language,
            self._browser_token(request),
            secret,
            status_code=status_code,
            headers=headers,
            values={"contact_kind": "phone", **{k: v for k, v in values.items() if v}},
            errors=checked.errors if checked else {},
            error=error,
        )

    async def _form(self, request: Request) -> HTMLResponse:
        language = choose_language(
            request.query_params.get("lang"), request.headers.get("accept-language")
        )
        return self._form_page(request, language, await self.secret())

    async def _submit(self, request: Request) -> Response:
        secret = await self.secret()
        language = choose_language(
            request.query_params.get("lang"), request.headers.get("accept-language")
        )
        words = WORDS[language]
        try:
            body = await read_limited_body(request, self.config.max_body_bytes)
        except BodyTooLarge:
            message = words["too_large"].format(size=size_text(self.config.max_body_bytes))
            return self._form_page(request, language, secret, error=message, status_code=413)
        request._body = body  # the form parser reads the bounded copy, not the socket again
        try:
            form = await request.form(
                max_files=self.config.max_attachments + 1, max_fields=30, max_part_size=64 * 1024
            )
        except MultiPartException:
            return self._form_page(
                request, language, secret, error=words["refused"], status_code=400
            )
        raw = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        language = choose_language(raw.get("lang"), request.headers.get("accept-language"))
        words = WORDS[language]
        checked = check(raw, language)
        checked.values["lang"] = language
        try:
            if not csrf_ok(secret, request.cookies.get(COOKIE), raw.get("csrf")):
                raise Refused(403, words["csrf"])
            if raw.get("website"):
                raise Refused(400, words["refused"])
            limit = await self._limit(
                "address", self.config.submissions_per_address, self.config.address_window_seconds
            )
            wait = await limit.hit(client_key(request))
            if wait:
                raise Refused(429, words["flood"].format(minutes=_minutes(wait)))
            uploads = [v for v in form.getlist("attachments") if isinstance(v, UploadFile)]
            files = await self._read_files(uploads, language, checked)
            if checked.errors:
                if files or (uploads and any(u.filename for u in uploads)):
                    checked.errors.setdefault("attachments", words["files_again"])
                raise Refused(422, words["errors_above"])
            assert checked.contact is not None
            if checked.contact.kind not in self.senders:
                checked.errors["contact_kind"] = words["invalid_choice"]
                raise Refused(422, words["errors_above"])
            pending_id = uuid.uuid4().hex
            await self._keep_pending(pending_id, request, checked, files)
            return await self._send_code(request, pending_id, language, first=True)
        except Refused as refused:
            headers = {"retry-after": "60"} if refused.status == 429 else None
            return self._form_page(
                request,
                language,
                secret,
                checked=checked,
                error=refused.message,
                status_code=refused.status,
                headers=headers,
            )
        finally:
            await form.close()

    async def _read_files(
        self, uploads: list[UploadFile], language: Language, checked: Checked
    ) -> list[dict[str, str]]:
        words = WORDS[language]
        chosen = [u for u in uploads if u.filename]
        if len(chosen) > self.config.max_attachments:
            checked.errors["attachments"] = words["file_count"].format(
                count=self.config.max_attachments
            )
            return []
        files: list[dict[str, str]] = []
        limit = self.config.max_attachment_bytes
        for upload in chosen:
            name = Path((upload.filename or "file").replace("\\", "/")).name[:100] or "file"
            data = await upload.read(limit + 1)
            if len(data) > limit:
                checked.errors["attachments"] = words["file_size"].format(
                    name=name, size=size_text(limit)
                )
                return []
            sniffed = sniff(data)
            if sniffed is None:
                checked.errors["attachments"] = words["file_type"].format(name=name)
                return []
            content_type, extension = sniffed
            stem = Path(name).stem[:80] or "file"
            files.append(
                {
                    "name": f"{stem}{extension}",
                    "content_type": content_type,
                    "data": base64.b64encode(data).decode(),
                }
            )
        return files

    # --- pending submissions --------------------------------------------------------------

    def _pending_expiry(self) -> datetime:
        return self.context.clock.now() + timedelta(seconds=self.config.pending_ttl_seconds)

    async def _keep_pending(
        self, pending_id: str, request: Request, checked: Checked, files: list[dict[str, str]]
    ) -> None:
        """The submission waits in the shared state, attachments in chunks, until its code
        is confirmed or it expires (``pending_ttl_seconds``: then it is simply gone)."""
        expires = self._pending_expiry()
        state = self.context.state
        described = []
        for index, file in enumerate(files):
            data = file["data"]
            chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)] or [""]
            for number, chunk in enumerate(chunks):
                key = f"pending:{pending_id}:f{index}:{number}"
                await state.put(key, chunk, expires_at=expires)
            described.append(
                {"name": file["name"], "content_type": file["content_type"], "chunks": len(chunks)}
            )
        assert checked.contact is not None
        values = checked.values
        record = {
            "lang": values["lang"],
            "kind": values["kind"],
            "area": values["area"],
            "description": values["description"].strip(),
            "contact": asdict(checked.contact),
            "files": described,
            "browser": csrf_token(await self.secret(), request.cookies.get(COOKIE, "")),
            "code": "",
            "code_expires_at": "",
            "generation": 0,
        }
        await state.put(f"pending:{pending_id}", json.dumps(record), expires_at=expires)

    async def _load(self, request: Request, pending_id: str) -> dict[str, Any] | None:
        """The pending submission, if it exists and was started in this browser."""
        if not pending_id.isalnum() or len(pending_id) != 32:
            return None
        raw = await self.context.state.get(f"pending:{pending_id}")
        if raw is None:
            return None
        record: dict[str, Any] = json.loads(raw)
        browser = csrf_token(await self.secret(), request.cookies.get(COOKIE, ""))
        if not secrets.compare_digest(record["browser"], browser):
            return None
        return record

    async def _discard(self, pending_id: str, record: dict[str, Any]) -> None:
        state = self.context.state
        for index, file in enumerate(record["files"]):
            for number in range(file["chunks"]):
                await state.delete(f"pending:{pending_id}:f{index}:{number}")
        await state.delete(f"pending:{pending_id}")

    async def _send_code(
        self,
        request: Request,
        pending_id: str,
        language: Language,
        *,
        first: bool,
    ) -> HTMLResponse:
        secret = await self.secret()
        words = WORDS[language]
        record = await self._load(request, pending_id)
        if record is None:
            return self._form_page(request, language, secret, error=words["gone"], status_code=410)
        contact = Contact(**record["contact"])
        limit = await self._limit(
            "contact", self.config.codes_per_contact, self.config.contact_window_seconds
        )
        wait = await limit.hit(f"{contact.kind}:{contact.value}")
        if wait:
            message = words["contact_flood"].format(minutes=_minutes(wait))
            if first:
                checked = Checked(self._values_of(record), {contact.kind: message})
                return self._form_page(
                    request, language, secret, checked=checked, error=message, status_code=429
                )
            return self._confirm_page(request, pending_id, record, language, message, 429)
        code = new_code()
        record["generation"] += 1
        record["code"] = code_digest(secret, pending_id, code)
        expires = self.context.clock.now() + timedelta(seconds=self.config.code_ttl_seconds)
        record["code_expires_at"] = expires.isoformat()
        text = (
            f"您的验证码是 {code}，{self.config.code_ttl_seconds // 60} 分钟内有效。"
            "请勿告诉他人；本行工作人员不会向您索要验证码。"
            if language == "zh-CN"
            else f"Your code is {code}, valid for {self.config.code_ttl_seconds // 60} minutes. "
            "Never tell it to anyone; our staff will never ask for it."
        )
        subject = "验证码" if language == "zh-CN" else "Your code"
        sent = await self.senders[contact.kind].send(
            contact.value, subject, text, f"code-{pending_id}-{record['generation']}"
        )
        if sent.status.value != "delivered":
            message = words["send_failed"]
            checked = Checked(self._values_of(record), {contact.kind: message})
            return self._form_page(
                request, language, secret, checked=checked, error=message, status_code=502
            )
        await self.context.state.put(
            f"pending:{pending_id}", json.dumps(record), expires_at=self._pending_expiry()
        )
        return self._confirm_page(request, pending_id, record, language, None, 200)

    @staticmethod
    def _values_of(record: dict[str, Any]) -> dict[str, str]:
        contact = record["contact"]
        return {
            "lang": record["lang"],
            "kind": record["kind"],
            "area": record["area"],
            "description": record["description"],
            "contact_kind": contact["kind"],
            contact["kind"]: contact["value"],
            "consent": "yes",
        }

    def _confirm_page(
        self,
        request: Request,
        pending_id: str,
        record: dict[str, Any],
        language: Language,
        error: str | None,
        status_code: int,
        *,
        resend: bool = True,
    ) -> HTMLResponse:
        words = WORDS[language]
        contact = Contact(**record["contact"])
        return self._render(
            "confirm.html",
            language,
            self._browser_token(request),
            self._secret or b"",
            status_code=status_code,
            pending=pending_id,
            sent=words["confirm.sent"].format(
                contact=contact.masked(), minutes=self.config.code_ttl_seconds // 60
            ),
            error=error,
            resend=resend,
        )

    async def _small_form(self, request: Request) -> tuple[dict[str, str], Language, bool]:
        """A confirm or resend form: small, text only, CSRF-checked."""
        try:
            body = await read_limited_body(request, 4096)
        except BodyTooLarge:
            return {}, "zh-CN", False
        request._body = body
        try:
            form = await request.form(max_files=0, max_fields=10)
        except MultiPartException:
            return {}, "zh-CN", False
        raw = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        language = choose_language(raw.get("lang"), request.headers.get("accept-language"))
        ok = csrf_ok(await self.secret(), request.cookies.get(COOKIE), raw.get("csrf"))
        return raw, language, ok

    async def _resend(self, request: Request) -> HTMLResponse:
        raw, language, ok = await self._small_form(request)
        if not ok:
            return self._form_page(
                request,
                language,
                await self.secret(),
                error=WORDS[language]["csrf"],
                status_code=403,
            )
        return await self._send_code(request, raw.get("pending", ""), language, first=False)

    async def _confirm(self, request: Request) -> HTMLResponse:
        raw, language, ok = await self._small_form(request)
        secret = await self.secret()
        words = WORDS[language]
        if not ok:
            return self._form_page(request, language, secret, error=words["csrf"], status_code=403)
        pending_id = raw.get("pending", "")
        record = await self._load(request, pending_id)
        if record is None or not record["code"]:
            return self._form_page(request, language, secret, error=words["gone"], status_code=410)
        now = self.context.clock.now()
        if now >= datetime.fromisoformat(record["code_expires_at"]):
            return self._confirm_page(
                request, pending_id, record, language, words["code_expired"], 410
            )
        # Tries are counted per code generation in atomic leases, so parallel guesses from
        # several processes cannot exceed the limit either.
        tries = await self._limit(
            f"tries:{pending_id}:{record['generation']}",
            self.config.code_attempts,
            self.config.pending_ttl_seconds,
        )
        if await tries.hit(pending_id):
            await self._discard(pending_id, record)
            return self._form_page(
                request,
                language,
                secret,
                checked=Checked(self._values_of(record)),
                error=words["too_many_codes"],
                status_code=429,
            )
        if not code_ok(secret, pending_id, raw.get("code", ""), record["code"]):
            used = await self._tries_used(pending_id, record)
            left = max(self.config.code_attempts - used, 0)
            if left == 0:
                await self._discard(pending_id, record)
                return self._form_page(
                    request,
                    language,
                    secret,
                    checked=Checked(self._values_of(record)),
                    error=words["too_many_codes"],
                    status_code=429,
                )
            return self._confirm_page(
                request, pending_id, record, language, words["wrong_code"].format(left=left), 422
            )
        # Single use: only the request that removes the code goes on; a second one finds no
        # code (or the same envelope, deduplicated by its external id).
        if not await self.context.state.claim(
            f"confirmed:{pending_id}", "1", expires_at=self._pending_expiry()
        ):
            return self._form_page(request, language, secret, error=words["gone"], status_code=410)
        envelope = await self._envelope(pending_id, record)
        result = await self.context.ingest.apply(envelope)
        await self._discard(pending_id, record)
        contact = Contact(**record["contact"]).masked()
        return self._render(
            "done.html",
            language,
            self._browser_token(request),
            secret,
            number=result.ticket_number,
            ack=words["done.ack"].format(contact=contact),
            later=words["done.later"].format(contact=contact),
        )

    async def _tries_used(self, pending_id: str, record: dict[str, Any]) -> int:
        keys = await self.context.state.keys(f"limit:tries:{pending_id}:{record['generation']}:")
        return len(keys)

    async def _envelope(self, pending_id: str, record: dict[str, Any]) -> InboundEnvelope:
        state = self.context.state
        attachments = []
        for index, file in enumerate(record["files"]):
            parts = []
            for number in range(file["chunks"]):
                parts.append(await state.get(f"pending:{pending_id}:f{index}:{number}") or "")
            attachments.append(
                {"name": file["name"], "content_type": file["content_type"], "data": "".join(parts)}
            )
        body = {
            "v": 1,
            "type": "submission",
            "lang": record["lang"],
            "kind": record["kind"],
            "area": record["area"],
            "description": record["description"],
            "contact": record["contact"],
            "attachments": attachments,
        }
        return InboundEnvelope(
            channel=self.name,
            external_id=f"submission:{pending_id}",
            body=json.dumps(body, ensure_ascii=False).encode(),
            content_type="application/json",
            received_at=self.context.clock.now(),
        )

    # --- the progress page's follow-ups ---------------------------------------------------

    def followup_envelope(
        self,
        *,
        ticket_number: str,
        reply_to: dict[str, Any],
        nonce: str,
        text: str | None = None,
        score: int | None = None,
        received_at: datetime,
    ) -> InboundEnvelope | None:
        """An envelope for what a customer added on the progress page (the hub's page calls
        this after checking the number and the progress code), or ``None`` when the ticket's
        reply address is not a contact this channel confirmed. The identity is the contact
        confirmed when the ticket opened, so the message threads onto that customer's ticket;
        ``nonce`` comes from the page's form, so submitting the same form twice stores once."""
        contact = _contact_of(reply_to)
        if contact is None or (text is None) == (score is None):
            return None
        body: dict[str, Any] = {
            "v": 1,
            "type": "rating" if score is not None else "followup",
            "lang": str(reply_to.get("lang", "zh-CN")),
            "ticket_number": ticket_number,
            "contact": asdict(contact),
        }
        if score is not None:
            body["score"] = score
        else:
            body["text"] = text
        return InboundEnvelope(
            channel=self.name,
            external_id=f"{body['type']}:{nonce}"[:200],
            body=json.dumps(body, ensure_ascii=False).encode(),
            content_type="application/json",
            received_at=received_at,
        )

    # --- parse and send -------------------------------------------------------------------

    def parse(self, envelope: InboundEnvelope) -> InboundMessage:
        try:
            body = json.loads(envelope.body)
            contact = Contact(**body["contact"])
            kind = body["type"]
        except (ValueError, KeyError, TypeError) as exc:
            raise Unreadable(f"not a web channel envelope: {type(exc).__name__}") from exc
        identity = Identity(contact.kind, contact.value, verified=True)
        reply = {contact.kind: contact.value, "lang": body.get("lang", "zh-CN")}
        if kind == "submission":
            language: Language = "en" if body.get("lang") == "en" else "zh-CN"
            return InboundMessage(
                text=body["description"],
                identities=(identity,),
                sent_at=envelope.received_at,
                reply_address=reply,
                subject=WORDS[language].get(f"area.{body['area']}", ""),
                kind_hint=body["kind"] if body["kind"] in KINDS else None,
                language=language,
                attachments=tuple(
                    Attachment(a["name"], a["content_type"], base64.b64decode(a["data"]))
                    for a in body.get("attachments", [])
                ),
            )
        if kind in ("followup", "rating"):
            # A rating is a message that is only the score: the core reads it as the answer
            # to the satisfaction survey and records it without reopening the ticket.
            text = str(body["score"]) if kind == "rating" else str(body["text"])
            return InboundMessage(
                text=text,
                identities=(identity,),
                sent_at=envelope.received_at,
                reply_address=reply,
                ticket_reference=str(body["ticket_number"]),
            )
        raise Unreadable(f"unknown web envelope type {kind!r}")

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        contact = _contact_of(message.recipient)
        if contact is None:
            return DeliveryResult.give_up("the recipient has no confirmed phone or email")
        sender = self.senders.get(contact.kind)
        if sender is None:
            return DeliveryResult.give_up(f"no sender configured for {contact.kind}")
        subject = f"[{message.ticket_number}] " + (
            "Your case" if message.recipient.get("lang") == "en" else "您的工单"
        )
        return await sender.send(contact.value, subject, message.text, message.idempotency_key)

    async def health(self) -> Health:
        details = []
        ok = True
        for kind, sender in sorted(self.senders.items()):
            up, detail = await sender.check()
            ok = ok and up
            details.append(f"{kind}: {detail}")
        return Health(ok=ok, detail="; ".join(details))


def _contact_of(address: dict[str, Any]) -> Contact | None:
    for kind in ("phone", "email"):
        value = address.get(kind)
        if isinstance(value, str) and value:
            return Contact(kind, value)
    return None
