"""The pytest plugin behind the conformance kit (registered through the ``pytest11`` entry
point): fixtures a connector's own tests can use beside the standard suite."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from hub.testing.memory_ingest import InMemoryIngest
from hub.testing.peer import ScriptedPeer


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
