"""WeChat's push signatures and message encryption, checked before anything is trusted.

* ``signature`` = SHA-1 of the sorted, concatenated ``token``, ``timestamp``, ``nonce``: on
  every push and on the server-verification GET. It proves the sender knows the token.
* ``msg_signature`` = SHA-1 of the sorted ``token``, ``timestamp``, ``nonce`` and the
  ``Encrypt`` text: in compatible and safe mode, over the ciphertext.
* ``Encrypt`` = base64 of AES-256-CBC (key = base64 of EncodingAESKey + "=", IV = its first 16
  bytes, PKCS#7 padding to 32-byte blocks) over 16 random bytes, the message's length (4 bytes,
  big-endian), the message, and the AppID. wechatpy does the decryption; the AppID at the end
  must be this account's.

Comparisons are constant-time; the decryption is wrapped so that no malformed ciphertext
(wrong length, bad padding, a length field pointing past the end, bytes that are not UTF-8)
raises anything but ``PushRefused``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re

from wechatpy.crypto import PrpCrypto
from wechatpy.exceptions import InvalidAppIdException

_SIGNATURE = re.compile(r"[0-9a-f]{40}")


class PushRefused(Exception):
    """Why a push was refused, safe to return; ``status`` is the HTTP answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def sha1_signature(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def check_signature(token: str, signature: str, *parts: str) -> None:
    """``signature`` must be the SHA-1 of ``token`` and ``parts``, sorted; else 401."""
    if not _SIGNATURE.fullmatch(signature):
        raise PushRefused(401, "signature is missing or not 40 hex digits")
    expected = sha1_signature(token, *parts)
    if not hmac.compare_digest(expected, signature):
        raise PushRefused(401, "signature does not match")


def decrypt(aes_key: bytes, app_id: str, encrypted: str) -> bytes:
    """The inner message's bytes; ``PushRefused`` (400) when it cannot be read or names
    another AppID."""
    try:
        raw = base64.b64decode(encrypted, validate=True)
    except (binascii.Error, ValueError):
        raise PushRefused(400, "Encrypt is not base64") from None
    if not raw or len(raw) % 32:
        raise PushRefused(400, "Encrypt is not a whole number of 32-byte blocks")
    try:
        # wechatpy reads the random prefix, the length and the AppID, and raises on a
        # different AppID; anything else it raises means the plaintext is garbage.
        text = PrpCrypto(aes_key).decrypt(encrypted, app_id)
    except InvalidAppIdException:
        raise PushRefused(
            400, "the message names another AppID, or another EncodingAESKey encrypted it"
        ) from None
    except Exception:
        raise PushRefused(400, "Encrypt cannot be decrypted with this EncodingAESKey") from None
    if not text:
        raise PushRefused(400, "Encrypt decrypts to an empty message")
    return str(text).encode()
