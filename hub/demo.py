"""``make run``: the hub on SQLite with the app channel, a stand-in app backend, demo traffic.

Everything goes through the real paths: pushes are signed and sent over HTTP to the app
channel, the pipeline makes tickets, and acknowledgements travel the outbox to the stand-in.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import string
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from rich.console import Console
from sqlmodel.ext.asyncio.session import AsyncSession

from hub import logs
from hub.auth import Role, create_key
from hub.console.accounts import AccountError, create_account, set_password
from hub.sdk import generate_secret, signed_headers
from hub.settings import Settings
from hub.testing import SignedWebhookReceiver
from hub.testing.standins.antifraud import AntifraudStandIn, demo_rules
from hub.testing.standins.crm import CrmStandIn, demo_directory
from hub.testing.standins.regulator import RegulatorStandIn
from hub.testing.standins.scriptable import ScriptableStandIn
from hub.testing.standins.sms_gateway import SmsGatewayStandIn
from hub.testing.standins.wechat_api import WeChatApiStandIn
from hub.testing.standins.wechat_push import WeChatPusher
from ticket_core import SystemClock

DEMO_CONFIG = Path("var/demo.toml")
CALLBACK_PORT = 8001
REGULATOR_PORT = 8002
WECHAT_API_PORT = 8003
CRM_PORT = 8004
ANTIFRAUD_PORT = 8005
SMS_PORT = 8006
REGULATOR_BRANCH = "国家金融监督管理总局北京监管局"

_TRAFFIC = [
    {
        "user_id": "u-1001",
        "name": "张三",
        "phone": "13812345678",
        "text": "我要投诉：信用卡被重复扣费两次共 1,280 元，客服电话一直打不通，请尽快退款。",
    },
    {
        "user_id": "u-1003",
        "name": "Alice Smith",
        "text": "Hello, what documents do I need to open a savings account as a foreign resident?",
    },
    {
        "user_id": "u-1002",
        "name": "李四",
        "text": "建议手机银行增加大字版模式，方便老年人使用。",
    },
]


def _write_demo_config(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# Written by `tongdao demo` (make run). Safe to edit; delete it to start afresh.\n"
        "[database]\n"
        'url = "sqlite+aiosqlite:///./var/tongdao.db"\n\n'
        "[worker]\npoll_interval = 0.2\n\n"
        "# Webhook receivers on this machine are allowed for trying things out.\n"
        "[webhooks]\nallow_private_targets = true\n\n"
        "[connectors.app]\n"
        f'secret = "{generate_secret()}"\n'
        f'callback_url = "http://127.0.0.1:{CALLBACK_PORT}/callback"\n\n'
        "# 12378 transfers from one regulator branch; its feedback endpoint is a stand-in.\n"
        "[connectors.hotline12378.branches.beijing]\n"
        f'name = "{REGULATOR_BRANCH}"\n'
        'aliases = ["北京监管局"]\n'
        f'secret = "{generate_secret()}"\n'
        f'feedback_url = "http://127.0.0.1:{REGULATOR_PORT}/feedback"\n\n'
        "# A WeChat Official Account in safe (AES) mode; the WeChat API is a local stand-in.\n"
        "[connectors.wechat]\n"
        f'api_base_url = "http://127.0.0.1:{WECHAT_API_PORT}"\n\n'
        "[connectors.wechat.accounts.retail]\n"
        f'token = "{secrets.token_hex(16)}"\n'
        f'encoding_aes_key = "{_aes_key()}"\n'
        'app_id = "wxdemo0000000001"\n'
        f'app_secret = "{secrets.token_hex(16)}"\n'
        'mode = "safe"\n\n'
        "# Customer context after the ack: a CRM and an anti-fraud service (local stand-ins).\n"
        "[connectors.crm]\n"
        f'base_url = "http://127.0.0.1:{CRM_PORT}"\n'
        f'secret = "{generate_secret()}"\n\n'
        "[connectors.antifraud]\n"
        f'base_url = "http://127.0.0.1:{ANTIFRAUD_PORT}"\n'
        f'secret = "{generate_secret()}"\n\n'
        "# The public complaint form at /web/; its one-time codes go to an SMS stand-in, which\n"
        "# prints them in this terminal. Plain HTTP on loopback, so no Secure cookies.\n"
        "[connectors.web]\n"
        f'sms_gateway_url = "http://127.0.0.1:{SMS_PORT}"\n'
        f'sms_api_key = "{secrets.token_hex(16)}"\n'
        "secure_cookies = false\n",
        encoding="utf-8",
    )
    path.chmod(0o600)


def _aes_key() -> str:
    """An EncodingAESKey as WeChat's console makes one: 43 letters and digits."""
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(43))


