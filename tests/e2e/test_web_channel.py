"""The customer's web channel through real HTTP, on SQLite and PostgreSQL: a complaint is
filed, its contact confirmed by a one-time code (SMS stand-in, SMTP stand-in), the ticket
opens, the acknowledgement with the progress code reaches the confirmed contact, and the
progress page takes follow-ups and a rating. Hostile input is refused with the reason."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from hub.auth import Role
from hub.runtime import Hub
from hub.settings import Settings
from hub.testing.standins.sms_gateway import SmsGatewayStandIn
from hub.testing.standins.smtp import SmtpStandIn
from tests.conftest import drain
from ticket_core import ManualClock

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200
CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')
PENDING = re.compile(r'name="pending" value="([0-9a-f]{32})"')
SMS_CODE = re.compile(r"(?:验证码是|code is) (\d{6})")
NUMBER = re.compile(r"TD-\d{8}-\d{6}")
PROGRESS_CODE = re.compile(r"查询码：([23456789A-HJKMNP-Z]{8})")
PHONE = "13812345678"
LIMIT_BYTES = 64 * 1024


@pytest.fixture
async def sms() -> AsyncIterator[SmsGatewayStandIn]:
    stand_in = SmsGatewayStandIn()
    await stand_in.start()
    yield stand_in
    await stand_in.stop()


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpStandIn]:
    stand_in = SmtpStandIn()
    await stand_in.start()
    yield stand_in
    await stand_in.stop()


def web_config(sms: SmsGatewayStandIn, smtp: SmtpStandIn, **extra: object) -> dict[str, object]:
    return {
        "sms_gateway_url": sms.url,
        "sms_api_key": sms.api_key,
        "smtp_host": smtp.host,
        "smtp_port": smtp.port,
        "smtp_starttls": False,
        "smtp_from": "service@bank.example",
        "secure_cookies": False,
        "max_attachment_bytes": LIMIT_BYTES,
        "max_body_bytes": 4 * LIMIT_BYTES,
        "submissions_per_address": 4,
        **extra,
    }


@pytest.fixture
def settings(settings: Settings, sms: SmsGatewayStandIn, smtp: SmtpStandIn) -> Settings:
    connectors = {**settings.connectors, "web": web_config(sms, smtp)}
    return settings.model_copy(update={"connectors": connectors})


async def open_form(api: httpx.AsyncClient, lang: str = "zh-CN") -> str:
    form = await api.get(f"/web/?lang={lang}", follow_redirects=True)
    assert form.status_code == 200, form.text
    assert str(form.url).endswith(f"/channels/web/?lang={lang}")
    match = CSRF.search(form.text)
    assert match
    return match.group(1)


def fields(csrf: str, **overrides: str) -> dict[str, str]:
    return {
        "csrf": csrf,
        "lang": "zh-CN",
        "kind": "complaint",
        "area": "cards",
        "description": "信用卡被重复扣费 300 元，要求退款",
        "contact_kind": "phone",
        "phone": PHONE,
        "consent": "yes",
        "website": "",
        **overrides,
    }


async def submit(
    api: httpx.AsyncClient,
    data: dict[str, str],
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None,
    client: str = "198.51.100.7",
) -> httpx.Response:
    return await api.post(
        "/channels/web/",
        data=data,
        files=files or [("attachments", ("", b"", "application/octet-stream"))],
        headers={"x-forwarded-for": client},
    )


async def test_a_confirmed_complaint_opens_a_ticket_and_follows_up(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, sms: SmsGatewayStandIn, make_key
) -> None:
    csrf = await open_form(api)
    page = await submit(
        api, fields(csrf), files=[("attachments", ("账单.png", PNG, "application/x-anything"))]
    )
    assert page.status_code == 200, page.text
    assert "138****5678" in page.text and PHONE not in page.text
    pending = PENDING.search(page.text)
    assert pending
    code = SMS_CODE.search(sms.to(PHONE)[-1])
    assert code
    done = await api.post(
        "/channels/web/confirm",
        data={"csrf": csrf, "lang": "zh-CN", "pending": pending.group(1), "code": code.group(1)},
    )
    assert done.status_code == 200, done.text
    number = NUMBER.search(done.text)
    assert number, done.text
    # The same code again: single use.
    again = await api.post(
        "/channels/web/confirm",
        data={"csrf": csrf, "lang": "zh-CN", "pending": pending.group(1), "code": code.group(1)},
    )
    assert again.status_code == 410
    await drain(hub)
    ack = next(t for t in sms.to(PHONE) if number.group(0) in t)
    progress_code = PROGRESS_CODE.search(ack)
    assert progress_code, ack
    agent = await make_key(Role.agent)
    ticket = (await api.get(f"/api/v1/tickets/{number.group(0)}", headers=agent)).json()
    assert ticket["kind"] == "complaint" and ticket["channel"] == "web"
    assert ticket["messages"][0]["attachments"][0]["content_type"] == "image/png"
    assert ticket["messages"][0]["attachments"][0]["name"] == "账单.png"

    lookup = {"number": number.group(0), "code": progress_code.group(1), "lang": "zh-CN"}
    view = await api.post("/progress", data=lookup)
    assert view.status_code == 200 and "补充信息" in view.text and "已受理" in view.text
    nonce = re.search(r'name="nonce" value="([^"]+)"', view.text)
    assert nonce
    added = await api.post(
        "/progress/messages",
        data={**lookup, "nonce": nonce.group(1), "text": "补充：扣费时间 11 月 20 日"},
    )
    assert added.status_code == 200 and "已收到您的补充信息" in added.text
    # The same form sent twice stores one message.
    await api.post(
        "/progress/messages",
        data={**lookup, "nonce": nonce.group(1), "text": "补充：扣费时间 11 月 20 日"},
    )
    await drain(hub)
    ticket = (await api.get(f"/api/v1/tickets/{number.group(0)}", headers=agent)).json()
    texts = [m["text"] for m in ticket["messages"] if m["direction"] == "in"]
    assert texts.count("补充：扣费时间 11 月 20 日") == 1

    for step in ({"to": "in_progress"}, {"to": "resolved", "outcome": "resolved"}):
        moved = await api.post(
            f"/api/v1/tickets/{number.group(0)}/transitions", json=step, headers=agent
        )
        assert moved.status_code == 200, moved.text
    view = await api.post("/progress", data=lookup)
    assert "满意度评价" in view.text and "12378" in view.text
    nonce = re.search(r'name="nonce" value="([^"]+)"', view.text)
    assert nonce
    rated = await api.post(
        "/progress/rating", data={**lookup, "nonce": nonce.group(1), "score": "5"}
    )
    assert rated.status_code == 200, rated.text
    await drain(hub)
    ticket = (await api.get(f"/api/v1/tickets/{number.group(0)}", headers=agent)).json()
    assert ticket["status"] == "resolved"
    assert ticket["satisfaction"] == "satisfied"
    assert "您已评价：满意" in (await api.post("/progress", data=lookup)).text


async def test_email_contact_in_english(
    api: httpx.AsyncClient, hub: Hub, smtp: SmtpStandIn
) -> None:
    csrf = await open_form(api, "en")
    page = await submit(
        api,
        fields(
            csrf,
            lang="en",
            kind="consultation",
            contact_kind="email",
            phone="",
            email="Wei.Li@Example.COM",
            description="How do I raise my card limit?",
        ),
    )
    assert page.status_code == 200, page.text
    assert "We sent a code to W***@example.com" in page.text
    mail = (await smtp.wait_for(1))[0]
    assert mail.rcpt_tos == ("Wei.Li@example.com",)
    code = SMS_CODE.search(mail.message().get_content())
    assert code
    pending = PENDING.search(page.text)
    assert pending
    done = await api.post(
        "/channels/web/confirm",
        data={"csrf": csrf, "lang": "en", "pending": pending.group(1), "code": code.group(1)},
    )
    assert "Your ticket number: TD-" in done.text
    await drain(hub)
    mails = await smtp.wait_for(2)
    assert "[TD-" in str(mails[1].message()["Subject"])


async def test_refusals_say_why_and_keep_what_was_typed(
    api: httpx.AsyncClient, hub: Hub, clock: ManualClock, sms: SmsGatewayStandIn
) -> None:
    csrf = await open_form(api)
    # Fields: messages next to each, the description kept.
    bad = await submit(api, fields(csrf, phone="12345", consent="", kind="x"), client="192.0.2.1")
    assert bad.status_code == 422
    assert "请填写 11 位中国大陆手机号码" in bad.text and "请阅读并同意" in bad.text
    assert "信用卡被重复扣费 300 元，要求退款" in bad.text and 'aria-invalid="true"' in bad.text
    # A file named .pdf that is not one; an oversized file.
    fake = await submit(
        api,
        fields(csrf),
        [("attachments", ("a.pdf", b"MZ\x90\x00", "application/pdf"))],
        client="192.0.2.2",
    )
    assert fake.status_code == 422 and "不是 PDF、PNG 或 JPEG 文件" in fake.text
    big = PNG + b"\x00" * LIMIT_BYTES
    large = await submit(
        api, fields(csrf), [("attachments", ("b.png", big, "image/png"))], client="192.0.2.3"
    )
    assert large.status_code == 422 and "超过 64 KB" in large.text
    # No CSRF token, and the honeypot.
    forged = await submit(api, fields(""), client="192.0.2.4")
    assert forged.status_code == 403 and "页面已过期" in forged.text
    bot = await submit(api, fields(csrf, website="http://spam.example"), client="192.0.2.5")
    assert bot.status_code == 400
    assert sms.sent == []
    # A flood from one address: the fifth submission in the window is refused.
    for _ in range(4):
        await submit(api, fields(csrf, consent=""), client="203.0.113.9")
    flood = await submit(api, fields(csrf), client="203.0.113.9")
    assert flood.status_code == 429 and "此网络地址提交次数过多" in flood.text
    assert "信用卡被重复扣费" in flood.text
    # A wrong code, then an expired one.
    page = await submit(api, fields(csrf), client="192.0.2.6")
    pending = PENDING.search(page.text)
    assert pending
    confirm = {"csrf": csrf, "lang": "zh-CN", "pending": pending.group(1)}
    wrong = await api.post("/channels/web/confirm", data={**confirm, "code": "000000"})
    if wrong.status_code == 200:  # one in a million: the code was 000000
        return
    assert wrong.status_code == 422 and "验证码不正确，还可尝试 4 次" in wrong.text
    code = SMS_CODE.search(sms.to(PHONE)[-1])
    assert code
    clock.advance(seconds=601)
    expired = await api.post("/channels/web/confirm", data={**confirm, "code": code.group(1)})
    assert expired.status_code == 410 and "验证码已过期" in expired.text
    # A new code works, from the same browser only.
    resent = await api.post("/channels/web/resend", data=confirm)
    assert resent.status_code == 200
    code = SMS_CODE.search(sms.to(PHONE)[-1])
    assert code
    async with httpx.AsyncClient(base_url=api.base_url) as other_browser:
        other_browser.cookies.set("td_web", "another-browser-token-xyz")
        stranger = await other_browser.post(
            "/channels/web/confirm", data={**confirm, "code": code.group(1)}
        )
    assert stranger.status_code == 403
    done = await api.post("/channels/web/confirm", data={**confirm, "code": code.group(1)})
    assert done.status_code == 200 and NUMBER.search(done.text)
