"""The bank's CRM as a context provider: who the customer is (docs/context-providers.md)."""

from connectors.crm.provider import CrmConfig, CrmProvider

__all__ = ["CrmConfig", "CrmProvider"]
