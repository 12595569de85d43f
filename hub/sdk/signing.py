"""Standard Webhooks signatures, both ways.

``webhook-signature`` is ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``, keyed with
the decoded bytes of a ``whsec_<base64>`` secret. Several signatures may be sent, separated
by spaces, and several secrets may be accepted, so secrets can be rotated with an overlap.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime

SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE = 300
_NO_MATCH = "webhook-signature does not match"


class SignatureError(Exception):
    """Why a signed request was refused; the text is safe to return to the peer."""


def generate_secret(nbytes: int = 32) -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(nbytes)).decode()


def decode_secret(secret: str) -> bytes:
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a webhook secret starts with {SECRET_PREFIX!r}")
    raw = secret[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a webhook secret is whsec_ followed by base64") from exc
    if len(key) < 16:
        raise ValueError("a webhook secret must hold at least 16 bytes")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(decode_secret(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def signed_headers(secret: str, msg_id: str, body: bytes, now: datetime) -> dict[str, str]:
    timestamp = int(now.timestamp())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


def verify(
    secrets_: Sequence[str],
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
    tolerance: int = DEFAULT_TOLERANCE,
) -> str:
    """Check a signed request; return its ``webhook-id`` or raise ``SignatureError`` saying why."""
    headers = {key.lower(): value for key, value in headers.items()}
    msg_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    signature = headers.get("webhook-signature")
    missing = [
        name
        for name, value in (
            ("webhook-id", msg_id),
            ("webhook-timestamp", stamp),
            ("webhook-signature", signature),
        )
        if not value
    ]
    if missing:
        raise SignatureError("missing header(s): " + ", ".join(missing))
    assert msg_id and stamp and signature
    if len(msg_id) > 200:
        raise SignatureError("webhook-id is longer than 200 characters")
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
        raise SignatureError("webhook-timestamp is not unix seconds")
    timestamp = int(stamp)
    skew = now.timestamp() - timestamp
    if abs(skew) > tolerance:
        direction = "old" if skew > 0 else "far in the future"
        raise SignatureError(f"webhook-timestamp is too {direction} ({int(abs(skew))} s off)")
    offered = []
    for part in signature.split():
        version, _, value = part.partition(",")
        if version == "v1" and value:
            try:
                offered.append(base64.b64decode(value, validate=True))
            except (binascii.Error, ValueError):
                continue
    if not offered:
        raise SignatureError("webhook-signature holds no v1 signature")
    signed = f"{msg_id}.{timestamp}.".encode() + body
    for secret in secrets_:
        expected = hmac.new(decode_secret(secret), signed, hashlib.sha256).digest()
        if any(hmac.compare_digest(expected, candidate) for candidate in offered):
            return msg_id
    raise SignatureError(_NO_MATCH)


def verify_signer(
    signers: Mapping[str, Sequence[str]],
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
    tolerance: int = DEFAULT_TOLERANCE,
    *,
    what: str = "peer",
) -> tuple[str, str]:
    """Which of several peers, each known by its secrets, signed the request, and its
    ``webhook-id``. A problem that would be the same whoever signed (missing headers, a stale
    timestamp) is reported as it is; otherwise "matches no configured <what>"."""
    for name in sorted(signers):
        try:
            return name, verify(signers[name], headers, body, now, tolerance)
        except SignatureError as exc:
            if str(exc) != _NO_MATCH:
                raise
    raise SignatureError(f"webhook-signature matches no configured {what}")