def prepare_config() -> None:
    """Use ``TONGDAO_CONFIG`` when set; otherwise write (once) and use ``var/demo.toml``."""
    if not os.environ.get("TONGDAO_CONFIG"):
        if not DEMO_CONFIG.exists():
            _write_demo_config(DEMO_CONFIG)
        os.environ["TONGDAO_CONFIG"] = str(DEMO_CONFIG)


async def run_demo(port: int, messages: int, console: Console) -> None:
    settings = Settings()
    logs.configure("WARNING", settings.log.json_format)
    app_config = settings.connectors.get("app")
    if not app_config or not app_config.get("secret"):
        console.print("[red]the demo needs [connectors.app] with a secret in its config[/red]")
        return
    secret = app_config["secret"]

    receiver = SignedWebhookReceiver(secret=secret)
    await receiver.start(port=CALLBACK_PORT)
    branch = settings.connectors.get("hotline12378", {}).get("branches", {}).get("beijing", {})
    regulator = RegulatorStandIn(secrets=[branch["secret"]]) if branch.get("secret") else None
    if regulator is not None:
        await regulator.start(port=REGULATOR_PORT)
    peers = await _context_stand_ins(settings.connectors)
    web_channel = settings.connectors.get("web", {})
    sms = None
    if web_channel.get("sms_gateway_url"):
        sms = SmsGatewayStandIn(
            api_key=web_channel.get("sms_api_key", ""),
            on_message=lambda m: console.print(f"[cyan]SMS to {m['to']}:[/cyan] {m['text']}"),
        )
        await sms.start(port=SMS_PORT)
    wechat = settings.connectors.get("wechat", {})
    account = wechat.get("accounts", {}).get("retail")
    wechat_api = None
    if account:
        wechat_api = WeChatApiStandIn(accounts={account["app_id"]: account["app_secret"]})
        await wechat_api.start(port=WECHAT_API_PORT)

    from hub.app import create_app

    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host=settings.server.host, port=port, log_level="warning", access_log=False
        )
    )
    serving = asyncio.create_task(server.serve())

    async def show() -> None:
        """The demo's traffic and what it made, once the hub answers."""
        base = f"http://{settings.server.host}:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            for _ in range(100):
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if serving.done():
                    await serving
                    return
                await asyncio.sleep(0.1)
            hub = app.state.hub
            async with hub.sessions() as session, session.begin():
                key = await create_key(session, "demo", Role.admin, SystemClock().now())
                staff = await _console_accounts(session)
            console.rule("Tongdao demo")
            console.print(f"Hub at [bold]{base}[/bold]  (API docs: {base}/docs)")
            receipts = []
            for item in _TRAFFIC[:messages]:
                body = json.dumps(item, ensure_ascii=False).encode()
                headers = signed_headers(
                    secret, f"demo-{uuid.uuid4().hex}", body, SystemClock().now()
                )
                response = await client.post(
                    "/channels/app/messages",
                    content=body,
                    headers={**headers, "content-type": "application/json"},
                )
                console.print(
                    f"pushed through the app channel: {response.status_code} {response.text}"
                )
                receipts.append(response.json()["receipt"])
            if account:
                pusher = WeChatPusher(
                    account["token"], account["app_id"], account["encoding_aes_key"]
                )
                message = pusher.text(
                    "o-demo-openid-0001",
                    "你好，我的借记卡昨天在ATM取款没出钞但扣了钱，怎么办？",
                    int(SystemClock().now().timestamp()),
                    SystemClock().now(),
                )
                response = await pusher.push(
                    client, "/channels/wechat/retail", message, "safe", SystemClock().now()
                )
                console.print(f"WeChat push (safe mode): {response.status_code} {response.text}")
            if regulator is not None:
                response = await _push_transfer(client, branch["secret"])
                console.print(f"12378 transfer pushed: {response.status_code} {response.text}")
                receipts.append(response.json()["receipt"])
            auth = {"authorization": f"Bearer {key}"}
            numbers = []
            for receipt in receipts:
                for _ in range(100):
                    state = (await client.get(f"/api/v1/receipts/{receipt}", headers=auth)).json()
                    if state["status"] != "pending":
                        break
                    await asyncio.sleep(0.1)
                numbers.append(state.get("ticket_number"))
            if account:
                for _ in range(100):
                    page = (
                        await client.get(
                            "/api/v1/tickets", params={"channel": "wechat"}, headers=auth
                        )
                    ).json()
                    if page["items"]:
                        numbers.extend(item["number"] for item in page["items"])
                        break
                    await asyncio.sleep(0.1)
            for number in filter(None, numbers):
                ticket = (await client.get(f"/api/v1/tickets/{number}", headers=auth)).json()
                console.print(
                    f"ticket [bold]{number}[/bold]: {ticket['kind']}, {ticket['status']}, "
                    f"{ticket['channel']}, queue {ticket['queue'] or '-'}, "
                    f"policy {ticket['sla']['policy']}, due {ticket['sla']['resolution_due_at']}, "
                    f"customer {ticket['customer']['display_name']} "
                    f"{ticket['customer']['tags'] or ''}"
                )
            for _ in range(50):
                if len(receiver.received) >= len(numbers):
                    break
                await asyncio.sleep(0.1)
            for callback in receiver.received:
                console.print(
                    f"stand-in app backend got: {callback['ticket_number']} "
                    f"{callback['purpose']}: {callback['text'].splitlines()[0]}"
                )
            for _ in range(50):
                if wechat_api is None or wechat_api.sent:
                    break
                await asyncio.sleep(0.1)
            for sent in wechat_api.sent if wechat_api is not None else []:
                text = str(sent.payload.get("text", {}).get("content", sent.payload))
                console.print(
                    f"stand-in WeChat API got a {sent.kind} message: {text.splitlines()[0]}"
                )
        console.rule()
        console.print(f"Agent console: [bold]{base}/console/[/bold]  (passwords shown once)")
        for username, password in staff.items():
            console.print(f"  {username:<10} {password}")
        console.print(f"Admin API key (shown once): [bold]{key}[/bold]")
        console.print(f"Try: curl -H 'Authorization: Bearer {key}' {base}/api/v1/tickets")
        if sms is not None:
            console.print(
                f"Complaint form: {base}/web/  (its SMS codes are printed here); "
                f"progress page: {base}/progress"
            )
        console.print("Ctrl-C to stop.")

    shown = asyncio.create_task(show())
    try:
        await asyncio.wait({shown, serving}, return_when=asyncio.FIRST_COMPLETED)
        if server.should_exit or serving.done():
            # Ctrl-C or SIGTERM: the server stops taking connections at once, so the demo's
            # requests may fail on the way (with any error); that is the stop, not a fault.
            shown.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await shown
            if shown.cancelled() or shown.exception() is not None:
                console.print("stopped before the demo was through")
        else:
            await shown  # a failure of the demo itself is shown
        await serving
    finally:
        await receiver.stop()
        if regulator is not None:
            await regulator.stop()
        if wechat_api is not None:
            await wechat_api.stop()
        for peer in peers:
            await peer.stop()
        if sms is not None:
            await sms.stop()


