"""Everything the web pages say, in simplified Chinese and English.

Kept in one table per language so a translation is reviewed as a whole, including the
personal-information notice (PIPL arts. 14 and 17: what is collected, why, how long), which
a bank's compliance officer will want to read and change in one place.
"""

from __future__ import annotations

from typing import Literal

Language = Literal["zh-CN", "en"]
LANGUAGES: tuple[Language, ...] = ("zh-CN", "en")
KINDS = ("complaint", "consultation", "suggestion")
AREAS = ("cards", "deposits", "loans", "payments", "wealth", "online", "branch", "other")

WORDS: dict[Language, dict[str, str]] = {
    "zh-CN": {
        "title": "在线投诉与咨询",
        "intro": "请填写以下信息。提交前我们会向您的手机或邮箱发送验证码，确认联系方式后才会受理。",
        "other": "English",
        "kind": "类型",
        "kind.complaint": "投诉",
        "kind.consultation": "咨询",
        "kind.suggestion": "建议",
        "area": "业务类别",
        "area.choose": "请选择",
        "area.cards": "信用卡与借记卡",
        "area.deposits": "存款与账户",
        "area.loans": "贷款",
        "area.payments": "支付与转账",
        "area.wealth": "理财与基金",
        "area.online": "手机银行与网上银行",
        "area.branch": "网点服务",
        "area.other": "其他",
        "description": "情况说明",
        "description.hint": "请说明发生了什么、时间、金额及您的诉求。请勿填写密码或完整卡号。",
        "attachments": "附件（可选）",
        "attachments.hint": "最多 {count} 个文件，每个不超过 {size}，仅限 PDF、PNG、JPEG。",
        "contact": "联系方式",
        "contact.phone": "手机",
        "contact.email": "电子邮箱",
        "phone": "手机号码",
        "email": "电子邮箱地址",
        "notice.title": "个人信息处理告知",
        "notice.body": (
            "收集哪些信息：您填写的联系方式（手机号码或电子邮箱）、情况说明及附件，以及提交时的"
            "网络地址。\n"
            "用途：受理和处理您的投诉或咨询、就本事项与您联系、履行金融消费者权益保护的监管义务；"
            "网络地址仅用于防止滥用。\n"
            "保存期限：工单办结后保存 {years} 年（监管档案要求），期满后删除或匿名化；未完成验证的"
            "提交在 1 小时内删除。\n"
            "您可以查阅、更正、删除您的个人信息或撤回同意，请联系本行客服。"
        ),
        "consent": "我已阅读并同意上述个人信息处理告知",
        "website": "请勿填写此项",
        "submit": "提交并获取验证码",
        "required": "请填写此项。",
        "invalid_choice": "请从列表中选择。",
        "too_short": "请至少填写 {min} 个字。",
        "too_long": "最多 {max} 个字。",
        "bad_phone": "请填写 11 位中国大陆手机号码。",
        "bad_email": "请填写有效的电子邮箱地址。",
        "consent_required": "请阅读并同意个人信息处理告知后再提交。",
        "file_type": "文件“{name}”不是 PDF、PNG 或 JPEG 文件（按内容判断）。",
        "file_size": "文件“{name}”超过 {size}。",
        "file_count": "最多可上传 {count} 个文件。",
        "files_again": "请重新选择附件（出于安全原因，浏览器不会保留已选文件）。",
        "too_large": "提交的内容超过 {size}，请减少附件后重试。",
        "csrf": "页面已过期，请重新提交。",
        "refused": "无法受理此次提交。",
        "flood": "此网络地址提交次数过多，请在 {minutes} 分钟后再试。",
        "contact_flood": "向此联系方式发送验证码的次数过多，请在 {minutes} 分钟后再试。",
        "send_failed": "验证码未能发送到此联系方式，请核对后重试。",
        "errors_above": "请修改标出的项目后重新提交。",
        "confirm.title": "确认联系方式",
        "confirm.sent": "验证码已发送至 {contact}，{minutes} 分钟内有效。",
        "code": "验证码",
        "confirm": "确认并提交",
        "resend": "重新发送验证码",
        "wrong_code": "验证码不正确，还可尝试 {left} 次。",
        "code_expired": "验证码已过期，请重新发送。",
        "too_many_codes": "验证码错误次数过多，此次提交已作废，请重新填写。",
        "gone": "此次提交已过期或已确认，请重新填写。",
        "done.title": "已受理",
        "done.number": "您的工单号：{number}",
        "done.ack": (
            "受理通知（含进度查询码）正在发送至 {contact}。凭工单号和查询码可随时查询进度。"
        ),
        "done.later": "我们已收到您的提交，工单号将随受理通知发送至 {contact}。",
        "done.progress": "查询进度",
        "privacy": "个人信息处理告知",
    },
    "en": {
        "title": "Complaints and questions",
        "intro": (
            "Please fill in the form. Before we accept it, we send a code to your phone or "
            "email to confirm that the contact is yours."
        ),
        "other": "中文",
        "kind": "Type",
        "kind.complaint": "Complaint",
        "kind.consultation": "Question",
        "kind.suggestion": "Suggestion",
        "area": "Business area",
        "area.choose": "Choose one",
        "area.cards": "Cards",
        "area.deposits": "Deposits and accounts",
        "area.loans": "Loans",
        "area.payments": "Payments and transfers",
        "area.wealth": "Wealth management and funds",
        "area.online": "Mobile and online banking",
        "area.branch": "Branch service",
        "area.other": "Other",
        "description": "What happened",
        "description.hint": (
            "What happened, when, the amounts involved, and what you would like us to do. "
            "Never write a password or a full card number."
        ),
        "attachments": "Attachments (optional)",
        "attachments.hint": "Up to {count} files of at most {size} each: PDF, PNG or JPEG only.",
        "contact": "How we reach you",
        "contact.phone": "Mobile phone",
        "contact.email": "Email",
        "phone": "Mobile number",
        "email": "Email address",
        "notice.title": "How we handle your personal information",
        "notice.body": (
            "What we collect: the contact you give (mobile number or email address), your "
            "description and attachments, and the network address you submit from.\n"
            "Why: to handle your complaint or question, to contact you about it, and to meet "
            "our regulatory duties to protect financial consumers; the network address only to "
            "prevent abuse.\n"
            "How long: {years} years after your case is closed (regulatory record-keeping), "
            "then deleted or anonymised; a submission whose contact is never confirmed is "
            "deleted within an hour.\n"
            "You may see, correct or delete your information, or withdraw consent, by "
            "contacting our customer service."
        ),
        "consent": "I have read and accept how my personal information is handled",
        "website": "Leave this empty",
        "submit": "Submit and get a code",
        "required": "Please fill this in.",
        "invalid_choice": "Please choose from the list.",
        "too_short": "Please write at least {min} characters.",
        "too_long": "At most {max} characters.",
        "bad_phone": "Please give an 11-digit mainland China mobile number.",
        "bad_email": "Please give a valid email address.",
        "consent_required": "Please read and accept the notice before submitting.",
        "file_type": "“{name}” is not a PDF, PNG or JPEG file (judged by its content).",
        "file_size": "“{name}” is larger than {size}.",
        "file_count": "At most {count} files.",
        "files_again": "Please choose your files again (browsers do not keep them, for safety).",
        "too_large": "The submission is larger than {size}; please attach less and try again.",
        "csrf": "This page has expired; please submit again.",
        "refused": "This submission cannot be accepted.",
        "flood": "Too many submissions from this network address. Try again in {minutes} minutes.",
        "contact_flood": "Too many codes sent to this contact. Try again in {minutes} minutes.",
        "send_failed": "We could not send a code to this contact. Please check it and try again.",
        "errors_above": "Please correct the marked fields and submit again.",
        "confirm.title": "Confirm your contact",
        "confirm.sent": "We sent a code to {contact}. It is valid for {minutes} minutes.",
        "code": "Code",
        "confirm": "Confirm and submit",
        "resend": "Send a new code",
        "wrong_code": "That code is not right. {left} tries left.",
        "code_expired": "This code has expired. Please ask for a new one.",
        "too_many_codes": (
            "Too many wrong codes: this submission was discarded. Please start again."
        ),
        "gone": "This submission has expired or was already confirmed. Please start again.",
        "done.title": "Received",
        "done.number": "Your ticket number: {number}",
        "done.ack": (
            "Our acknowledgement, with your progress code, is on its way to {contact}. With the "
            "number and the code you can follow your case at any time."
        ),
        "done.later": "We have your submission; the ticket number follows in our message to "
        "{contact}.",
        "done.progress": "Follow your case",
        "privacy": "Personal information notice",
    },
}


def choose_language(explicit: str | None, accept_language: str | None) -> Language:
    """An explicit choice (the switch link, the form's hidden field) wins; otherwise the
    browser's preference, by quality, between the two we have; Chinese by default."""
    if explicit:
        return "en" if explicit.lower().startswith("en") else "zh-CN"
    best: Language | None = None
    best_quality = 0.0
    for part in (accept_language or "")[:500].split(",")[:20]:
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        tag = tag.strip().lower()
        language: Language | None = (
            "en" if tag.startswith("en") else "zh-CN" if tag.startswith("zh") else None
        )
        if language is not None and quality > best_quality:
            best, best_quality = language, quality
    return best or "zh-CN"


def size_text(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):g} MB"
    return f"{size // 1024} KB"
