"""Pushes acknowledged durably: signed app pushes and WeChat safe-mode pushes, replayed by wrk.

Every request is prepared before the clock starts (signed; for WeChat also AES-encrypted by
``hub.testing.standins.wechat_push``, as WeChat's servers do), so wrk spends its time on HTTP.
Each push is distinct (its own ``webhook-id`` / ``MsgId``), so each is a new envelope committed
before its 2xx; wrk only wraps round to repeats if a run outlasts the prepared file.
"""

from __future__ import annotations

import argparse
import json
import secrets
import string
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

from bench.common import (
    Receiver,
    child_env,
    database_url,
    hub_env,
    load,
    migrate,
    running_hub,
    write_records,
    wrk,
    wrk_ceiling,
)
from hub.sdk import generate_secret, signed_headers
from hub.testing import free_port
from hub.testing.standins.wechat_push import WeChatPusher

TEXT = "我的信用卡被重复扣费，请退款。"
# Prepared requests per second of run: well above what the hub acknowledges, so no repeats.
PER_SECOND = 8000


def app_records(secret: str, count: int) -> list[tuple[str, dict[str, str], bytes]]:
    now = datetime.now(UTC)
    records = []
    for i in range(count):
        body = json.dumps({"user_id": f"bench-{i % 500}", "text": TEXT}, ensure_ascii=False)
        headers = signed_headers(secret, f"bench_{uuid.uuid4().hex}", body.encode(), now)
        headers["content-type"] = "application/json"
        records.append(("/channels/app/messages", headers, body.encode()))
    return records


WECHAT_ACCOUNT = "bench"


def wechat_config(api_url: str) -> tuple[WeChatPusher, dict[str, str]]:
    # An EncodingAESKey as WeChat's console makes one: 43 letters and digits.
    aes_key = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(43))
    token, app_id = "benchtoken123", "wxbench0000000001"
    pusher = WeChatPusher(token, app_id, aes_key, original_id="gh_bench00000001")
    prefix = f"TONGDAO_CONNECTORS__WECHAT__ACCOUNTS__{WECHAT_ACCOUNT.upper()}__"
    env = {
        "TONGDAO_CONNECTORS__WECHAT__API_BASE_URL": api_url,
        prefix + "TOKEN": token,
        prefix + "ENCODING_AES_KEY": aes_key,
        prefix + "APP_ID": app_id,
        prefix + "APP_SECRET": "benchsecret",
        prefix + "MODE": "safe",
        prefix + "ORIGINAL_ID": pusher.original_id,
    }
    return pusher, env


def wechat_records(pusher: WeChatPusher, count: int) -> list[tuple[str, dict[str, str], bytes]]:
    """Safe-mode text pushes, each from its own customer (openid) with its own MsgId."""
    now = datetime.now(UTC)
    records = []
    for i in range(count):
        openid = f"o{uuid.uuid4().hex[:27]}"
        message = pusher.text(openid, TEXT, 10_000_000 + i, now)
        signed = pusher.sign(message, "safe", now)
        target = f"/channels/wechat/{WECHAT_ACCOUNT}?{urlencode(signed.params)}"
        records.append((target, {"content-type": "text/xml"}, signed.body))
    return records


def scenario_app_ack(db: str, args: argparse.Namespace, workdir: Path) -> None:
    # The app's backend is a local receiver: the acknowledgements the workers send after the
    # ack reach it, as they would in production.
    receiver = Receiver(workdir)
    try:
        secret = generate_secret()
        extra = {
            "TONGDAO_CONNECTORS__APP__SECRET": secret,
            "TONGDAO_CONNECTORS__APP__CALLBACK_URL": f"{receiver.url}/app/callback",
            **args.hub_env,
        }
        env = hub_env(database_url(db, workdir), extra)
        migrate(env, workdir)
        records = workdir / "app.tsv"
        write_records(records, app_records(secret, int(args.seconds * PER_SECOND)))
        _run(db, "signed app pushes acknowledged", env, workdir, records, args)
    finally:
        receiver.stop()


def scenario_wechat_ack(db: str, args: argparse.Namespace, workdir: Path) -> None:
    # WeChat's API is the stand-in, in its own process: the acknowledgements the workers send
    # after the ack reach it (the push path itself never calls it).
    port = free_port()
    api = subprocess.Popen(
        [sys.executable, "-m", "hub.testing.standins.wechat_api", "--port", str(port)],
        env=child_env(),
        stdout=subprocess.DEVNULL,
    )
    try:
        pusher, extra = wechat_config(f"http://127.0.0.1:{port}")
        env = hub_env(database_url(db, workdir), {**extra, **args.hub_env})
        migrate(env, workdir)
        records = workdir / "wechat.tsv"
        write_records(records, wechat_records(pusher, int(args.seconds * PER_SECOND)))
        _run(db, "WeChat safe-mode pushes acknowledged", env, workdir, records, args)
    finally:
        api.terminate()
        api.wait(timeout=10)


def _run(
    db: str,
    label: str,
    env: dict[str, str],
    workdir: Path,
    records: Path,
    args: argparse.Namespace,
) -> None:
    with running_hub(db, env, workdir, serve_args=args.serve_args) as hub:
        shape = {"threads": args.threads, "connections": args.connections}
        ceiling = wrk_ceiling(hub.base, seconds=min(args.seconds, 5), **shape)
        print(f"[{db}] wrk GET /healthz (generator ceiling): {ceiling:,.0f}/s ({load()})")
        before, started = hub.cpu(), time.perf_counter()
        if args.profile:
            from bench.profile import recording

            with recording(hub.serve_pid, workdir, f"{db}-{label.split()[0].lower()}"):
                result = wrk(hub.base, records, seconds=args.seconds, **shape)
        else:
            result = wrk(hub.base, records, seconds=args.seconds, **shape)
        cpu = hub.cpu_row(before, time.perf_counter() - started)
        print(f"[{db}] wrk {label}: {result.row()} ({load()})")
        print(f"[{db}] {cpu}")
        print(f"[{db}] {hub.memory()}")
