"""Core systems (core banking, cards, payments) telling the hub what they have done."""

from connectors.core.connector import CoreConfig, CoreConnector

__all__ = ["CoreConfig", "CoreConnector"]
