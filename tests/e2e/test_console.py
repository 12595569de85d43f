"""The agent console over HTTP: sign-in, lock-out, sessions, CSRF, roles, the queue, the
ticket page and its actions (the browser tests drive the same pages through Chromium)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import httpx
import pytest
from sqlmodel import select

from hub.app import create_app
from hub.auth import Role
from hub.runtime import Hub
from hub.settings import RuleSettings, Settings, SlaSettings
from hub.testing import SignedWebhookReceiver, serving
from tests.app_pushes import app_message, push
from tests.conftest import drain
from tests.console_accounts import PASSWORD, add_staff, csrf_token, sign_in
from ticket_core import AuditEvent, ManualClock, Ticket


@pytest.fixture
def sla_rules() -> list[RuleSettings] | None:
    """Tests that need other SLA rules parametrize this."""
    return None


@pytest.fixture
def settings(settings: Settings, sla_rules: list[RuleSettings] | None) -> Settings:
    # httpx sends Secure cookies over https only; the browser tests keep the default.
    update: dict[str, object] = {
        "console": settings.console.model_copy(update={"secure_cookie": False})
    }
    if sla_rules is not None:
        update["sla"] = SlaSettings(rules=sla_rules)
    return settings.model_copy(update=update)


@pytest.fixture
async def base_url(hub: Hub) -> AsyncIterator[str]:
    async with serving(create_app(hub=hub, run_workers=False)) as url:
        yield url


@pytest.fixture
async def browser(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=base_url, timeout=10, headers={"accept-language": "en"}
    ) as client:
        yield client


MakeTicket = Callable[[str], Awaitable[str]]


@pytest.fixture
def make_ticket(
    base_url: str, hub: Hub, clock: ManualClock, receiver: SignedWebhookReceiver
) -> MakeTicket:
    """A ticket opened by an app push of ``text``; its number."""

    async def make(text: str) -> str:
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
            await push(client, app_message(text), clock.now())
        await drain(hub)
        return receiver.received[-1]["ticket_number"]

    return make


@pytest.fixture
async def alice(hub: Hub, browser: httpx.AsyncClient) -> httpx.AsyncClient:
    """The browser signed in as the agent alice."""
    await add_staff(hub, "alice", Role.agent)
    await sign_in(browser, "alice")
    return browser


async def test_pages_ask_for_sign_in_and_come_back_after_it(
    hub: Hub, browser: httpx.AsyncClient
) -> None:
    page = await browser.get("/console/tickets/TD-20260101-000001")
    assert page.status_code == 303
    assert page.headers["location"] == (
        "/console/login?next=%2Fconsole%2Ftickets%2FTD-20260101-000001"
    )
    await add_staff(hub, "alice", Role.agent)
    signed = await sign_in(browser, "alice")
    assert signed.status_code == 303
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    queue = await browser.get("/console/")
    assert queue.status_code == 200
    assert "alice" in queue.text
    assert "default-src 'self'" in queue.headers["content-security-policy"]


async def test_wrong_password_is_refused_like_an_unknown_name(
    hub: Hub, browser: httpx.AsyncClient
) -> None:
    await add_staff(hub, "alice", Role.agent)
    wrong = await sign_in(browser, "alice", "not the password")
    unknown = await sign_in(browser, "nobody", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong username or password" in wrong.text
    assert "Wrong username or password" in unknown.text


async def test_five_failures_lock_the_account_until_the_lock_expires(
    hub: Hub, browser: httpx.AsyncClient, clock: ManualClock
) -> None:
    await add_staff(hub, "alice", Role.agent)
    for _ in range(5):
        await sign_in(browser, "alice", "guessing-wrong")
    locked = await sign_in(browser, "alice")  # the right password, but locked
    assert locked.status_code == 401
    assert "locked" in locked.text
    clock.advance(timedelta(minutes=16))
    assert (await sign_in(browser, "alice")).status_code == 303


async def test_a_session_ends_after_the_idle_time(
    hub: Hub, browser: httpx.AsyncClient, clock: ManualClock
) -> None:
    await add_staff(hub, "alice", Role.agent)
    await sign_in(browser, "alice")
    assert (await browser.get("/console/")).status_code == 200
    clock.advance(timedelta(minutes=31))
    assert (await browser.get("/console/")).status_code == 303


async def test_a_post_without_the_csrf_token_changes_nothing(
    hub: Hub,
    alice: httpx.AsyncClient,
    make_ticket: MakeTicket,
) -> None:
    number = await make_ticket("我要投诉，信用卡年费乱收")
    forged = await alice.post(f"/console/tickets/{number}/note", data={"text": "forged"})
    assert forged.status_code == 403
    assert "did not come from this console" in forged.text
    token = await csrf_token(alice)
    real = await alice.post(
        f"/console/tickets/{number}/note", data={"text": "a real note", "csrf_token": token}
    )
    assert real.status_code == 303
    page = await alice.get(f"/console/tickets/{number}")
    assert "a real note" in page.text and "forged" not in page.text


async def test_agent_works_a_ticket_from_the_queue_to_closure(
    hub: Hub,
    alice: httpx.AsyncClient,
    receiver: SignedWebhookReceiver,
    make_ticket: MakeTicket,
) -> None:
    number = await make_ticket("咨询一下，手机银行转账限额是多少")
    unassigned = await alice.get("/console/", params={"view": "unassigned"})
    assert number in unassigned.text
    token = await csrf_token(alice)
    base = f"/console/tickets/{number}"
    for path, form in [
        ("take", {}),
        ("status", {"to": "in_progress"}),
        ("reply", {"text": "您好，单笔限额为五万元。"}),
        ("outcome", {"outcome": "resolved", "summary": "已答复限额"}),
        ("status", {"to": "closed"}),
    ]:
        response = await alice.post(f"{base}/{path}", data={**form, "csrf_token": token})
        assert response.status_code == 303, (path, response.text[-600:])
    mine = await alice.get("/console/", params={"view": "mine", "status": "any"})
    assert number in mine.text
    await drain(hub)
    async with hub.reads() as session:
        ticket = (await session.exec(select(Ticket).where(Ticket.number == number))).one()
    assert ticket.status == "closed" and ticket.assignee == "alice"
    assert any("五万元" in m.get("text", "") for m in receiver.received)


async def test_a_refused_action_shows_the_rule_with_its_status(
    hub: Hub,
    alice: httpx.AsyncClient,
    make_ticket: MakeTicket,
) -> None:
    number = await make_ticket("我要投诉，柜台服务态度差")
    token = await csrf_token(alice)
    response = await alice.post(
        f"/console/tickets/{number}/status", data={"to": "closed", "csrf_token": token}
    )
    assert response.status_code == 409
    assert "can only move to" in response.text


async def test_agent_is_refused_a_supervisors_action_and_page(
    hub: Hub,
    alice: httpx.AsyncClient,
    make_ticket: MakeTicket,
) -> None:
    number = await make_ticket("我要投诉，理财亏损未提示风险")
    token = await csrf_token(alice)
    merge = await alice.post(
        f"/console/tickets/{number}/merge",
        data={"other": "1", "reason": "same person", "csrf_token": token},
    )
    assert merge.status_code == 403
    assert "supervisor" in merge.text


async def test_masked_text_is_revealed_to_a_supervisor_only_and_each_reveal_is_audited(
    hub: Hub,
    alice: httpx.AsyncClient,
    base_url: str,
    make_ticket: MakeTicket,
) -> None:
    number = await make_ticket("我要投诉，我的手机13812345678收到诈骗短信")
    await add_staff(hub, "sue", Role.supervisor)
    page = await alice.get(f"/console/tickets/{number}")
    assert "13812345678" not in page.text and "138****5678" in page.text
    assert "/reveal" not in page.text
    async with hub.reads() as session:
        ticket = (await session.exec(select(Ticket).where(Ticket.number == number))).one()
        from ticket_core import messages_of

        message_id = (await messages_of(session, ticket))[0].id
    token = await csrf_token(alice)
    refused = await alice.post(
        f"/console/tickets/{number}/messages/{message_id}/reveal", headers={"x-csrf-token": token}
    )
    assert refused.status_code == 403

    async with httpx.AsyncClient(base_url=base_url, timeout=10) as supervisor:
        await sign_in(supervisor, "sue")
        token = await csrf_token(supervisor)
        shown = await supervisor.post(
            f"/console/tickets/{number}/messages/{message_id}/reveal",
            headers={"x-csrf-token": token, "hx-request": "true"},
        )
    assert shown.status_code == 200
    assert "13812345678" in shown.text
    async with hub.reads() as session:
        reveals = (
            await session.exec(select(AuditEvent).where(AuditEvent.action == "pii.revealed"))
        ).all()
    assert [(e.actor, e.after["message_id"], e.after["kinds"]) for e in reveals] == [
        ("supervisor:sue", message_id, ["phone"])
    ]


async def test_queue_filters_and_pages_nearest_due_first(
    hub: Hub,
    browser: httpx.AsyncClient,
    clock: ManualClock,
    make_ticket: MakeTicket,
) -> None:
    numbers = []
    for i in range(3):
        numbers.append(await make_ticket(f"我要投诉，第{i}件事"))
        clock.advance(timedelta(hours=1))
    await add_staff(hub, "sue", Role.supervisor)
    await sign_in(browser, "sue")
    page = await browser.get("/console/", params={"view": "all", "kind": "complaint"})
    positions = [page.text.index(f"row-{n}") for n in numbers]
    assert positions == sorted(positions)
    breached = await browser.get("/console/", params={"view": "all", "risk": "breached"})
    assert "0 tickets" in breached.text
    clock.advance(timedelta(days=30))
    await sign_in(browser, "sue")  # the idle session has ended meanwhile
    breached = await browser.get("/console/queue/rows", params={"view": "all", "risk": "breached"})
    assert "3 tickets" in breached.text
    found = await browser.get("/console/search", params={"number": numbers[1].lower()})
    assert found.status_code == 303 and found.headers["location"].endswith(numbers[1])


async def test_staff_command_creates_an_account_that_signs_in(
    hub: Hub, browser: httpx.AsyncClient
) -> None:
    # The CLI itself runs in tests/e2e/test_cli.py style elsewhere; here the account's
    # password rules: too short is refused with the reason.
    from hub.console.accounts import AccountError, create_account

    async with hub.sessions() as session, session.begin():
        with pytest.raises(AccountError, match="at least 12"):
            await create_account(session, "bob", "short", Role.agent, hub.clock.now())
    await add_staff(hub, "bob", Role.auditor)
    assert (await sign_in(browser, "bob", PASSWORD)).status_code == 303


async def test_queue_masks_personal_data_in_subjects(
    alice: httpx.AsyncClient, make_ticket: MakeTicket
) -> None:
    await make_ticket("我要投诉，我的手机13812345678被停机")
    page = await alice.get("/console/", params={"view": "unassigned"})
    assert "138****5678" in page.text and "13812345678" not in page.text


async def test_the_queues_own_refresh_does_not_keep_an_idle_session_alive(
    alice: httpx.AsyncClient, clock: ManualClock
) -> None:
    for _ in range(4):  # 40 minutes of refreshes, nobody at the desk
        clock.advance(timedelta(minutes=10))
        rows = await alice.get("/console/queue/rows", headers={"x-tongdao-poll": "1"})
    assert rows.status_code == 303
    assert (await alice.get("/console/")).status_code == 303


async def test_a_locked_account_answers_a_wrong_password_like_an_unknown_name(
    hub: Hub, browser: httpx.AsyncClient
) -> None:
    await add_staff(hub, "alice", Role.agent)
    for _ in range(5):
        await sign_in(browser, "alice", "guessing-wrong")
    locked_wrong = await sign_in(browser, "alice", "guessing-wrong")
    unknown = await sign_in(browser, "nobody", "guessing-wrong")
    assert "Wrong username or password" in locked_wrong.text
    assert "Wrong username or password" in unknown.text


async def test_a_new_password_signs_every_browser_of_the_account_out(
    hub: Hub, alice: httpx.AsyncClient
) -> None:
    from hub.console.accounts import set_password

    async with hub.sessions() as session, session.begin():
        await set_password(session, "alice", "a brand new password")
    assert (await alice.get("/console/")).status_code == 303


async def test_an_auditor_reads_but_is_refused_every_action(
    hub: Hub, browser: httpx.AsyncClient, make_ticket: MakeTicket
) -> None:
    number = await make_ticket("我要投诉，网点排队太久")
    await add_staff(hub, "audrey", Role.auditor)
    await sign_in(browser, "audrey")
    page = await browser.get(f"/console/tickets/{number}")
    assert page.status_code == 200 and 'data-testid="form-note"' not in page.text
    token = await csrf_token(browser)
    note = await browser.post(
        f"/console/tickets/{number}/note", data={"text": "auditor", "csrf_token": token}
    )
    assert note.status_code == 403


async def test_an_agent_asking_for_all_tickets_gets_their_own(
    hub: Hub, alice: httpx.AsyncClient, make_ticket: MakeTicket
) -> None:
    number = await make_ticket("咨询一下，外币兑换")
    page = await alice.get("/console/", params={"view": "all"})
    assert number not in page.text
    assert 'aria-current="page" data-testid="view-mine"' in page.text


async def test_a_blank_reply_is_refused_with_a_page_naming_the_field(
    alice: httpx.AsyncClient, make_ticket: MakeTicket
) -> None:
    number = await make_ticket("咨询一下，信用卡还款日")
    token = await csrf_token(alice)
    blank = await alice.post(
        f"/console/tickets/{number}/reply", data={"text": "   ", "csrf_token": token}
    )
    assert blank.status_code == 422
    assert "text" in blank.text and blank.headers["content-type"].startswith("text/html")


async def test_a_flood_of_sign_ins_from_one_address_is_slowed(
    hub: Hub, browser: httpx.AsyncClient
) -> None:
    answers = [(await sign_in(browser, f"guess{i}", "x" * 12)).status_code for i in range(31)]
    assert answers[:30] == [401] * 30
    assert answers[30] == 429


REGULATOR_TEMPLATE = [
    RuleSettings(policy="cn-nfra-order-3", kinds=["complaint"]),
    RuleSettings(policy="cn-service-24-48-72"),
]
"""App complaints on the regulator's template, whose second extension needs approval."""


