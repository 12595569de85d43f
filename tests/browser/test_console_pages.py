"""The agent console in Chromium: every role signs in and sees what it may; an agent works a
WeChat ticket and an email ticket of the same customer from the queue to closure (a
supervisor merges the two customers and approves a rejection under review); a masked phone
number stays masked for the agent and is revealed, and audited, for the supervisor; the
agent is refused a supervisor's page and action. Screenshots of the queue, a ticket and the
dashboard are written to docs/screenshots/ with TONGDAO_UPDATE_SCREENSHOTS=1.

The session cookie keeps its production default (Secure): Chromium treats the loopback
origin as secure, so nothing is relaxed for the test.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from hub.auth import Role
from hub.runtime import Hub
from hub.settings import Settings
from hub.testing.standins.dovecot import Account, DovecotServer
from hub.testing.standins.smtp import SmtpStandIn
from hub.testing.standins.wechat_api import WeChatApiStandIn
from tests import email_samples
from tests.browser.conftest import BrowserThread, Loop
from tests.conftest import drain
from tests.console_accounts import PASSWORD, add_staff
from tests.console_desk import Desk
from tests.email_setup import email_config
from tests.wechat_pushes import OPENID, retail_pusher, wechat_config
from tests.wechat_pushes import wechat_api as running_wechat_api
from ticket_core import AuditEvent, Kind, ManualClock, Message, Ticket

DESKTOP = {"width": 1366, "height": 900}
POLL = 60
CUSTOMER_MAIL = "li.ming@example.com"


@pytest.fixture
async def wechat_api(clock: ManualClock) -> AsyncIterator[WeChatApiStandIn]:
    async with running_wechat_api(clock) as stand_in:
        yield stand_in


@pytest.fixture
def settings(
    settings: Settings,
    wechat_api: WeChatApiStandIn,
    dovecot_server: DovecotServer,
    mail_account: Account,
    smtp_standin: SmtpStandIn,
) -> Settings:
    mail = email_config(mail_account, dovecot_server, smtp_standin, poll_seconds=POLL)
    connectors = {**settings.connectors, "wechat": wechat_config(wechat_api.url), "email": mail}
    return settings.model_copy(update={"connectors": connectors})


async def _tickets(hub: Hub) -> dict[str, Ticket]:
    async with hub.reads() as session:
        rows = (await session.exec(select(Ticket).order_by(col(Ticket.id)))).all()
    return {t.channel: t for t in rows}


async def _reveals(hub: Hub) -> list[AuditEvent]:
    async with hub.reads() as session:
        query = select(AuditEvent).where(AuditEvent.action == "pii.revealed")
        return list((await session.exec(query)).all())


async def _first_message(hub: Hub, number: str) -> Message:
    async with hub.reads() as session:
        ticket = (await session.exec(select(Ticket).where(Ticket.number == number))).one()
        query = select(Message).where(Message.ticket_id == ticket.id).order_by(col(Message.id))
        return (await session.exec(query)).first()  # type: ignore[return-value]


def _sign_in(browser: Any, base: str, username: str, locale: str = "en-US") -> Any:
    from playwright.sync_api import expect

    context = browser.new_context(locale=locale, viewport=DESKTOP)
    page = context.new_page()
    page.goto(f"{base}/console/")
    page.locator("#username").fill(username)
    page.locator("#password").fill(PASSWORD)
    page.locator("form[action='/console/login'] button[type=submit]").click()
    expect(page.get_by_test_id("whoami")).to_contain_text(username)
    return page


def _act(page: Any, form: str, fields: dict[str, str], button: str | None = None) -> None:
    """Fill a ticket action's form and submit it; the page comes back with a notice."""
    from playwright.sync_api import expect

    scope = page.get_by_test_id(f"form-{form}")
    for name, value in fields.items():
        radio = scope.locator(f"input[type=radio][name='{name}'][value='{value}']")
        field = scope.locator(f"[name='{name}']").first
        if radio.count():
            radio.check()
        elif field.evaluate("node => node.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    if button:
        scope.get_by_role("button", name=button).click()
    else:
        scope.locator("button[type=submit]").first.click()
    expect(page.get_by_test_id("action-done")).to_be_visible()


async def test_each_role_signs_in_and_sees_only_its_own_pages(
    browser_thread: BrowserThread, api: httpx.AsyncClient, hub: Hub
) -> None:
    for name, role in [
        ("alice", Role.agent),
        ("sue", Role.supervisor),
        ("audrey", Role.auditor),
        ("adam", Role.admin),
    ]:
        await add_staff(hub, name, role)
    base = str(api.base_url).rstrip("/")

    def scenario(browser: Any, loop: Loop) -> dict[str, list[str]]:
        from playwright.sync_api import expect

        seen: dict[str, list[str]] = {}
        for name, role in [
            ("alice", "agent"),
            ("sue", "supervisor"),
            ("audrey", "auditor"),
            ("adam", "admin"),
        ]:
            page = _sign_in(browser, base, name)
            expect(page.get_by_test_id("whoami")).to_have_text(f"{name} · {role}")
            seen[role] = page.locator("header.top nav a").all_inner_texts()
            page.get_by_role("button", name="Sign out").click()
            expect(page.locator("#username")).to_be_visible()
            page.goto(f"{base}/console/")
            expect(page).to_have_url(re.compile(r"/console/login"))
            page.context.close()
        return seen

    seen = await browser_thread.run(scenario)
    assert seen["agent"] == ["Tongdao console", "Queue"]
    assert seen["supervisor"] == ["Tongdao console", "Queue", "Review", "Escalations", "Dashboard"]
    assert seen["auditor"] == ["Tongdao console", "Queue", "Dashboard"]
    assert seen["admin"] == seen["supervisor"]


async def test_wechat_and_email_tickets_of_one_customer_worked_to_closure(
    browser_thread: BrowserThread,
    api: httpx.AsyncClient,
    hub: Hub,
    clock: ManualClock,
    wechat_api: WeChatApiStandIn,
    dovecot_server: DovecotServer,
    mail_account: Account,
    smtp_standin: SmtpStandIn,
    shots: Path,
) -> None:
    await add_staff(hub, "alice", Role.agent)
    await add_staff(hub, "sue", Role.supervisor, language="zh-CN")
    wechat = retail_pusher()
    push = wechat.text(
        OPENID,
        "我要投诉，信用卡被重复扣费两次，请打我手机13812345678",
        6900000000000000777,
        clock.now(),
    )
    assert (await wechat.push(api, "/channels/wechat/retail", push, "safe", clock.now())).text == (
        "success"
    )
    dovecot_server.deliver(
        mail_account,
        email_samples.plain(
            "你好，我在微信上投诉过重复扣费，这是账单截图说明。卡号尾号 4321。",
            subject="重复扣费补充",
            sender=CUSTOMER_MAIL,
        ),
    )
    clock.advance(seconds=POLL)
    await drain(hub)
    tickets = await _tickets(hub)
    wechat_number = tickets["wechat"].number or ""
    email_number = tickets["email"].number or ""
    wechat_customer = tickets["wechat"].customer_id
    first = await _first_message(hub, wechat_number)
    base = str(api.base_url).rstrip("/")

    def agent_part_one(browser: Any, loop: Loop) -> dict[str, Any]:
        from playwright.sync_api import expect

        page = _sign_in(browser, base, "alice")
        page.get_by_test_id("view-unassigned").click()
        expect(page.get_by_test_id(f"row-{wechat_number}")).to_be_visible()
        expect(page.get_by_test_id(f"row-{email_number}")).to_be_visible()
        page.get_by_role("link", name=wechat_number).click()
        expect(page.get_by_test_id("ticket-number")).to_have_text(wechat_number)
        # The phone number in the customer's text is masked, and an agent cannot reveal it.
        text = page.get_by_test_id(f"text-{first.id}")
        expect(text).to_contain_text("138****5678")
        expect(page.get_by_test_id(f"reveal-{first.id}")).to_have_count(0)
        masked_for_agent = text.inner_text()
        page.get_by_test_id("take").click()
        expect(page.get_by_test_id("ticket-assignee")).to_contain_text("alice")
        _act(page, "status", {"to": "in_progress"})
        expect(page.get_by_test_id("reply-window")).to_contain_text("window is open until")
        _act(page, "reply", {"text": "您好，重复扣费的 300 元将在 3 个工作日内退回。"})
        loop.call(drain(hub))
        page.reload()
        expect(page.get_by_test_id("ticket-status")).to_have_text("in progress")
        reply = page.locator("li.message", has_text="300 元")
        expect(reply.locator(".delivery")).to_have_text("delivered")
        _act(page, "outcome", {"outcome": "resolved", "summary": "已退回重复扣费"})
        expect(page.get_by_test_id("ticket-status")).to_have_text("resolved")
        _act(page, "status", {"to": "closed"})
        expect(page.get_by_test_id("ticket-status")).to_have_text("closed")

        # A supervisor's page and a supervisor's action are refused, whatever the UI shows.
        page.goto(f"{base}/console/review")
        expect(page.get_by_test_id("refusal")).to_contain_text("supervisor")
        page.goto(f"{base}/console/tickets/{email_number}")
        token = page.locator("input[name=csrf_token]").first.input_value()
        refused = page.request.post(
            f"{base}/console/tickets/{email_number}/merge",
            form={"other": str(wechat_customer), "reason": "same person", "csrf_token": token},
        )
        merge_status = refused.status

        # The email ticket: answer by mail, propose a rejection, which goes to review.
        page.get_by_test_id("take").click()
        _act(page, "status", {"to": "in_progress"})
        _act(page, "reply", {"text": "您好，经核查该笔为正常的年费扣收。"})
        loop.call(drain(hub))
        _act(page, "outcome", {"outcome": "rejected", "summary": "年费按合同收取"})
        expect(page.get_by_test_id("ticket-status")).to_have_text("under review")
        page.context.close()
        return {"masked": masked_for_agent, "merge_status": merge_status}

    agent = await browser_thread.run(agent_part_one)
    assert "13812345678" not in agent["masked"]
    assert agent["merge_status"] == 403
    [sent] = [d for d in wechat_api.delivered() if "300 元" in str(d.payload)]
    assert sent.payload["touser"] == OPENID
    replies = [
        m for m in smtp_standin.requests if "年费扣收" in m.message().get_body().get_content()
    ]
    assert [m.rcpt_tos for m in replies] == [(CUSTOMER_MAIL,)]

    def supervisor_part(browser: Any, loop: Loop) -> None:
        from playwright.sync_api import expect

        page = _sign_in(browser, base, "sue", locale="zh-CN")
        page.goto(f"{base}/console/?view=all&status=any")
        expect(page.get_by_test_id(f"row-{email_number}")).to_be_visible()
        page.screenshot(path=str(shots / "console-queue.png"), full_page=True)
        page.goto(f"{base}/console/tickets/{wechat_number}")
        expect(page.get_by_test_id(f"text-{first.id}")).to_contain_text("138****5678")
        page.get_by_test_id(f"reveal-{first.id}").click()
        expect(page.get_by_test_id(f"revealed-{first.id}")).to_contain_text("13812345678")
        page.goto(f"{base}/console/tickets/{email_number}")
        _act(page, "merge", {"other": str(wechat_customer), "reason": "同一客户：微信与邮件"})
        expect(page.get_by_test_id("earlier")).to_contain_text(wechat_number)
        _act(page, "review", {"decision": "approve", "reason": "核查属实，维持不予支持"})
        expect(page.get_by_test_id("ticket-status")).to_have_text("已办结")
        page.locator("details.audit summary").click()
        page.screenshot(path=str(shots / "console-ticket.png"), full_page=True)
        page.context.close()

    await browser_thread.run(supervisor_part)
    reveals = await _reveals(hub)
    assert [(e.actor, e.after["message_id"]) for e in reveals] == [("supervisor:sue", first.id)]

    def agent_closes(browser: Any, loop: Loop) -> None:
        from playwright.sync_api import expect

        page = _sign_in(browser, base, "alice")
        page.goto(f"{base}/console/?view=mine&status=resolved")
        page.get_by_role("link", name=email_number).click()
        _act(page, "status", {"to": "closed"})
        expect(page.get_by_test_id("ticket-status")).to_have_text("closed")
        page.context.close()

    await browser_thread.run(agent_closes)
    await drain(hub)
    tickets = await _tickets(hub)
    assert {t.status for t in tickets.values()} == {"closed"}
    assert tickets["email"].customer_id == tickets["wechat"].customer_id


async def test_supervisor_reads_a_months_dashboard_and_downloads_its_figures(
    browser_thread: BrowserThread, api: httpx.AsyncClient, hub: Hub, clock: ManualClock, shots: Path
) -> None:
    """Four weeks of traffic on four channels: the dashboard draws it, and a chart's CSV
    holds the same numbers as the database."""
    desk = Desk(hub, clock)
    start = clock.now().replace(hour=1, minute=0, second=0) - timedelta(days=28)
    channels = ("wechat", "email", "app", "web")
    categories = ("信用卡", "理财", "贷款", "借记卡", None)
    queues = ("cards", "wealth", "loans", "retail")
    received = 0
    for day in range(28):
        for i in range((day * 7) % 5 + 2):
            clock.set(start + timedelta(days=day, hours=i * 2))
            kind = (Kind.complaint, Kind.consultation, Kind.suggestion)[(day + i) % 3]
            number = await desk.receive(
                channels[(day + i) % 4],
                kind,
                categories[(day * 3 + i) % 5],
                queues[(day + i) % 4],
                f"第 {day} 天第 {i} 件",
            )
            received += 1
            if (day + i) % 3 != 0 and day < 25:
                clock.advance(hours=(day + i) % 40)
                await desk.resolve(number)
    clock.set(start + timedelta(days=28, hours=12))
    await hub.scheduler.tick()
    await add_staff(hub, "sue", Role.supervisor, language="zh-CN")
    base = str(api.base_url).rstrip("/")

    def scenario(browser: Any, loop: Loop) -> str:
        from playwright.sync_api import expect

        page = _sign_in(browser, base, "sue", locale="zh-CN")
        page.goto(f"{base}/console/?view=all")
        expect(page.locator("table.queue tbody tr").first).to_be_visible()
        page.screenshot(path=str(shots / "console-queue.png"), full_page=True)
        page.get_by_role("link", name="看板").click()
        expect(page.locator("svg[role=img]")).to_have_count(5)
        page.screenshot(path=str(shots / "console-dashboard.png"), full_page=True)
        with page.expect_download() as download:
            page.locator("a[href*='dataset=volume_channel']").first.click()
        text = Path(download.value.path()).read_text(encoding="utf-8-sig")
        page.context.close()
        return text

    text = await browser_thread.run(scenario)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows, text
    assert sum(int(row["total"]) for row in rows) == received
