"""Reading raw mail: charsets, headers, bodies, attachments, robots; no server involved."""

from __future__ import annotations

import base64
import contextlib
from email import policy
from email.parser import BytesParser

import pytest

from connectors.email.automated import classify
from connectors.email.charsets import decode
from connectors.email.headers import date, decode_text, message_ids
from connectors.email.html_text import html_to_text
from connectors.email.quoting import strip_history
from connectors.email.reading import Limits, UnreadableMail, external_id, read_mail
from tests import email_samples as samples

LIMITS = Limits(max_attachment_bytes=64 * 1024, max_attachments=3, max_text_chars=20_000)


def _stdlib_text(raw: bytes) -> str:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    body = message.get_body(("plain",))
    assert body is not None
    return body.get_content()


# --- charsets ----------------------------------------------------------------------------


def test_gbk_mail_labelled_gb2312_reads_gbk_only_characters() -> None:
    raw = samples.gbk_mail()
    # The standard library alone loses 镕 and 喆: the reason this connector decodes itself.
    assert "\ufffd" in _stdlib_text(raw)
    mail = read_mail(raw, LIMITS)
    assert mail.text == samples.GBK_TEXT.strip()
    assert mail.subject == samples.GBK_SUBJECT
    assert mail.sender is not None and mail.sender.name == "张喆"
    assert not mail.lossy


def test_big5_mail_reads_traditional_characters() -> None:
    mail = read_mail(samples.big5_mail(), LIMITS)
    assert mail.text == samples.BIG5_TEXT
    assert mail.subject == samples.BIG5_SUBJECT
    assert mail.sender is not None and mail.sender.name == "陳大文"


def test_mislabelled_mail_is_read_by_detection_without_losing_text() -> None:
    raw = samples.mislabelled_mail()
    assert samples.MISLABELLED_TEXT not in _stdlib_text(raw)
    mail = read_mail(raw, LIMITS)
    assert mail.text == samples.MISLABELLED_TEXT
    assert mail.subject == "吞卡"
    assert read_mail(samples.utf8_labelled_gb2312_mail(), LIMITS).text == samples.MISLABELLED_TEXT


def test_iso_2022_jp_mail_is_read() -> None:
    mail = read_mail(samples.iso2022jp_mail(), LIMITS)
    assert mail.text == samples.JAPANESE_TEXT
    assert mail.subject == "残高"


@pytest.mark.parametrize(
    ("text", "codec", "label"),
    [
        ("朱镕基张喆", "gbk", "gb2312"),
        ("您好，年费", "gbk", None),
        ("您好，年费", "gbk", "us-ascii"),
        ("您好，年费", "utf-8", "gbk"),
        ("請儘快處理帳戶", "big5", "gb2312"),
        ("請儘快處理帳戶", "big5", None),
        ("Grüße aus München", "latin-1", "utf-8"),
        ("Café crème", "latin-1", None),
        ("Grüße aus München", "latin-1", "iso-8859-1"),
        ("Grüße", "latin-1", None),
    ],
)
def test_charset_label_is_trusted_only_when_the_text_holds_up(
    text: str, codec: str, label: str | None
) -> None:
    decoded = decode(text.encode(codec), label)
    assert decoded.text == text
    assert decoded.exact


def test_undecodable_bytes_are_replaced_as_little_as_possible() -> None:
    data = "年费".encode("gbk") + b"\xff" + "退还".encode("gbk")
    decoded = decode(data, "gb2312")
    assert decoded.text.startswith("年费") and decoded.text.endswith("退还")
    assert decoded.text.count("\ufffd") == 1
    assert not decoded.exact


# --- headers -----------------------------------------------------------------------------


def test_rfc2047_character_split_across_two_words_is_whole() -> None:
    raw = samples.split_word_mail()
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert str(message["Subject"]) != samples.SPLIT_SUBJECT  # the library garbles it
    assert read_mail(raw, LIMITS).subject == samples.SPLIT_SUBJECT


def test_raw_8bit_gbk_headers_and_file_name_from_qq_mail_are_read() -> None:
    mail = read_mail(samples.qq_raw_header_mail(), LIMITS)
    assert mail.subject == samples.QQ_SUBJECT
    assert mail.sender is not None and mail.sender.name == "李四"
    assert mail.text == samples.QQ_TEXT
    assert [a.name for a in mail.attachments] == [samples.QQ_FILENAME]


def test_rfc2231_file_name_in_sections_with_a_gbk_only_label_is_read() -> None:
    raw = samples.rfc2231_attachment_mail("镕基对账单.pdf")
    mail = read_mail(raw, LIMITS)
    assert [(a.name, a.content_type) for a in mail.attachments] == [
        ("镕基对账单.pdf", "application/pdf")
    ]


