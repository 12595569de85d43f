"""The app channel (specs/api.md): signed pushes in, signed callbacks out."""

from connectors.app.connector import AppConfig, AppConnector

__all__ = ["AppConfig", "AppConnector"]
