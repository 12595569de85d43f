"""The normalizer: PII masks, keyword classification, and envelope → IncomingMessage."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hub.sdk import Attachment, Identity, InboundEnvelope, InboundMessage
from normalizer import (
    classify,
    mask_email,
    mask_identity,
    mask_name,
    mask_opaque,
    mask_phone,
    normalize,
)
from ticket_core import IdentityClaim, IncomingAttachment, Kind, Priority

AT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def envelope(channel: str = "app", external_id: str = "msg_1") -> InboundEnvelope:
    return InboundEnvelope(
        channel=channel,
        external_id=external_id,
        body=b"{}",
        content_type="application/json",
        received_at=AT,
    )


def message(text: str = "请问信用卡额度怎么调整", **fields: object) -> InboundMessage:
    fields.setdefault("identities", (Identity("app_user", "u-100234", verified=True),))
    return InboundMessage(text=text, sent_at=AT, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("13812345678", "138****5678"),
        ("138-1234-5678", "138****5678"),
        ("+86 138 1234 5678", "138****5678"),
        ("1234567", "*****67"),
        ("010-8888 6666", "010****6666"),
        ("88886666", "******66"),
        ("12345", "*****"),
    ],
)
def test_mask_phone_keeps_prefix_and_last_four(raw: str, masked: str) -> None:
    assert mask_phone(raw) == masked


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("zhang.san@example.com", "z***@example.com"),
        ("a@bank.cn", "a***@bank.cn"),
    ],
)
def test_mask_email_keeps_first_letter_and_domain(raw: str, masked: str) -> None:
    assert mask_email(raw) == masked


def test_mask_email_without_a_domain_is_masked_as_opaque() -> None:
    assert mask_email("notanemail") == "no***il"


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("张三", "张*"),
        ("欧阳娜娜", "欧***"),
        ("  王小明 ", "王**"),
    ],
)
def test_mask_name_keeps_the_chinese_surname(raw: str, masked: str) -> None:
    assert mask_name(raw) == masked


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("John Smith", "J*** S****"),
        ("Alice", "A****"),
        ("Mary  Jane Watson", "M*** J*** W*****"),
    ],
)
def test_mask_name_keeps_each_latin_initial(raw: str, masked: str) -> None:
    assert mask_name(raw) == masked


def test_mask_name_of_blank_is_blank() -> None:
    assert mask_name("   ") == ""


@pytest.mark.parametrize(
    ("kind", "value", "masked"),
    [
        ("phone", "13812345678", "138****5678"),
        ("email", "li.si@example.cn", "l***@example.cn"),
        ("app_user", "u-100234", "u*******"),
        ("wechat_openid", "oAbCdEfGh123", "oA***23"),
        ("app_user", "u-12", "****"),
    ],
)
def test_mask_identity_by_kind(kind: str, value: str, masked: str) -> None:
    assert mask_identity(kind, value) == masked


def test_mask_opaque_hides_short_values_entirely() -> None:
    assert mask_opaque("abcd") == "****"


@pytest.mark.parametrize(
    ("text", "matched"),
    [
        ("我要投诉你们的客服态度差", ("投诉", "态度差")),
        ("信用卡被盗刷了，要求赔偿", ("盗刷", "赔偿")),
        ("I want to complain: I was charged twice", ("complain", "charged twice")),
        ("Please REFUND this unauthorised payment", ("refund", "unauthorised")),
    ],
)
def test_complaint_keywords_classify_as_complaint(text: str, matched: tuple[str, ...]) -> None:
    decision = classify(text)
    assert decision.kind == Kind.complaint
    assert decision.priority == Priority.normal
    assert decision.rule == "keywords.complaint"
    assert set(matched) <= set(decision.matched)


@pytest.mark.parametrize(
    "text", ["建议手机银行增加夜间模式", "能否增加指纹登录", "I suggest a dark mode for the app"]
)
def test_suggestion_keywords_classify_as_suggestion(text: str) -> None:
    decision = classify(text)
    assert decision.kind == Kind.suggestion
    assert decision.rule == "keywords.suggestion"
    assert decision.matched


@pytest.mark.parametrize("text", ["请问信用卡额度怎么调整", "What are your branch opening hours?"])
def test_a_question_is_a_consultation(text: str) -> None:
    decision = classify(text)
    assert decision.kind == Kind.consultation
    assert decision.priority == Priority.normal
    assert decision.rule == "keywords.consultation"


@pytest.mark.parametrize("text", ["你好", "Hello there"])
def test_text_without_any_evidence_is_a_consultation_by_default(text: str) -> None:
    decision = classify(text)
    assert decision.kind == Kind.consultation
    assert decision.rule == "default.consultation"
    assert decision.matched == ()


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("我要投诉，不解决就打12378", "12378"),
        ("这件事我会找媒体曝光，我要投诉", "媒体"),
        ("I will complain to the regulator", "regulator"),
        ("My lawyer says this is a scam", "lawyer"),
    ],
)
def test_escalation_word_raises_complaint_priority_to_high(text: str, word: str) -> None:
    decision = classify(text)
    assert decision.kind == Kind.complaint
    assert decision.priority == Priority.high
    assert decision.rule == "keywords.complaint"
    assert word in decision.matched


def test_escalation_word_alone_makes_a_high_priority_complaint() -> None:
    decision = classify("我已经联系了银保监")
    assert decision.kind == Kind.complaint
    assert decision.priority == Priority.high
    assert decision.rule == "keywords.escalation_threat"
    assert decision.matched == ("银保监",)


def test_escalation_word_raises_suggestion_priority_too() -> None:
    decision = classify("建议改进流程，否则我会告诉记者 journalist")
    assert (decision.kind, decision.priority) == (Kind.suggestion, Priority.high)
    assert "journalist" in decision.matched


def test_channel_kind_hint_wins_and_is_recorded() -> None:
    decision = classify("我要投诉 police", kind_hint="suggestion")
    assert decision.kind == Kind.suggestion
    assert decision.priority == Priority.high
    assert decision.rule == "channel.kind_hint"
    assert decision.matched == ("police",)


def test_unknown_kind_hint_falls_back_to_keywords() -> None:
    decision = classify("我要投诉", kind_hint="praise")
    assert (decision.kind, decision.rule) == (Kind.complaint, "keywords.complaint")


def test_classification_record_names_the_rule() -> None:
    record = classify("I will call the police").as_record()
    assert {k: record[k] for k in ("kind", "priority", "rule", "matched")} == {
        "kind": "complaint",
        "priority": "high",
        "rule": "keywords.escalation_threat",
        "matched": ["police"],
    }
    assert record["urgency"] == ["legal"]
    assert record["decisions"][0]["field"] == "kind"


def test_normalize_builds_incoming_message_with_masked_identities() -> None:
    incoming = normalize(
        envelope(channel="app", external_id="msg_77"),
        message(
            "我要投诉乱收费\n上个月被扣了两次年费",
            identities=(
                Identity("app_user", "u-100234", verified=True),
                Identity("phone", "13812345678", verified=False),
            ),
            display_name="张三丰",
            reply_address={"user_id": "u-100234"},
            ticket_reference="TD-20261123-000001",
        ),
    )
    assert (incoming.channel, incoming.external_id, incoming.received_at) == ("app", "msg_77", AT)
    assert incoming.text == "我要投诉乱收费\n上个月被扣了两次年费"
    assert incoming.identities == (
        IdentityClaim("app_user", "u-100234", "u*******", True),
        IdentityClaim("phone", "13812345678", "138****5678", False),
    )
    assert incoming.display_name == "张**"
    assert incoming.phone_masked == "138****5678"
    assert incoming.subject == "我要投诉乱收费"
    assert incoming.reply_to == {"user_id": "u-100234"}
    assert incoming.ticket_reference == "TD-20261123-000001"
    assert (incoming.kind, incoming.priority) == (Kind.complaint, Priority.normal)
    assert incoming.classification["rule"] == "keywords.complaint"
    assert {"投诉", "乱收费"} <= set(incoming.classification["matched"])


def test_normalize_records_high_priority_from_an_escalation_word() -> None:
    incoming = normalize(envelope(), message("不处理我就打12378投诉"))
    assert (incoming.kind, incoming.priority) == (Kind.complaint, Priority.high)
    assert incoming.classification["priority"] == "high"


def test_normalize_strips_text_and_cuts_the_subject_at_80_characters() -> None:
    first_line = "请" * 100
    incoming = normalize(envelope(), message(f"  \n{first_line}\nsecond line  "))
    assert incoming.text == f"{first_line}\nsecond line"
    assert incoming.subject == "请" * 80


def test_normalize_keeps_a_subject_given_by_the_channel() -> None:
    incoming = normalize(envelope(), message("body text", subject="Card blocked"))
    assert incoming.subject == "Card blocked"


def test_normalize_without_phone_or_name_leaves_them_empty() -> None:
    incoming = normalize(envelope(), message())
    assert incoming.phone_masked is None
    assert incoming.display_name is None
    assert incoming.kind == Kind.consultation


def test_normalize_accepts_attachments_without_text() -> None:
    photo = Attachment("receipt.png", "image/png", b"\x89PNG\r\n")
    incoming = normalize(envelope(), message("", attachments=(photo,)))
    assert incoming.attachments == (IncomingAttachment("receipt.png", "image/png", b"\x89PNG\r\n"),)
    assert incoming.subject == "(attachment)"
    assert incoming.kind == Kind.consultation


@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_normalize_refuses_a_message_with_neither_text_nor_attachments(text: str) -> None:
    with pytest.raises(ValueError, match="neither text nor attachments"):
        normalize(envelope(), message(text))


def test_hotline_number_inside_a_phone_number_is_not_an_escalation() -> None:
    decision = classify("我的手机号是13912378456，请问信用卡额度怎么调整")
    assert decision.kind == Kind.consultation
    assert decision.priority == Priority.normal


def test_english_terms_match_whole_words_only() -> None:
    assert classify("What are the regulatory fees for a wire?").kind == Kind.consultation
    assert classify("I complained twice and nothing happened").kind == Kind.complaint
