"""The email connector wired to real servers for tests: a Dovecot account in, an aiosmtpd
stand-in out, and the hub's collaborators (in-memory ingest and state, a manual clock)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx

from connectors.email import EmailConnector
from hub.registry import build_config
from hub.sdk import ConnectorContext, MemoryState
from hub.testing import InMemoryIngest
from hub.testing.standins.dovecot import Account, DovecotServer
from hub.testing.standins.smtp import SmtpStandIn
from ticket_core import ManualClock


def email_config(
    account: Account | None = None,
    dovecot: DovecotServer | None = None,
    smtp: SmtpStandIn | dict[str, Any] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """``[connectors.email]`` for the test servers (``smtp`` a stand-in or its own table);
    ``overrides`` replace top-level keys."""
    config: dict[str, Any] = {
        "address": account.address if account else "support@bank.test",
        "display_name": "某某银行客服",
        "timeout_seconds": 5,
        "idle": False,
    }
    if account is not None and dovecot is not None:
        config["mailboxes"] = [
            {
                "name": "complaints",
                "host": dovecot.host,
                "port": dovecot.port,
                "security": "none",
                "username": account.address,
                "password": account.password,
            }
        ]
    if isinstance(smtp, SmtpStandIn):
        config["smtp"] = {"host": smtp.host, "port": smtp.port, "security": "none"}
    elif smtp is not None:
        config["smtp"] = smtp
    config.update(overrides)
    return config


@contextlib.asynccontextmanager
async def running_connector(
    config: dict[str, Any],
    *,
    ingest: InMemoryIngest | None = None,
    state: MemoryState | None = None,
    clock: ManualClock | None = None,
) -> AsyncIterator[EmailConnector]:
    """The connector started with ``config``, stopped afterwards."""
    clock = clock or ManualClock(datetime.now(UTC).replace(microsecond=0))
    async with httpx.AsyncClient(timeout=5) as http:
        connector = EmailConnector(
            build_config("email", EmailConnector, config),
            ConnectorContext(
                name="email",
                ingest=ingest or InMemoryIngest(),
                http=http,
                clock=clock,
                state=state or MemoryState(clock.now),
            ),
        )
        await connector.start()
        try:
            yield connector
        finally:
            await connector.stop()