@pytest.mark.parametrize("sla_rules", [REGULATOR_TEMPLATE])
async def test_an_agents_extension_needing_approval_waits_for_a_supervisor_who_grants_it(
    hub: Hub,
    alice: httpx.AsyncClient,
    base_url: str,
    make_ticket: MakeTicket,
) -> None:
    number = await make_ticket("我要投诉，理财产品收益和宣传不一致")
    token = await csrf_token(alice)
    extend = f"/console/tickets/{number}/extension"
    first = await alice.post(extend, data={"reason": "需调取录像", "csrf_token": token})
    assert first.headers["location"].endswith("done=extension_granted#actions")
    second = await alice.post(extend, data={"reason": "案情复杂，仍需时间", "csrf_token": token})
    assert second.headers["location"].endswith("done=extension_requested#actions")

    await add_staff(hub, "sue", Role.supervisor)
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as supervisor:
        await sign_in(supervisor, "sue")
        waiting = await supervisor.get("/console/review")
        assert f'data-testid="extension-{number}"' in waiting.text
        assert "案情复杂，仍需时间" in waiting.text
        page = await supervisor.get(f"/console/tickets/{number}")
        assert 'data-testid="extension-request"' in page.text
        token = await csrf_token(supervisor)
        granted = await supervisor.post(
            extend, data={"reason": "案情复杂，仍需时间", "csrf_token": token}
        )
        assert granted.headers["location"].endswith("done=extension_granted#actions")
        after = await supervisor.get("/console/review")
    assert f'data-testid="extension-{number}"' not in after.text
