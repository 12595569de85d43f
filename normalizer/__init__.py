"""From a connector's parsed message to the core's ``IncomingMessage``.

Classification of what the customer wants, and masks for personal data.
"""

from normalizer.classify import (
    Classification,
    Classifier,
    Opinion,
    Understanding,
    build_understanding,
    classify,
)
from normalizer.normalize import normalize
from normalizer.pii import mask_email, mask_identity, mask_name, mask_opaque, mask_phone

__all__ = [
    "Classification",
    "Classifier",
    "Opinion",
    "Understanding",
    "build_understanding",
    "classify",
    "mask_email",
    "mask_identity",
    "mask_name",
    "mask_opaque",
    "mask_phone",
    "normalize",
]
