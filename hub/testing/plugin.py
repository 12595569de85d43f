"""The pytest plugin behind the conformance kit (registered through the ``pytest11`` entry
point): fixtures a connector's own tests can use beside the standard suite."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio

from hub.testing.memory_ingest import InMemoryIngest
from hub.testing.peer import ScriptedPeer

if TYPE_CHECKING:
    from hub.testing.standins.dovecot import Account, DovecotServer
    from hub.testing.standins.smtp import SmtpStandIn


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "conformance: the standard tests of the Tongdao connector kit"
    )


@pytest_asyncio.fixture
async def scripted_peer() -> AsyncIterator[ScriptedPeer]:
    """An HTTP peer on loopback that answers as told (``peer.answer = PeerAnswer(...)``)."""
    peer = ScriptedPeer()
    await peer.start()
    yield peer
    await peer.stop()


@pytest.fixture
def memory_ingest() -> InMemoryIngest:
    """An in-memory envelope store with the hub's dedupe rule."""
    return InMemoryIngest()


@pytest.fixture(scope="session")
def dovecot_server() -> Iterator[DovecotServer]:
    """A real IMAP server (Dovecot, unprivileged, loopback) shared by the session; skips when
    Dovecot is not installed, fails instead when ``TONGDAO_TEST_REQUIRE_DOVECOT=1``."""
    from hub.testing.standins.dovecot import DovecotServer, require_binary

    server = DovecotServer(require_binary()).start()
    yield server
    server.stop()


@pytest.fixture
def mail_account(dovecot_server: DovecotServer) -> Account:
    """A fresh, empty mailbox on ``dovecot_server``."""
    return dovecot_server.add_user()


@pytest_asyncio.fixture
async def smtp_standin() -> AsyncIterator[SmtpStandIn]:
    """A real SMTP server on loopback that keeps what it receives and answers as told."""
    from hub.testing.standins.smtp import SmtpStandIn

    server = SmtpStandIn()
    await server.start()
    yield server
    await server.stop()