def test_malformed_headers_fall_back_to_their_raw_value() -> None:
    assert decode_text("=?utf-8?B?not base64!?= rest") == "=?utf-8?B?not base64!?= rest"
    assert decode_text("=?x-unknown?Q?abc?=") == "abc"
    assert message_ids(["<<x@y>>"]) == ["<x@y>"]
    assert date("not a date") is None
    raw = samples.mail(
        body=b"hello",
        message_id="<<broken@@id>>",
        headers=[("In-Reply-To", b"<unclosed"), ("References", b"\xff\xfe <a@b>")],
    )
    mail = read_mail(raw, LIMITS)
    assert (mail.text, mail.message_id, mail.in_reply_to, mail.references) == (
        "hello",
        "<broken@@id>",
        (),
        ("<a@b>",),
    )


def test_message_id_is_the_external_id_and_a_hash_stands_in_without_one() -> None:
    assert external_id(samples.plain("x", message_id="<abc@qq.com>")) == "<abc@qq.com>"
    anonymous = samples.mail(body=b"x", message_id="")
    assert external_id(anonymous).startswith("sha256:")
    assert external_id(anonymous) == external_id(anonymous)
    assert external_id(b"\x00\xff not a mail").startswith("sha256:")


# --- bodies ------------------------------------------------------------------------------


def test_html_only_mail_becomes_safe_text_without_scripts_or_styles() -> None:
    mail = read_mail(samples.html_only_mail(), LIMITS)
    assert mail.from_html
    assert "我的信用卡被盗刷了 3 笔。" in mail.text
    assert "evil.example" not in mail.full_text and "color" not in mail.full_text
    assert "旧邮件内容" not in mail.text  # the quoted history goes
    assert "旧邮件内容" in mail.full_text  # but is kept


def test_html_links_show_where_they_really_point() -> None:
    text = html_to_text('<p>请<a href="https://evil.example/x">登录网银</a></p>')
    assert text == "请登录网银 (https://evil.example/x)"
    assert html_to_text('<a href="javascript:alert(1)">x</a>') == "x"


@pytest.mark.parametrize(
    "body",
    [
        "还没退款。\n\n------------------ 原始邮件 ------------------\n发件人: 客服\n内容",
        "还没退款。\n\n-----Original Message-----\nFrom: Bank\nSent: Monday\n\nold",
        "还没退款。\n\n________________________________\n发件人: 客服\n发送时间: 周一\n"
        "收件人: 我\n主题: 受理\n\nold",
        "还没退款。\n\nOn Mon, 23 Nov 2026 at 10:00, Bank <s@b> wrote:\n> old\n> older",
        "还没退款。\n\n在 2026年11月23日 10:00，客服 写道：\n> 旧的",
        "还没退款。\n\n-- \n张三\n某某公司",
        "还没退款。\n\n发自我的iPhone",
    ],
)
def test_quoted_history_and_signatures_are_cut_from_the_ticket_text(body: str) -> None:
    stripped = strip_history(body)
    assert stripped.text == "还没退款。"
    assert stripped.cut


def test_answers_between_quotes_and_forwarded_mail_are_kept_whole() -> None:
    interleaved = "> 卡号？\n尾号 1234\n> 金额？\n300 元"
    assert strip_history(interleaved).text == interleaved
    forwarded = "-----Original Message-----\nFrom: a\nSent: b\nTo: c\n\n全文"
    assert strip_history(forwarded).text == forwarded


# --- attachments -------------------------------------------------------------------------


def test_oversized_attachment_is_recorded_as_refused_not_dropped() -> None:
    raw = samples.attachments_mail(
        [
            ("流水.pdf", "application/pdf", b"%PDF" + b"0" * 100),
            ("录像.mp4", "video/mp4", b"\x00" * (LIMITS.max_attachment_bytes + 1)),
        ]
    )
    mail = read_mail(raw, LIMITS)
    assert [a.name for a in mail.attachments] == ["流水.pdf"]
    assert [(r.name, r.size) for r in mail.refused] == [
        ("录像.mp4", LIMITS.max_attachment_bytes + 1)
    ]
    assert "attachment limit" in mail.refused[0].reason


def test_attachments_over_the_count_are_refused_in_mail_order() -> None:
    files = [(f"截图{i}.png", "image/png", b"\x89PNG" + bytes([i])) for i in range(5)]
    mail = read_mail(samples.attachments_mail(files), LIMITS)
    assert [a.name for a in mail.attachments] == ["截图0.png", "截图1.png", "截图2.png"]
    assert [r.name for r in mail.refused] == ["截图3.png", "截图4.png"]


