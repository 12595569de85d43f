"""Field types and answers every connector needs the same way."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from fastapi import Response
from pydantic import AfterValidator, StringConstraints

from hub.sdk.signing import decode_secret

# C0 controls but tab, newline and carriage return; PostgreSQL cannot store NUL in text.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _secret(value: str) -> str:
    decode_secret(value)
    return value


def _plain(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("control characters (such as NUL) are not allowed")
    return value


WebhookSecret = Annotated[str, AfterValidator(_secret)]
"""A ``whsec_`` + base64 secret of at least 16 bytes."""

PlainText = Annotated[str, AfterValidator(_plain)]

BearerToken = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{16,4096}$")]
"""A token sent as ``Authorization: Bearer`` (printable ASCII, 16 characters or more)."""
"""Text a customer or system wrote: any characters but control characters."""


def receipt_response(receipt: str, created: bool, **extra: Any) -> Response:
    """202 with the receipt for a new envelope, 200 with the first receipt for a repeat."""
    return Response(
        json.dumps({"receipt": receipt, **extra}),
        status_code=202 if created else 200,
        media_type="application/json",
    )
