"""From a connector's parsed message to the core's ``IncomingMessage``: classification and PII masks."""

from normalizer.classify import Classification, classify
from normalizer.normalize import normalize
from normalizer.pii import mask_email, mask_identity, mask_name, mask_opaque, mask_phone

__all__ = [
    "Classification",
    "classify",
    "mask_email",
    "mask_identity",
    "mask_name",
    "mask_opaque",
    "mask_phone",
    "normalize",
]
