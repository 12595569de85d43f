"""WeChat's signatures and encryption: our push client (written from WeChat's documentation)
against wechatpy's implementation, and the connector's checks against both."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import check_signature as wechatpy_check_signature

from connectors.wechat.crypto import PushRefused, check_signature, decrypt, sha1_signature
from hub.testing.standins.wechat_push import WeChatPusher, generate_aes_key
from tests.wechat_pushes import AES_KEY, APP_ID, OPENID, TOKEN, retail_pusher

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
KEY = base64.b64decode(AES_KEY + "=")


def test_push_client_signature_is_what_wechatpy_checks() -> None:
    params = retail_pusher().verification("echo123", NOW, nonce="1234567")
    wechatpy_check_signature(TOKEN, params["signature"], params["timestamp"], params["nonce"])


def test_push_client_encryption_decrypts_with_wechatpy() -> None:
    pusher = retail_pusher()
    message = pusher.text(OPENID, "信用卡被盗刷了", 6100000000000000001, NOW)
    signed = pusher.sign(message, "safe", NOW, nonce="998877")
    crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)
    plain = crypto.decrypt_message(
        signed.body, signed.params["msg_signature"], signed.params["timestamp"], "998877"
    )
    assert plain.encode() == message


def test_wechatpy_encryption_decrypts_with_the_connector() -> None:
    message = retail_pusher().text(OPENID, "查询余额", 42, NOW).decode()
    encrypted = WeChatCrypto(TOKEN, AES_KEY, APP_ID).encrypt_message(message, "5566", "1700000000")
    ciphertext = encrypted.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
    assert decrypt(KEY, APP_ID, ciphertext).decode() == message


def test_good_signature_passes_and_any_change_is_refused() -> None:
    good = sha1_signature(TOKEN, "1700000000", "nonce1")
    check_signature(TOKEN, good, "1700000000", "nonce1")
    for signature, parts in [
        (good, ("1700000001", "nonce1")),
        (good, ("1700000000", "nonce2")),
        (sha1_signature("otherToken", "1700000000", "nonce1"), ("1700000000", "nonce1")),
        ("", ("1700000000", "nonce1")),
        ("Z" * 40, ("1700000000", "nonce1")),
    ]:
        with pytest.raises(PushRefused) as refused:
            check_signature(TOKEN, signature, *parts)
        assert refused.value.status == 401


def test_ciphertext_for_another_app_id_is_refused() -> None:
    other = WeChatPusher(TOKEN, "wxSomebodyElse0001", AES_KEY)
    ciphertext = other.encrypt(other.text(OPENID, "hi", 1, NOW))
    with pytest.raises(PushRefused, match="another AppID"):
        decrypt(KEY, APP_ID, ciphertext)


@pytest.mark.parametrize(
    "ciphertext",
    [
        "not base64!!",
        base64.b64encode(b"short").decode(),
        base64.b64encode(b"x" * 48).decode(),
        base64.b64encode(bytes(64)).decode(),
        WeChatPusher(TOKEN, APP_ID, generate_aes_key()).encrypt(b"<xml/>"),
    ],
    ids=["not-base64", "not-blocks", "odd-blocks", "zero-blocks", "other-key"],
)
def test_garbage_ciphertext_is_refused_with_400_never_a_crash(ciphertext: str) -> None:
    with pytest.raises(PushRefused) as refused:
        decrypt(KEY, APP_ID, ciphertext)
    assert refused.value.status == 400
