"""The 12378 regulator-transfer channel (../shared/specs/hotline12378.md): signed transfers
pushed in or loaded from the regulator's sheets, result feedback sent back to the branch."""

from connectors.hotline12378.config import BranchConfig, Hotline12378Config
from connectors.hotline12378.connector import FEEDBACK_PURPOSE, Hotline12378Connector

__all__ = ["FEEDBACK_PURPOSE", "BranchConfig", "Hotline12378Config", "Hotline12378Connector"]
