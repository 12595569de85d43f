"""``make run``: the hub on SQLite with the app channel, a stand-in app backend, demo traffic.

Everything goes through the real paths: pushes are signed and sent over HTTP to the app
channel, the pipeline makes tickets, and acknowledgements travel the outbox to the stand-in.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path

import httpx
import uvicorn
from rich.console import Console

from hub import logs
from hub.auth import Role, create_key
from hub.sdk import generate_secret, signed_headers
from hub.settings import Settings
from hub.testing import SignedWebhookReceiver
from ticket_core import SystemClock

DEMO_CONFIG = Path("var/demo.toml")
CALLBACK_PORT = 8001

_TRAFFIC = [
    {
        "user_id": "demo-user-1",
        "name": "张三",
        "phone": "13812345678",
        "text": "我要投诉：信用卡被重复扣费两次共 1,280 元，客服电话一直打不通，请尽快退款。",
    },
    {
        "user_id": "demo-user-2",
        "name": "Alice Smith",
        "text": "Hello, what documents do I need to open a savings account as a foreign resident?",
    },
    {
        "user_id": "demo-user-3",
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
        f'callback_url = "http://127.0.0.1:{CALLBACK_PORT}/callback"\n',
        encoding="utf-8",
    )
    path.chmod(0o600)


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

    from hub.app import create_app

    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host=settings.server.host, port=port, log_level="warning", access_log=False
        )
    )
    serving = asyncio.create_task(server.serve())
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
        console.rule("Tongdao demo")
        console.print(f"Hub at [bold]{base}[/bold]  (API docs: {base}/docs)")
        receipts = []
        for item in _TRAFFIC[:messages]:
            body = json.dumps(item, ensure_ascii=False).encode()
            headers = signed_headers(secret, f"demo-{uuid.uuid4().hex}", body, SystemClock().now())
            response = await client.post(
                "/channels/app/messages",
                content=body,
                headers={**headers, "content-type": "application/json"},
            )
            console.print(f"pushed through the app channel: {response.status_code} {response.text}")
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
        for number in filter(None, numbers):
            ticket = (await client.get(f"/api/v1/tickets/{number}", headers=auth)).json()
            console.print(
                f"ticket [bold]{number}[/bold]: {ticket['kind']}, {ticket['status']}, "
                f"customer {ticket['customer']['display_name']}"
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
    console.rule()
    console.print(f"Admin API key (shown once): [bold]{key}[/bold]")
    console.print(f"Try: curl -H 'Authorization: Bearer {key}' {base}/api/v1/tickets")
    console.print("Ctrl-C to stop.")
    try:
        await serving
    finally:
        await receiver.stop()