async def _console_accounts(session: AsyncSession) -> dict[str, str]:
    """One console account per role, with fresh random passwords on every run."""
    made: dict[str, str] = {}
    for role in (Role.agent, Role.supervisor, Role.auditor, Role.admin):
        username = f"demo-{role.value}"
        password = "-".join(secrets.token_hex(3) for _ in range(4))
        try:
            await create_account(
                session, username, password, role, SystemClock().now(), language="zh-CN"
            )
        except AccountError:
            await set_password(session, username, password)
        made[username] = password
    return made


async def _context_stand_ins(connectors: dict[str, Any]) -> list[ScriptableStandIn]:
    """The CRM knows the demo's app users (a VIP, an elderly and a foreign customer); the
    anti-fraud service flags refund demands that threaten the media."""
    peers: list[ScriptableStandIn] = []
    crm, antifraud = connectors.get("crm"), connectors.get("antifraud")
    if crm and crm.get("secret"):
        directory = CrmStandIn(secret=crm["secret"])
        demo_directory(directory)
        await directory.start(port=CRM_PORT)
        peers.append(directory)
    if antifraud and antifraud.get("secret"):
        scorer = AntifraudStandIn(secret=antifraud["secret"])
        demo_rules(scorer)
        await scorer.start(port=ANTIFRAUD_PORT)
        peers.append(scorer)
    return peers


async def _push_transfer(client: httpx.AsyncClient, secret: str) -> httpx.Response:
    """One 12378 transfer, as the regulator's platform would push it (signed)."""
    now = SystemClock().now()
    body = json.dumps(
        {
            "transfer_id": f"BJ12378-DEMO-{uuid.uuid4().hex[:8]}",
            "transfer_type": "assign",
            "regulator_branch": REGULATOR_BRANCH,
            "received_at": (now - timedelta(hours=20)).isoformat(),
            "transferred_at": (now - timedelta(hours=3)).isoformat(),
            "complainant": {"name": "王秀英", "phone": "13912345678", "tags": ["elderly"]},
            "institution": {"code": "B0001H111000001", "name": "某银行北京分行朝阳支行"},
            "category": {"channel": "A01", "business": "B0203", "cause": "C0101"},
            "summary": "投诉人反映在网点购买理财产品时，销售人员未充分揭示风险。",
            "demands": "要求退还本金并赔礼道歉。",
        },
        ensure_ascii=False,
    ).encode()
    headers = signed_headers(secret, f"demo-{uuid.uuid4().hex}", body, now)
    return await client.post(
        "/channels/hotline12378/transfers",
        content=body,
        headers={**headers, "content-type": "application/json"},
    )
