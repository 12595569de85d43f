"""The bank's anti-fraud system as a context provider: how risky the customer and the message
look (docs/context-providers.md)."""

from connectors.antifraud.provider import AntifraudConfig, AntifraudProvider

__all__ = ["AntifraudConfig", "AntifraudProvider"]
