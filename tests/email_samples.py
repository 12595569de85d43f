"""Raw mails as Chinese customers' clients write them, byte for byte.

Each builder returns the bytes a mail server would store, so the tests exercise the reading of
real wire formats: GBK labelled gb2312 (QQ Mail, Foxmail), Big5 (Taiwanese and Hong Kong
Outlook), raw 8-bit GBK headers (QQ Mail, Coremail), RFC 2047 words that split a character,
RFC 2231 file names, mislabelled parts, HTML-only mail, replies with quoted history,
auto-replies and bounces.
"""

from __future__ import annotations

import base64
import quopri
import secrets
from collections.abc import Sequence

CRLF = b"\r\n"
DATE = b"Mon, 23 Nov 2026 10:15:00 +0800"
CUSTOMER = "zhangsan@qq.com"


def b_word(text: str, charset: str, encoding: str | None = None) -> bytes:
    """An RFC 2047 B encoded-word."""
    data = text.encode(encoding or charset)
    return b"=?" + charset.encode() + b"?B?" + base64.b64encode(data) + b"?="


def new_id(domain: str = "qq.com") -> str:
    return f"<{secrets.token_hex(8)}@{domain}>"


def mail(
    *,
    body: bytes,
    subject: bytes = b"=?UTF-8?B?" + base64.b64encode("信用卡年费投诉".encode()) + b"?=",
    sender: bytes = b"=?UTF-8?B?" + base64.b64encode("张三".encode()) + b"?= <zhangsan@qq.com>",
    to: bytes = b"support@bank.test",
    content_type: bytes = b"text/plain; charset=utf-8",
    encoding: bytes = b"8bit",
    message_id: str | None = None,
    headers: Sequence[tuple[str, bytes]] = (),
    return_path: bytes | None = None,
) -> bytes:
    """A single-part mail; ``message_id=""`` leaves the Message-ID out."""
    lines = [
        b"Return-Path: <" + (_address(sender) if return_path is None else return_path) + b">",
        b"Delivered-To: " + to,
        b"From: " + sender,
        b"To: " + to,
        b"Subject: " + subject,
        b"Date: " + DATE,
    ]
    if message_id != "":
        lines.append(b"Message-ID: " + (message_id or new_id()).encode())
    lines += [name.encode() + b": " + value for name, value in headers]
    lines += [
        b"MIME-Version: 1.0",
        b"Content-Type: " + content_type,
        b"Content-Transfer-Encoding: " + encoding,
    ]
    return CRLF.join(lines) + CRLF + CRLF + body.replace(b"\n", CRLF).replace(b"\r\r", b"\r")


def _address(sender: bytes) -> bytes:
    start, end = sender.rfind(b"<"), sender.rfind(b">")
    return sender[start + 1 : end] if 0 <= start < end else sender


def plain(
    text: str,
    *,
    subject: str = "信用卡年费投诉",
    sender: str = CUSTOMER,
    to: str = "support@bank.test",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    headers: Sequence[tuple[str, bytes]] = (),
) -> bytes:
    """A UTF-8 mail as Gmail or Apple Mail write it."""
    extra = list(headers)
    if in_reply_to:
        extra.append(("In-Reply-To", in_reply_to.encode()))
    if references:
        extra.append(("References", " ".join(references).encode()))
    return mail(
        body=base64.encodebytes(text.encode()),
        subject=b_word(subject, "UTF-8"),
        sender=b_word("张三", "UTF-8") + b" <" + sender.encode() + b">",
        to=to.encode(),
        encoding=b"base64",
        message_id=message_id,
        headers=extra,
    )


GBK_TEXT = "您好：\n我是朱镕基的家属张喆，信用卡年费被重复扣收两次，请退还。\n"
"""镕 and 喆 are GBK-only: a gb2312 label reads them as U+FFFD in the standard library."""
GBK_SUBJECT = "关于朱镕基信用卡年费的投诉"


def gbk_mail(message_id: str | None = None) -> bytes:
    """Foxmail: gb2312 labels on GBK text, base64 body, B-encoded subject and name."""
    return mail(
        body=base64.encodebytes(GBK_TEXT.encode("gbk")),
        subject=b_word(GBK_SUBJECT, "gb2312", "gbk"),
        sender=b_word("张喆", "gb2312", "gbk") + b" <zhangzhe@163.com>",
        content_type=b'text/plain; charset="gb2312"',
        encoding=b"base64",
        message_id=message_id,
    )


QQ_SUBJECT = "账单疑问：为何多扣了利息"
QQ_TEXT = "客服您好，本月账单多扣了利息 35.20 元，见附件截图。"
QQ_FILENAME = "账单截图.png"