def test_truncated_mail_keeps_its_text_and_refuses_its_attachments() -> None:
    raw = samples.attachments_mail([("大文件.zip", "application/zip", b"PK" + b"1" * 5000)])
    mail = read_mail(raw[:1500], LIMITS, truncated_size=30 * 1024 * 1024)
    assert mail.text == "附件是我的流水和截图。"
    assert not mail.attachments
    assert mail.refused and "the mail is 30 MB" in mail.refused[0].reason


def test_hostile_file_names_and_media_types_are_made_safe() -> None:
    raw = samples.attachments_mail([("../../etc/passwd\x07", "application/" + "x" * 300, b"data")])
    (attachment,) = read_mail(raw, LIMITS).attachments
    assert attachment.name == "passwd"
    assert attachment.content_type == "application/octet-stream"


# --- robots and broken mail --------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (samples.out_of_office(), "auto_reply"),
        (samples.qq_auto_reply(), "auto_reply"),
        (samples.bounce(), "bounce"),
        (samples.mailing_list(), "bulk"),
        (samples.mail(body=b"x", headers=[("List-Id", b"<l.example>")]), "list"),
        (samples.mail(body=b"x", return_path=b""), "bounce"),
    ],
)
def test_machines_mail_is_recognised(raw: bytes, kind: str) -> None:
    mail = read_mail(raw, LIMITS)
    assert mail.automation is not None and mail.automation.kind == kind


def test_a_persons_mail_is_not_taken_for_a_machines() -> None:
    message = BytesParser(policy=policy.default).parsebytes(samples.gbk_mail())
    assert classify(message, "zhangzhe@163.com") is None
    explicit_no = samples.mail(body=b"x", headers=[("Auto-Submitted", b"no")])
    assert read_mail(explicit_no, LIMITS).automation is None


@pytest.mark.parametrize(
    "raw",
    [
        b"this is not a mail at all\r\n\x00\xff\xfe",
        samples.without_sender(),
    ],
)
def test_unreadable_mail_raises_with_a_reason(raw: bytes) -> None:
    with pytest.raises(UnreadableMail) as caught:
        read_mail(raw, LIMITS)
    assert str(caught.value)


def test_mime_bombs_are_refused() -> None:
    nested = b"Content-Type: text/plain\r\n\r\nx"
    for depth in range(40):
        boundary = f"b{depth}".encode()
        nested = (
            b'Content-Type: multipart/mixed; boundary="'
            + boundary
            + b'"\r\n\r\n--'
            + boundary
            + b"\r\n"
            + nested
            + b"\r\n--"
            + boundary
            + b"--\r\n"
        )
    raw = b"From: a@qq.com\r\nSubject: x\r\n" + nested
    with pytest.raises(UnreadableMail, match="nested"):
        read_mail(raw, LIMITS)


def test_base64_of_a_part_that_is_broken_still_yields_text() -> None:
    body = base64.b64encode("部分内容".encode()) + b"!!!"
    raw = samples.mail(body=body, encoding=b"base64")
    assert "部分内容" in read_mail(raw, LIMITS).text


def test_a_forwarded_message_whose_headers_cannot_be_refolded_is_still_read() -> None:
    """Found by the bad-input drill: an encoded word in a charset named with control
    characters made both of the library's ways of writing the inner message raise
    UnicodeEncodeError out of read_mail."""
    raw = (
        b"From:*@0.A\rContenT-type:message/rfc822\r\r!!:=?utf\x01\x01?Q?=00"
        + b"\x00" * 52
        + b"=C2=AA=A0\x00\x00"
    )
    with contextlib.suppress(UnreadableMail):  # a clear refusal is fine; nothing else is
        read_mail(raw, LIMITS)


def test_an_rfc2231_file_name_with_raw_8bit_bytes_is_read_not_raised() -> None:
    """Found by the bad-input drill: ``filename*=`` holding raw GBK bytes instead of
    %-escapes raised UnicodeEncodeError out of read_mail."""
    name = "账单.pdf".encode("gbk")
    raw = (
        b"From: zhangsan@qq.com\r\nTo: support@bank.test\r\nSubject: bill\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nsee attached\r\n"
        b"--b\r\nContent-Type: application/pdf\r\n"
        b"Content-Disposition: attachment; filename*=gbk''" + name + b"\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(b"%PDF-1.4") + b"\r\n"
        b"--b--\r\n"
    )
    mail = read_mail(raw, LIMITS)
    assert [a.name for a in mail.attachments] == ["账单.pdf"]
