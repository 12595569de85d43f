"""Mail delivered straight to the hub by the bank's mail server, over LMTP or SMTP (aiosmtpd).

Some banks would rather route the complaint address to an application than keep a mailbox
for it: the MTA delivers to us like to any final destination. The rule is the same as for
every channel: the server hears 250 only after the envelope is committed; if storing fails
it hears 451 and keeps the mail in its queue to try again, so nothing is lost in between.

Only the configured clients may deliver (the bank's MTAs; loopback by default), only to our
addresses (plus-addresses included), and only up to ``max_message_bytes`` (552 beyond it).
The envelope recipients are kept with the mail: a plus-address in ``RCPT TO`` is the
strongest threading evidence there is, and ``To:`` may not show it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from ipaddress import ip_address
from typing import Any

import structlog
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session

from connectors.email.config import EmailConfig
from connectors.email.headers import canonical_address
from hub.sdk import IngestResult

log = structlog.get_logger(__name__)

Deliver = Callable[[bytes, dict[str, Any]], Awaitable[IngestResult]]


class IntakeHandler:
    """The aiosmtpd handler: checks the client and recipients, stores, then answers."""

    def __init__(self, config: EmailConfig, deliver: Deliver) -> None:
        assert config.intake is not None
        self._config = config
        self._intake = config.intake
        self._deliver = deliver
        self._ours = {a.lower() for a in config.our_addresses}

    def _client_allowed(self, session: Session) -> bool:
        peer = session.peer[0] if isinstance(session.peer, tuple) else None
        try:
            address = ip_address(peer) if peer else None
        except ValueError:
            return False
        return address is not None and any(address in net for net in self._intake.allowed_clients)

    def _is_ours(self, address: str) -> bool:
        canonical = canonical_address(address)
        if canonical is None:
            return False
        local, _, domain = canonical.lower().rpartition("@")
        return f"{local.partition('+')[0]}@{domain}" in self._ours

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if not self._client_allowed(session):
            return "554 5.7.1 this client may not deliver here"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if not self._is_ours(address):
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        lmtp = isinstance(server, LMTP)
        try:
            result = await self._deliver(
                raw,
                {
                    "source": "lmtp" if lmtp else "smtp",
                    "rcpt_to": [str(r) for r in envelope.rcpt_tos][:50],
                    "mail_from": str(envelope.mail_from or "")[:320],
                    "client": session.peer[0] if isinstance(session.peer, tuple) else "",
                },
            )
        except Exception:
            log.exception("email.intake_store_failed")
            answer = "451 4.3.0 not stored; try again later"
        else:
            answer = f"250 2.0.0 stored as {result.receipt}"
        if lmtp:
            # LMTP answers DATA once per accepted recipient (RFC 2033 4.2); the mail is one
            # envelope for all of them, so each gets the same answer.
            for _ in envelope.rcpt_tos[1:]:
                await server.push(answer)
        return answer


class IntakeServer:
    """The listening socket, in the hub's own event loop."""

    def __init__(self, config: EmailConfig, deliver: Deliver) -> None:
        assert config.intake is not None
        self._config = config
        self._handler = IntakeHandler(config, deliver)
        self._server: asyncio.Server | None = None
        self.problem: str | None = None

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            return 0
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        intake = self._config.intake
        assert intake is not None
        protocol = LMTP if intake.protocol == "lmtp" else SMTP

        def factory() -> SMTP:
            return protocol(
                self._handler,
                data_size_limit=self._config.max_message_bytes,
                decode_data=False,
                enable_SMTPUTF8=True,
                hostname=self._config.id_domain,
                ident="Tongdao mail intake",
                timeout=self._config.timeout_seconds * 10,
            )

        try:
            self._server = await asyncio.get_running_loop().create_server(
                factory, intake.host, intake.port
            )
            self.problem = None
        except OSError as exc:
            # Every process of an installation starts its connectors; one of them gets the
            # port, the others only poll and send.
            self.problem = f"cannot listen on {intake.host}:{intake.port}: {exc.strerror}"
            log.warning("email.intake_not_listening", problem=self.problem)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
