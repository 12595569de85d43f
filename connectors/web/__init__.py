"""The customer's web channel: complaint form, contact confirmation, answers by SMS or email."""

from connectors.web.connector import WebConfig, WebConnector

__all__ = ["WebConfig", "WebConnector"]
