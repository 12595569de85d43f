"""The connector SDK: the only part of the hub a connector imports."""

from hub.sdk.batch import BatchField, BatchImporter, BatchRow, ColumnMapping, RowRejected
from hub.sdk.connector import (
    Capabilities,
    ChannelConnector,
    Clock,
    ConnectorConfig,
    ConnectorContext,
    Health,
    PollResult,
)
from hub.sdk.context import (
    ContextProvider,
    ContextRefused,
    ContextRequest,
    ContextUnavailable,
    CustomerContext,
    SignedHttpConfig,
    post_signed_json,
)
from hub.sdk.delivery import (
    DeliveryResult,
    DeliveryStatus,
    OutboundMessage,
    classify_exception,
    classify_response,
    post_json,
)
from hub.sdk.envelope import ApplyResult, InboundEnvelope, Ingest, IngestResult, Unreadable
from hub.sdk.fields import BearerToken, PlainText, WebhookSecret, receipt_response
from hub.sdk.http import MIB, BodyTooLarge, error_response, read_limited_body, validation_errors
from hub.sdk.message import Attachment, Identity, InboundMessage, TicketCommand
from hub.sdk.signing import (
    SignatureError,
    decode_secret,
    generate_secret,
    sign,
    signed_headers,
    verify,
    verify_signer,
)
from hub.sdk.state import ConnectorState, MemoryState
from hub.sdk.version import SDK_VERSION, IncompatibleConnector, check_compatible

__all__ = [
    "MIB",
    "SDK_VERSION",
    "ApplyResult",
    "Attachment",
    "BatchField",
    "BatchImporter",
    "BatchRow",
    "BearerToken",
    "BodyTooLarge",
    "Capabilities",
    "ChannelConnector",
    "Clock",
    "ColumnMapping",
    "ConnectorConfig",
    "ConnectorContext",
    "ConnectorState",
    "ContextProvider",
    "ContextRefused",
    "ContextRequest",
    "ContextUnavailable",
    "CustomerContext",
    "DeliveryResult",
    "DeliveryStatus",
    "Health",
    "Identity",
    "InboundEnvelope",
    "InboundMessage",
    "IncompatibleConnector",
    "Ingest",
    "IngestResult",
    "MemoryState",
    "OutboundMessage",
    "PlainText",
    "PollResult",
    "RowRejected",
    "SignatureError",
    "SignedHttpConfig",
    "TicketCommand",
    "Unreadable",
    "WebhookSecret",
    "check_compatible",
    "classify_exception",
    "classify_response",
    "decode_secret",
    "error_response",
    "generate_secret",
    "post_json",
    "post_signed_json",
    "read_limited_body",
    "receipt_response",
    "sign",
    "signed_headers",
    "validation_errors",
    "verify",
    "verify_signer",
]