def qq_raw_header_mail(message_id: str | None = None) -> bytes:
    """QQ Mail / Coremail: raw 8-bit GBK in Subject, From and the attachment's file name."""
    boundary = b"----=_NextPart_5F3A_0D1E"
    png = b"\x89PNG\r\n\x1a\n" + secrets.token_bytes(300)
    body = CRLF.join(
        [
            b"This is a multi-part message in MIME format.",
            b"",
            b"--" + boundary,
            b'Content-Type: text/plain; charset="GBK"',
            b"Content-Transfer-Encoding: 8bit",
            b"",
            QQ_TEXT.encode("gbk"),
            b"",
            b"--" + boundary,
            b'Content-Type: image/png; name="' + QQ_FILENAME.encode("gbk") + b'"',
            b'Content-Disposition: attachment; filename="' + QQ_FILENAME.encode("gbk") + b'"',
            b"Content-Transfer-Encoding: base64",
            b"",
            base64.encodebytes(png).replace(b"\n", CRLF),
            b"--" + boundary + b"--",
            b"",
        ]
    )
    return mail(
        body=body,
        subject=QQ_SUBJECT.encode("gbk"),
        sender=b'"' + "李四".encode("gbk") + b'" <lisi@qq.com>',
        content_type=b'multipart/mixed; boundary="' + boundary + b'"',
        encoding=b"7bit",
        message_id=message_id,
    )


BIG5_TEXT = "您好，我的信用卡被多扣了年費，請儘快處理。帳戶尾號 1234。"
BIG5_SUBJECT = "信用卡年費爭議"


def big5_mail(message_id: str | None = None) -> bytes:
    """Outlook in Taiwan: Big5, quoted-printable, Q-encoded subject."""
    subject = b"=?big5?Q?" + quopri.encodestring(BIG5_SUBJECT.encode("big5"), header=True) + b"?="
    return mail(
        body=quopri.encodestring(BIG5_TEXT.encode("big5")),
        subject=subject,
        sender=b_word("陳大文", "big5") + b" <chan@hinet.net>",
        content_type=b"text/plain; charset=big5",
        encoding=b"quoted-printable",
        message_id=message_id,
    )


MISLABELLED_TEXT = "我的借记卡在ATM取款时被吞，卡号尾号 8899，请帮忙处理。"


def mislabelled_mail(message_id: str | None = None) -> bytes:
    """An old webmail: GBK bytes labelled iso-8859-1 (a label that never fails to decode)."""
    return mail(
        body=MISLABELLED_TEXT.encode("gbk"),
        subject=b"=?iso-8859-1?B?" + base64.b64encode("吞卡".encode("gbk")) + b"?=",
        content_type=b"text/plain; charset=iso-8859-1",
        message_id=message_id,
    )


def utf8_labelled_gb2312_mail() -> bytes:
    """A mobile client: UTF-8 text labelled gb2312."""
    return mail(body=MISLABELLED_TEXT.encode(), content_type=b"text/plain; charset=gb2312")


SPLIT_SUBJECT = "中文测试：还款日调整"


def split_word_mail(message_id: str | None = None) -> bytes:
    """Outlook folding a long GBK subject: the second character's two bytes are split across
    two encoded-words."""
    data = SPLIT_SUBJECT.encode("gbk")
    first, second = data[:3], data[3:]
    subject = (
        b"=?GBK?B?"
        + base64.b64encode(first)
        + b"?="
        + CRLF
        + b" =?GBK?B?"
        + base64.b64encode(second)
        + b"?="
    )
    return mail(body=b"please adjust", subject=subject, message_id=message_id)


JAPANESE_TEXT = "口座の残高について問い合わせます。"


def iso2022jp_mail() -> bytes:
    return mail(
        body=JAPANESE_TEXT.encode("iso2022_jp"),
        subject=b"=?ISO-2022-JP?B?" + base64.b64encode("残高".encode("iso2022_jp")) + b"?=",
        content_type=b"text/plain; charset=iso-2022-jp",
        encoding=b"7bit",
    )


HTML_BODY = """<html><head><style>p {color: red}</style>
<script>document.location='https://evil.example'</script></head>
<body><p>您好，</p><p>我的<b>信用卡</b>被盗刷了&nbsp;3 笔。</p>
<div class="gmail_quote">在 2026年11月20日 写道：<blockquote>旧邮件内容</blockquote></div>
</body></html>"""


def html_only_mail() -> bytes:
    return mail(
        body=base64.encodebytes(HTML_BODY.encode()),
        content_type=b"text/html; charset=utf-8",
        encoding=b"base64",
    )


def rfc2231_attachment_mail(name: str = "对账单.pdf", data: bytes = b"%PDF-1.4 test") -> bytes:
    """Thunderbird: RFC 2231 file name (GBK labelled gb2312 included) in two sections."""
    encoded = "".join(f"%{b:02X}" for b in name.encode("gbk"))
    half = len(encoded) // 2
    half -= half % 3
    boundary = b"b1_2231"
    body = CRLF.join(
        [
            b"--" + boundary,
            b"Content-Type: text/plain; charset=utf-8",
            b"",
            "请查收附件。".encode(),
            b"--" + boundary,
            b"Content-Type: application/pdf",
            b"Content-Disposition: attachment;",
            b" filename*0*=gb2312''" + encoded[:half].encode() + b";",
            b" filename*1*=" + encoded[half:].encode(),
            b"Content-Transfer-Encoding: base64",
            b"",
            base64.encodebytes(data).replace(b"\n", CRLF),
            b"--" + boundary + b"--",
            b"",
        ]
    )
    return mail(body=body, content_type=b'multipart/mixed; boundary="' + boundary + b'"')


