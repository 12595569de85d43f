"""The customer's pages in Chromium: file a complaint in Chinese (SMS) and English (email),
confirm the code, see the acknowledgement, follow the case, add information and rate the
resolution; a wrong code, an expired code, an oversized file and a flood from one address are
refused with the reason. Screenshots at phone and desktop sizes are taken on the way (written
to docs/screenshots/ with TONGDAO_UPDATE_SCREENSHOTS=1)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.auth import Role
from hub.runtime import Hub
from hub.settings import Settings
from hub.testing.standins.sms_gateway import SmsGatewayStandIn
from hub.testing.standins.smtp import SmtpStandIn
from tests.browser.conftest import BrowserThread, Loop
from tests.conftest import drain
from tests.e2e.test_web_channel import (
    NUMBER,
    PHONE,
    PNG,
    PROGRESS_CODE,
    SMS_CODE,
    web_config,
)
from ticket_core import ManualClock

PHONE_SCREEN = {"width": 390, "height": 844}
DESKTOP_SCREEN = {"width": 1280, "height": 800}
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


@pytest.fixture
def settings(settings: Settings, sms: SmsGatewayStandIn, smtp: SmtpStandIn) -> Settings:
    web = web_config(sms, smtp, submissions_per_address=3)
    return settings.model_copy(update={"connectors": {**settings.connectors, "web": web}})


def _snap(page: Any, directory: Path, name: str) -> None:
    """The page as a phone and as a desktop shows it."""
    for label, size in (("phone", PHONE_SCREEN), ("desktop", DESKTOP_SCREEN)):
        page.set_viewport_size(size)
        page.screenshot(path=str(directory / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(PHONE_SCREEN)


def _fill_chinese_form(page: Any, description: str = "信用卡被重复扣费 300 元，要求退款") -> None:
    page.get_by_label("投诉").check()
    page.get_by_label("业务类别").select_option("cards")
    page.get_by_label("情况说明").fill(description)
    page.get_by_label("手机", exact=True).check()
    page.get_by_label("手机号码").fill(PHONE)
    page.get_by_label("我已阅读并同意上述个人信息处理告知").check()


async def test_chinese_complaint_by_sms_through_to_the_rating(
    browser_thread: BrowserThread,
    api: httpx.AsyncClient,
    hub: Hub,
    sms: SmsGatewayStandIn,
    make_key: Any,
    shots: Path,
) -> None:
    base = str(api.base_url).rstrip("/")

    async def last_sms() -> str:
        return sms.to(PHONE)[-1]

    async def resolve(number: str) -> None:
        agent = await make_key(Role.agent)
        for step in ({"to": "in_progress"}, {"to": "resolved", "outcome": "resolved"}):
            moved = await api.post(
                f"/api/v1/tickets/{number}/transitions", json=step, headers=agent
            )
            assert moved.status_code == 200, moved.text

    async def satisfaction(number: str) -> str | None:
        agent = await make_key(Role.agent)
        return (await api.get(f"/api/v1/tickets/{number}", headers=agent)).json()["satisfaction"]

    def scenario(browser: Any, loop: Loop) -> tuple[str, str | None]:
        from playwright.sync_api import expect

        context = browser.new_context(
            locale="zh-CN", viewport=PHONE_SCREEN, extra_http_headers={"accept-language": "zh-CN"}
        )
        page = context.new_page()
        page.goto(f"{base}/web/")
        expect(page.get_by_role("heading", name="在线投诉与咨询")).to_be_visible()
        expect(page.get_by_role("link", name="English")).to_be_visible()
        _snap(page, shots, "web-form-zh")
        _fill_chinese_form(page)
        page.get_by_label("附件（可选）").set_input_files(
            [{"name": "账单.png", "mimeType": "image/png", "buffer": PNG}]
        )
        page.get_by_role("button", name="提交并获取验证码").click()
        expect(page.get_by_role("heading", name="确认联系方式")).to_be_visible()
        expect(page.get_by_text("验证码已发送至 138****5678")).to_be_visible()
        code = SMS_CODE.search(loop.call(last_sms()))
        assert code
        page.get_by_label("验证码").fill(code.group(1))
        page.get_by_role("button", name="确认并提交").click()
        expect(page.get_by_role("heading", name="已受理")).to_be_visible()
        shown = NUMBER.search(page.get_by_role("status").inner_text())
        assert shown
        number = shown.group(0)
        expect(page.get_by_text("受理通知（含进度查询码）正在发送至 138****5678")).to_be_visible()

        loop.call(drain(hub))
        progress = PROGRESS_CODE.search(loop.call(last_sms()))
        assert progress and number in loop.call(last_sms())

        page.get_by_role("link", name="查询进度").click()
        page.get_by_label("工单号").fill(number)
        page.get_by_label("查询码").fill(progress.group(1))
        page.get_by_role("button", name="查询").click()
        expect(page.get_by_role("heading", name="办理进程")).to_be_visible()
        expect(page.get_by_text("信用卡被重复扣费 300 元，要求退款")).to_be_visible()
        page.get_by_label(re.compile("补充说明或材料线索")).fill("补充：扣费时间为 11 月 20 日")
        page.get_by_role("button", name="提交补充").click()
        expect(page.get_by_text("已收到您的补充信息")).to_be_visible()
        loop.call(drain(hub))
        loop.call(resolve(number))

        page.get_by_label("工单号").fill(number)
        page.get_by_label("查询码").fill(progress.group(1))
        page.get_by_role("button", name="查询").click()
        expect(page.get_by_text("补充：扣费时间为 11 月 20 日")).to_be_visible()
        expect(page.get_by_text("12378")).to_be_visible()
        _snap(page, shots, "progress-zh")
        page.get_by_label("5", exact=True).check()
        page.get_by_role("button", name="提交评价").click()
        expect(page.get_by_text("感谢您的评价")).to_be_visible()
        loop.call(drain(hub))
        context.close()
        return number, loop.call(satisfaction(number))

    number, answer = await browser_thread.run(scenario)
    assert number.startswith("TD-")
    assert answer == "satisfied"


async def test_english_complaint_confirmed_by_email(
    browser_thread: BrowserThread,
    api: httpx.AsyncClient,
    hub: Hub,
    smtp: SmtpStandIn,
    shots: Path,
) -> None:
    base = str(api.base_url).rstrip("/")

    async def mail(count: int) -> str:
        return (await smtp.wait_for(count))[count - 1].message().get_content()

    def scenario(browser: Any, loop: Loop) -> None:
        from playwright.sync_api import expect

        context = browser.new_context(
            locale="en-GB",
            viewport=PHONE_SCREEN,
            extra_http_headers={"accept-language": "en-GB,en;q=0.9,zh-CN;q=0.5"},
        )
        page = context.new_page()
        page.goto(f"{base}/web/")
        expect(page.get_by_role("heading", name="Complaints and questions")).to_be_visible()
        _snap(page, shots, "web-form-en")
        page.get_by_label("Question").check()
        page.get_by_label("Business area").select_option("online")
        page.get_by_label("What happened").fill("The mobile app rejects my login since Monday.")
        page.get_by_label("Email", exact=True).check()
        page.get_by_label("Email address").fill("wei.li@example.com")
        page.get_by_label("I have read and accept").check()
        page.get_by_role("button", name="Submit and get a code").click()
        expect(page.get_by_text("We sent a code to w***@example.com")).to_be_visible()
        code = SMS_CODE.search(loop.call(mail(1)))
        assert code
        page.get_by_label("Code").fill(code.group(1))
        page.get_by_role("button", name="Confirm and submit").click()
        expect(page.get_by_text(re.compile(r"Your ticket number: TD-"))).to_be_visible()
        expect(page.get_by_text(re.compile("on its way to w\\*\\*\\*@example.com"))).to_be_visible()
        loop.call(drain(hub))
        acknowledgement = loop.call(mail(2))
        assert "Your ticket number is TD-" in acknowledgement  # in the customer's language
        assert "this code" in acknowledgement
        # The switch link keeps working from the English page.
        page.goto(f"{base}/web/")
        page.get_by_role("link", name="中文").click()
        expect(page.get_by_role("heading", name="在线投诉与咨询")).to_be_visible()
        context.close()

    await browser_thread.run(scenario)


async def test_refusals_are_explained(
    browser_thread: BrowserThread,
    api: httpx.AsyncClient,
    clock: ManualClock,
    sms: SmsGatewayStandIn,
) -> None:
    base = str(api.base_url).rstrip("/")

    async def last_sms() -> str:
        return sms.to(PHONE)[-1]

    async def advance(seconds: int) -> None:
        clock.advance(seconds=seconds)

    def scenario(browser: Any, loop: Loop) -> None:
        from playwright.sync_api import expect

        context = browser.new_context(locale="zh-CN", viewport=PHONE_SCREEN)
        page = context.new_page()
        page.goto(f"{base}/web/?lang=zh-CN")
        # 1: an oversized file, refused next to the field; what was typed stays.
        _fill_chinese_form(page)
        page.get_by_label("附件（可选）").set_input_files(
            [{"name": "big.png", "mimeType": "image/png", "buffer": PNG + b"\0" * LIMIT_BYTES}]
        )
        page.get_by_role("button", name="提交并获取验证码").click()
        expect(page.get_by_text("文件“big.png”超过 64 KB。")).to_be_visible()
        expect(page.get_by_label("情况说明")).to_have_value("信用卡被重复扣费 300 元，要求退款")
        expect(page.get_by_label("手机号码")).to_have_value(PHONE)
        # 2: a wrong code, then the right one too late.
        page.get_by_role("button", name="提交并获取验证码").click()
        expect(page.get_by_role("heading", name="确认联系方式")).to_be_visible()
        page.get_by_label("验证码").fill("12345x")
        page.get_by_role("button", name="确认并提交").click()
        expect(page.get_by_role("alert")).to_have_text("验证码不正确，还可尝试 4 次。")
        code = SMS_CODE.search(loop.call(last_sms()))
        assert code
        loop.call(advance(601))
        page.get_by_label("验证码").fill(code.group(1))
        page.get_by_role("button", name="确认并提交").click()
        expect(page.get_by_role("alert")).to_have_text("验证码已过期，请重新发送。")
        # 3 and 4: the address's limit (3 in the window) is reached; the fourth is refused.
        page.goto(f"{base}/web/?lang=zh-CN")
        _fill_chinese_form(page, "第三次提交")
        page.get_by_role("button", name="提交并获取验证码").click()
        expect(page.get_by_role("heading", name="确认联系方式")).to_be_visible()
        page.goto(f"{base}/web/?lang=zh-CN")
        _fill_chinese_form(page, "第四次提交")
        page.get_by_role("button", name="提交并获取验证码").click()
        expect(page.get_by_role("alert")).to_contain_text("此网络地址提交次数过多")
        expect(page.get_by_label("情况说明")).to_have_value("第四次提交")
        context.close()

    await browser_thread.run(scenario)
