"""A real SMTP server for tests and demos: aiosmtpd on loopback, in the running event loop.

It is the receiving side of the wire as any mail server is: it speaks SMTP (EHLO, optional
STARTTLS with a test CA and optional AUTH), takes messages, and keeps what it took, parsed,
for tests to inspect. It can be told how to answer DATA, the way the conformance kit scripts
an HTTP peer: ``answer = PeerAnswer(451, b"4.7.1 try later")`` for a temporary failure,
``PeerAnswer(550, b"5.1.1 user unknown")`` for a permanent one, ``delay`` for a slow server;
``rcpt_answer`` refuses recipients. Every DATA attempt is recorded in ``requests``, and only
accepted mail in ``received``.
"""

from __future__ import annotations

import asyncio
import ssl
import tempfile
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from hub.testing.peer import PeerAnswer
from hub.testing.standins.certificates import StandInCertificates, make_certificates


@dataclass(frozen=True, slots=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    authenticated_as: str | None = None
    tls: bool = False

    def message(self) -> EmailMessage:
        parsed = BytesParser(policy=policy.default).parsebytes(self.data)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class SmtpStandIn:
    users: dict[str, str] = field(default_factory=dict)
    """``{username: password}``; when given, AUTH is required before MAIL."""
    tls: bool = False
    """Offer STARTTLS (required before AUTH) with a certificate from a test CA (``ca_file``)."""
    answer: PeerAnswer = field(default_factory=lambda: PeerAnswer(250, b"2.0.0 queued"))
    rcpt_answer: str | None = None
    """An SMTP reply to every RCPT instead of accepting it (``"550 5.1.1 user unknown"``)."""
    received: list[ReceivedMail] = field(default_factory=list)
    requests: list[ReceivedMail] = field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 0
    certificates: StandInCertificates | None = None
    _server: asyncio.Server | None = field(default=None, init=False, repr=False)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    @property
    def ca_file(self) -> str | None:
        return str(self.certificates.ca_file) if self.certificates else None

    async def start(self) -> str:
        context = None
        if self.tls:
            self.certificates = make_certificates(Path(tempfile.mkdtemp(prefix="tongdao-smtp-")))
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.certificates.cert_file, self.certificates.key_file)

        def factory() -> SMTP:
            return SMTP(
                _Handler(self),
                hostname="smtp.stand-in.test",
                decode_data=False,
                enable_SMTPUTF8=True,
                tls_context=context,
                require_starttls=self.tls,
                authenticator=self._authenticate if self.users else None,
                auth_required=bool(self.users),
                auth_require_tls=self.tls,
            )

        self._server = await asyncio.get_running_loop().create_server(factory, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.url

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMail]:
        """The first ``count`` accepted mails, waiting at most ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.received[:count]

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: object
    ) -> AuthResult:
        if isinstance(data, LoginPassword):
            user = data.login.decode()
            if self.users.get(user) == data.password.decode():
                return AuthResult(success=True, auth_data=user)
        return AuthResult(success=False, handled=False)


class _Handler:
    def __init__(self, stand_in: SmtpStandIn) -> None:
        self._stand_in = stand_in

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self._stand_in.rcpt_answer:
            return self._stand_in.rcpt_answer
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        stand_in = self._stand_in
        mail = ReceivedMail(
            mail_from=str(envelope.mail_from),
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=bytes(envelope.original_content or b""),
            authenticated_as=str(session.auth_data) if session.authenticated else None,
            tls=session.ssl is not None,
        )
        stand_in.requests.append(mail)
        answer = stand_in.answer
        if answer.delay:
            await asyncio.sleep(answer.delay)
        text = answer.body.decode("utf-8", "replace").strip()
        if 200 <= answer.status < 300:
            stand_in.received.append(mail)
            stand_in._arrived.set()
            return f"250 {text or '2.0.0 queued'}"
        return f"{answer.status} {text or 'refused'}"
