"""The email channel: IMAP (and LMTP/SMTP delivery) in, SMTP out. See docs/channels/email.md."""

from connectors.email.config import EmailConfig
from connectors.email.connector import EmailConnector

__all__ = ["EmailConfig", "EmailConnector"]
