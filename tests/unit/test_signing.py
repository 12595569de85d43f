"""Standard Webhooks signing (hub/sdk/signing.py), proven against the reference library."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from hub.sdk.signing import (
    SignatureError,
    decode_secret,
    generate_secret,
    sign,
    signed_headers,
    verify,
    verify_signer,
)

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OLD_SECRET = "whsec_c2VjcmV0LW9mLXNvbWVib2R5LWVsc2UtZW50aXJlbHk="
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
BODY = json.dumps({"user_id": "u-1", "text": "我的信用卡被重复扣费"}, ensure_ascii=False).encode()


def reference_headers(secret: str, msg_id: str, at: datetime, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body.decode()),
    }


def refusal(headers: dict[str, str], body: bytes = BODY, secrets: list[str] | None = None) -> str:
    with pytest.raises(SignatureError) as caught:
        verify(secrets or [SECRET], headers, body, NOW)
    return str(caught.value)


def test_request_signed_by_reference_library_verifies_and_returns_its_id() -> None:
    now = datetime.now(UTC)
    headers = reference_headers(SECRET, "msg_ref_1", now, BODY)
    assert verify([SECRET], headers, BODY, now) == "msg_ref_1"


def test_request_signed_by_us_verifies_with_reference_library() -> None:
    headers = signed_headers(SECRET, "msg_ours_1", BODY, datetime.now(UTC))
    assert Webhook(SECRET).verify(BODY, headers) == json.loads(BODY)


def test_sign_produces_the_reference_signature() -> None:
    timestamp = int(NOW.timestamp())
    assert sign(SECRET, "msg_1", timestamp, BODY) == Webhook(SECRET).sign(
        "msg_1", NOW, BODY.decode()
    )


def test_signed_headers_carry_id_unix_timestamp_and_v1_signature() -> None:
    headers = signed_headers(SECRET, "msg_2", BODY, NOW)
    assert headers["webhook-id"] == "msg_2"
    assert headers["webhook-timestamp"] == str(int(NOW.timestamp()))
    assert headers["webhook-signature"].startswith("v1,")


@pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_is_named(name: str) -> None:
    headers = signed_headers(SECRET, "msg_3", BODY, NOW)
    del headers[name]
    message = refusal(headers)
    assert message.startswith("missing header(s): ")
    assert name in message


def test_all_missing_headers_are_named_together() -> None:
    message = refusal({})
    assert message == "missing header(s): webhook-id, webhook-timestamp, webhook-signature"


def test_stale_timestamp_is_refused_as_too_old() -> None:
    headers = signed_headers(SECRET, "msg_4", BODY, NOW - timedelta(seconds=301))
    assert refusal(headers) == "webhook-timestamp is too old (301 s off)"


def test_future_timestamp_is_refused_as_too_far_ahead() -> None:
    headers = signed_headers(SECRET, "msg_5", BODY, NOW + timedelta(seconds=301))
    assert refusal(headers) == "webhook-timestamp is too far in the future (301 s off)"


@pytest.mark.parametrize("offset", [-300, 300])
def test_timestamp_exactly_at_the_tolerance_is_accepted(offset: int) -> None:
    headers = signed_headers(SECRET, "msg_6", BODY, NOW + timedelta(seconds=offset))
    assert verify([SECRET], headers, BODY, NOW) == "msg_6"


def test_reference_library_also_refuses_our_stale_timestamp() -> None:
    headers = signed_headers(SECRET, "msg_7", BODY, datetime.now(UTC) - timedelta(seconds=301))
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(SECRET).verify(BODY, headers)


@pytest.mark.parametrize("stamp", ["yesterday", "1795000000.5", ""])
def test_non_integer_timestamp_is_refused(stamp: str) -> None:
    headers = signed_headers(SECRET, "msg_8", BODY, NOW)
    headers["webhook-timestamp"] = stamp
    message = refusal(headers)
    assert "webhook-timestamp" in message


def test_fractional_timestamp_is_refused_as_not_unix_seconds() -> None:
    headers = signed_headers(SECRET, "msg_9", BODY, NOW)
    headers["webhook-timestamp"] = f"{int(NOW.timestamp())}.0"
    assert refusal(headers) == "webhook-timestamp is not unix seconds"


def test_tampered_body_is_refused() -> None:
    headers = signed_headers(SECRET, "msg_10", BODY, NOW)
    assert refusal(headers, body=BODY.replace(b"u-1", b"u-2")) == "webhook-signature does not match"


def test_signature_from_another_secret_is_refused() -> None:
    headers = signed_headers(OLD_SECRET, "msg_11", BODY, NOW)
    assert refusal(headers) == "webhook-signature does not match"


def test_changed_webhook_id_is_refused() -> None:
    headers = signed_headers(SECRET, "msg_12", BODY, NOW)
    headers["webhook-id"] = "msg_other"
    assert refusal(headers) == "webhook-signature does not match"


def test_one_matching_signature_among_several_is_accepted() -> None:
    headers = signed_headers(SECRET, "msg_13", BODY, NOW)
    wrong = sign(OLD_SECRET, "msg_13", int(NOW.timestamp()), BODY)
    headers["webhook-signature"] = f"v2,abc {wrong} v1,!!notbase64 {headers['webhook-signature']}"
    assert verify([SECRET], headers, BODY, NOW) == "msg_13"


def test_several_signatures_none_matching_are_refused() -> None:
    headers = signed_headers(SECRET, "msg_14", BODY, NOW)
    other = sign(OLD_SECRET, "msg_14", int(NOW.timestamp()), BODY)
    headers["webhook-signature"] = f"{other} {other}"
    assert refusal(headers) == "webhook-signature does not match"


def test_signature_header_without_a_v1_entry_is_refused() -> None:
    headers = signed_headers(SECRET, "msg_15", BODY, NOW)
    headers["webhook-signature"] = headers["webhook-signature"].replace("v1,", "v2,")
    assert refusal(headers) == "webhook-signature holds no v1 signature"


@pytest.mark.parametrize("signer", [SECRET, OLD_SECRET])
def test_rotated_secret_list_accepts_old_and_new(signer: str) -> None:
    headers = reference_headers(signer, "msg_16", NOW, BODY)
    assert verify([SECRET, OLD_SECRET], headers, BODY, NOW) == "msg_16"


def test_rotated_secret_list_refuses_a_third_secret() -> None:
    headers = signed_headers(generate_secret(), "msg_17", BODY, NOW)
    assert refusal(headers, secrets=[SECRET, OLD_SECRET]) == "webhook-signature does not match"


def test_webhook_id_longer_than_200_characters_is_refused() -> None:
    headers = signed_headers(SECRET, "m" * 201, BODY, NOW)
    assert "longer than 200" in refusal(headers)


def test_decode_secret_requires_the_whsec_prefix() -> None:
    with pytest.raises(ValueError, match="whsec_"):
        decode_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")


def test_decode_secret_refuses_non_base64() -> None:
    with pytest.raises(ValueError, match="base64"):
        decode_secret("whsec_not*base64*at*all!")


@pytest.mark.parametrize("nbytes", [0, 8, 15])
def test_decode_secret_refuses_a_key_shorter_than_16_bytes(nbytes: int) -> None:
    secret = "whsec_" + base64.b64encode(b"k" * nbytes).decode()
    with pytest.raises(ValueError, match="at least 16 bytes"):
        decode_secret(secret)


def test_decode_secret_accepts_unpadded_base64() -> None:
    key = b"sixteen-byte-key!"
    unpadded = base64.b64encode(key).decode().rstrip("=")
    assert decode_secret("whsec_" + unpadded) == key


@pytest.mark.parametrize("nbytes", [16, 32, 64])
def test_generated_secret_round_trips_through_decode(nbytes: int) -> None:
    secret = generate_secret(nbytes)
    assert secret.startswith("whsec_")
    assert len(decode_secret(secret)) == nbytes
    assert base64.b64encode(decode_secret(secret)).decode() == secret.removeprefix("whsec_")


def test_generated_secrets_differ() -> None:
    assert generate_secret() != generate_secret()


def test_generated_secret_works_with_reference_library() -> None:
    secret = generate_secret()
    headers = signed_headers(secret, "msg_18", BODY, datetime.now(UTC))
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)


def test_verify_signer_names_the_peer_whose_secret_signed() -> None:
    body = b'{"a": 1}'
    headers = signed_headers(OLD_SECRET, "msg_7", body, NOW)
    signers = {"beijing": [SECRET], "shanghai": [generate_secret(), OLD_SECRET]}
    assert verify_signer(signers, headers, body, NOW) == ("shanghai", "msg_7")


def test_verify_signer_says_no_peer_matched_or_what_is_wrong_for_everyone() -> None:
    body = b"{}"
    stranger = signed_headers(generate_secret(), "msg_8", body, NOW)
    with pytest.raises(SignatureError, match="matches no configured branch"):
        verify_signer({"beijing": [SECRET]}, stranger, body, NOW, what="branch")
    stale = signed_headers(SECRET, "msg_9", body, NOW - timedelta(hours=1))
    with pytest.raises(SignatureError, match="timestamp"):
        verify_signer({"beijing": [SECRET]}, stale, body, NOW)
