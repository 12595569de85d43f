"""Test tools for connector authors and for the hub's own tests."""

from hub.testing.receiver import SignedWebhookReceiver

__all__ = ["SignedWebhookReceiver"]
