"""Test tools for connector authors and for the hub's own tests."""

from hub.testing.receiver import SignedWebhookReceiver
from hub.testing.server import free_port, serving

__all__ = ["SignedWebhookReceiver", "free_port", "serving"]