def attachments_mail(
    files: Sequence[tuple[str, str, bytes]],
    text: str = "附件是我的流水和截图。",
    message_id: str | None = None,
) -> bytes:
    """multipart/mixed with RFC 2047 file names, as Outlook writes them."""
    boundary = b"=_mixed_att"
    parts = [
        b"--" + boundary,
        b"Content-Type: text/plain; charset=utf-8",
        b"Content-Transfer-Encoding: base64",
        b"",
        base64.encodebytes(text.encode()).replace(b"\n", CRLF),
    ]
    for name, content_type, data in files:
        parts += [
            b"--" + boundary,
            b"Content-Type: " + content_type.encode(),
            b'Content-Disposition: attachment; filename="' + b_word(name, "UTF-8") + b'"',
            b"Content-Transfer-Encoding: base64",
            b"",
            base64.encodebytes(data).replace(b"\n", CRLF),
        ]
    parts += [b"--" + boundary + b"--", b""]
    return mail(
        body=CRLF.join(parts),
        content_type=b'multipart/mixed; boundary="' + boundary + b'"',
        message_id=message_id,
    )


def client_reply(
    text: str,
    *,
    in_reply_to: str,
    references: Sequence[str] = (),
    subject: str = "回复：信用卡年费投诉",
    quoted: str = "您的投诉已受理。",
    sender: str = CUSTOMER,
    to: str = "support@bank.test",
    message_id: str | None = None,
) -> bytes:
    """A reply from Foxmail: new text on top, the history below a 原始邮件 separator."""
    body = (
        f"{text}\n\n"
        "------------------ 原始邮件 ------------------\n"
        '发件人: "客服"<support@bank.test>;\n'
        "发送时间: 2026年11月23日(星期一) 上午10:20\n"
        f'收件人: "张三"<{sender}>;\n'
        "主题: Re: 信用卡年费投诉\n\n"
        f"{quoted}\n"
    )
    return plain(
        body,
        subject=subject,
        sender=sender,
        to=to,
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=[*references, in_reply_to] if references else [in_reply_to],
    )


def out_of_office(*, in_reply_to: str | None = None, to: str = "support@bank.test") -> bytes:
    """An Exchange out-of-office reply to one of our mails."""
    headers: list[tuple[str, bytes]] = [
        ("Auto-Submitted", b"auto-replied"),
        ("X-Auto-Response-Suppress", b"All"),
    ]
    if in_reply_to:
        headers.append(("In-Reply-To", in_reply_to.encode()))
    return mail(
        body="我正在休假，11月30日返回。".encode(),
        subject=b_word("自动回复: Re: 信用卡年费投诉", "UTF-8"),
        to=to.encode(),
        headers=headers,
    )


def qq_auto_reply() -> bytes:
    """QQ Mail's auto-reply: no RFC 3834 header, only its own flag and subject."""
    return mail(
        body="这是一封自动回复邮件。".encode(),
        subject=b_word("自动回复: 信用卡年费投诉", "UTF-8"),
        headers=[("X-Autoreply", b"yes")],
    )


def bounce(original: bytes = b"", to: str = "support@bank.test") -> bytes:
    boundary = b"dsn_boundary"
    body = CRLF.join(
        [
            b"--" + boundary,
            b"Content-Type: text/plain; charset=us-ascii",
            b"",
            b"Your message could not be delivered.",
            b"--" + boundary,
            b"Content-Type: message/delivery-status",
            b"",
            b"Reporting-MTA: dns; mx.qq.com",
            b"",
            b"Final-Recipient: rfc822; nobody@qq.com",
            b"Action: failed",
            b"Status: 5.1.1",
            b"--" + boundary,
            b"Content-Type: message/rfc822",
            b"",
            original or b"Subject: x\r\n\r\nx",
            b"--" + boundary + b"--",
            b"",
        ]
    )
    return mail(
        body=body,
        subject=b"Undelivered Mail Returned to Sender",
        sender=b"MAILER-DAEMON@qq.com",
        to=to.encode(),
        content_type=b'multipart/report; report-type=delivery-status; boundary="' + boundary + b'"',
        encoding=b"7bit",
    )


def mailing_list() -> bytes:
    return mail(
        body="本周理财产品推荐".encode(),
        headers=[
            ("List-Id", b"<offers.bank-partner.example>"),
            ("List-Unsubscribe", b"<mailto:unsubscribe@bank-partner.example>"),
            ("Precedence", b"bulk"),
        ],
    )


def without_sender(message_id: str | None = None) -> bytes:
    """Broken beyond reading: the From, Sender and Return-Path hold no address at all."""
    return mail(body=b"hello", sender=b"<<<@@@>>> ,,,", message_id=message_id, return_path=b"@@@")
