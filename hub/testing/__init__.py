"""Test tools for connector authors (the conformance kit) and for the hub's own tests.

``hub.testing.plugin`` is registered as a pytest plugin (entry point ``pytest11``), so a
connector package's tests get its fixtures just by having Tongdao installed. The conformance
kit needs pytest and is loaded on first use, so the stand-ins here (the signed-webhook
receiver, the scripted peer) also serve ``tongdao demo`` without the test tools installed.
"""

from typing import TYPE_CHECKING, Any

from hub.testing.memory_ingest import InMemoryIngest
from hub.testing.peer import PeerAnswer, ScriptedPeer
from hub.testing.receiver import SignedWebhookReceiver
from hub.testing.server import free_port, serving

if TYPE_CHECKING:
    from hub.testing.conformance import (
        ConnectorConformance,
        ConnectorHarness,
        HttpConnectorHarness,
        InboundRequest,
        Kit,
    )
    from hub.testing.context_conformance import (
        ContextProviderConformance,
        ContextProviderHarness,
    )

_KIT = {"ConnectorConformance", "ConnectorHarness", "HttpConnectorHarness", "InboundRequest", "Kit"}
_CONTEXT_KIT = {"ContextProviderConformance", "ContextProviderHarness"}


def __getattr__(name: str) -> Any:
    if name in _KIT:
        from hub.testing import conformance

        return getattr(conformance, name)
    if name in _CONTEXT_KIT:
        from hub.testing import context_conformance

        return getattr(context_conformance, name)
    raise AttributeError(f"module 'hub.testing' has no attribute {name!r}")


__all__ = [
    "ConnectorConformance",
    "ConnectorHarness",
    "ContextProviderConformance",
    "ContextProviderHarness",
    "HttpConnectorHarness",
    "InMemoryIngest",
    "InboundRequest",
    "Kit",
    "PeerAnswer",
    "ScriptedPeer",
    "SignedWebhookReceiver",
    "free_port",
    "serving",
]
