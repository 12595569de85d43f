"""WeChat's servers, pushing to an Official Account's server URL: for tests and demos.

Written from WeChat's documentation (消息加解密说明), not from the connector:

* every push and the verification GET carry ``signature`` = SHA-1 of the sorted, concatenated
  ``token``, ``timestamp`` and ``nonce``;
* in compatible and safe mode the body holds ``<Encrypt>``: base64 of AES-256-CBC with key
  ``base64decode(EncodingAESKey + "=")`` and IV its first 16 bytes, over
  ``random(16) + len(msg) as 4 bytes big-endian + msg + AppID``, padded PKCS#7-style to a
  multiple of 32 bytes; the query adds ``encrypt_type=aes`` and ``msg_signature`` = SHA-1 of
  the sorted ``token``, ``timestamp``, ``nonce`` and the ``Encrypt`` text;
* compatible mode keeps the plaintext fields beside ``<Encrypt>``; safe mode sends only
  ``ToUserName`` and ``Encrypt``.

``WeChatPusher.push`` posts like WeChat does; call it again with the same arguments to play
WeChat's retry (same body, same MsgId).
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import string
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import httpx
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

Mode = Literal["plaintext", "compatible", "safe"]
_BLOCK = 32


def generate_aes_key() -> str:
    """A fresh EncodingAESKey: 43 characters of base64 for 32 random bytes."""
    return base64.b64encode(os.urandom(32)).decode()[:43]


def _sha1(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


@dataclass(frozen=True, slots=True)
class SignedPush:
    """A push as it goes on the wire: query parameters and body."""

    params: dict[str, str]
    body: bytes


class WeChatPusher:
    def __init__(
        self, token: str, app_id: str, encoding_aes_key: str | None = None, original_id: str = ""
    ) -> None:
        self.token = token
        self.app_id = app_id
        self.encoding_aes_key = encoding_aes_key
        self.original_id = original_id or "gh_" + secrets.token_hex(6)

    # --- messages as WeChat writes them -------------------------------------------------

    def message(self, openid: str, msg_type: str, at: datetime, **fields: str | int) -> bytes:
        """A push document: the common header and ``fields`` in order (strings in CDATA)."""
        parts = [
            f"<ToUserName>{_cdata(self.original_id)}</ToUserName>",
            f"<FromUserName>{_cdata(openid)}</FromUserName>",
            f"<CreateTime>{int(at.timestamp())}</CreateTime>",
            f"<MsgType>{_cdata(msg_type)}</MsgType>",
        ]
        for name, value in fields.items():
            text = str(value) if isinstance(value, int) else _cdata(value)
            parts.append(f"<{name}>{text}</{name}>")
        return ("<xml>" + "".join(parts) + "</xml>").encode()

    def text(self, openid: str, content: str, msg_id: int, at: datetime) -> bytes:
        return self.message(openid, "text", at, Content=content, MsgId=msg_id)

    def image(self, openid: str, media_id: str, msg_id: int, at: datetime) -> bytes:
        pic = f"http://mmbiz.qpic.cn/{media_id}"
        return self.message(openid, "image", at, PicUrl=pic, MediaId=media_id, MsgId=msg_id)

    def voice(
        self, openid: str, media_id: str, msg_id: int, at: datetime, recognition: str | None = None
    ) -> bytes:
        fields: dict[str, str | int] = {"MediaId": media_id, "Format": "amr"}
        if recognition is not None:
            fields["Recognition"] = recognition
        fields["MsgId"] = msg_id
        return self.message(openid, "voice", at, **fields)

    def location(
        self, openid: str, x: float, y: float, label: str, msg_id: int, at: datetime
    ) -> bytes:
        return self.message(
            openid,
            "location",
            at,
            Location_X=str(x),
            Location_Y=str(y),
            Scale="15",
            Label=label,
            MsgId=msg_id,
        )

    def link(
        self, openid: str, title: str, description: str, url: str, msg_id: int, at: datetime
    ) -> bytes:
        return self.message(
            openid, "link", at, Title=title, Description=description, Url=url, MsgId=msg_id
        )

    def event(self, openid: str, event: str, at: datetime, key: str | None = None) -> bytes:
        fields: dict[str, str | int] = {"Event": event}
        if key is not None:
            fields["EventKey"] = key
        return self.message(openid, "event", at, **fields)

    # --- signing and encryption ---------------------------------------------------------

    def verification(self, echostr: str, now: datetime, nonce: str | None = None) -> dict[str, str]:
        """The query of WeChat's server-verification GET."""
        timestamp, nonce = str(int(now.timestamp())), nonce or _nonce()
        return {
            "signature": _sha1(self.token, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
            "echostr": echostr,
        }

    def sign(
        self, message: bytes, mode: Mode, now: datetime, nonce: str | None = None
    ) -> SignedPush:
        timestamp, nonce = str(int(now.timestamp())), nonce or _nonce()
        openid = _field(message, "FromUserName")
        params = {
            "signature": _sha1(self.token, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
            "openid": openid,
        }
        if mode == "plaintext":
            return SignedPush(params, message)
        encrypted = self.encrypt(message)
        params["encrypt_type"] = "aes"
        params["msg_signature"] = _sha1(self.token, timestamp, nonce, encrypted)
        if mode == "compatible":
            body = message.replace(
                b"</xml>", f"<Encrypt>{_cdata(encrypted)}</Encrypt></xml>".encode()
            )
        else:
            body = (
                f"<xml><ToUserName>{_cdata(self.original_id)}</ToUserName>"
                f"<Encrypt>{_cdata(encrypted)}</Encrypt></xml>"
            ).encode()
        return SignedPush(params, body)

    def encrypt(self, message: bytes) -> str:
        if self.encoding_aes_key is None:
            raise ValueError("this pusher has no EncodingAESKey")
        key = base64.b64decode(self.encoding_aes_key + "=")
        plain = os.urandom(16) + len(message).to_bytes(4, "big") + message + self.app_id.encode()
        pad = _BLOCK - len(plain) % _BLOCK
        plain += bytes([pad]) * pad
        encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()

    async def push(
        self,
        client: httpx.AsyncClient,
        url: str,
        message: bytes,
        mode: Mode,
        now: datetime,
        nonce: str | None = None,
    ) -> httpx.Response:
        """POST as WeChat's servers do; WeChat's retry is the same call again."""
        signed = self.sign(message, mode, now, nonce)
        return await client.post(
            url, params=signed.params, content=signed.body, headers={"content-type": "text/xml"}
        )


def _nonce() -> str:
    return "".join(secrets.choice(string.digits) for _ in range(10))


def _field(message: bytes, name: str) -> str:
    text = message.decode()
    start = text.find(f"<{name}>")
    end = text.find(f"</{name}>")
    if start < 0 or end < 0:
        return ""
    value = text[start + len(name) + 2 : end]
    if value.startswith("<![CDATA[") and value.endswith("]]>"):
        value = value[9:-3]
    return value
