"""``tongdao serve --processes N``: several HTTP processes on one port (PostgreSQL), a killed
one replaced while the others keep acknowledging, and SQLite refused with the reason."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Collection
from pathlib import Path

import pytest

from bench.common import serving_children
from bench.drills.crash import (
    Database,
    Processes,
    app_backend,
    assert_each_acked_push_is_one_ticket_message,
    assert_each_ticket_acknowledged_to_the_app,
    hub_env,
    push_all,
    settle,
    wait_ready,
)
from hub.testing import free_port
from tests.tongdao_cli import run

pytestmark = pytest.mark.slow


async def _until_serving(parent: int, count: int, other_than: Collection[int] = ()) -> list[int]:
    deadline = time.monotonic() + 60
    while True:
        children = serving_children(parent)
        if len(children) == count and not set(children).intersection(other_than):
            return children
        assert time.monotonic() < deadline, f"serving processes: {children}"
        await asyncio.sleep(0.1)


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_two_serve_processes_share_the_port_and_a_killed_one_is_replaced(
    database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    msg_ids = [f"msg_processes-{i}" for i in range(60)]
    async with app_backend() as receiver:
        processes = Processes(
            tmp_path, hub_env(database_url, receiver.url, in_process=False, lease=6)
        )
        db = Database(database_url)
        try:
            serve = await processes.start("serve", "serve", "--port", str(port), "--processes", "2")
            await wait_ready(serve, base_url)
            await processes.worker("worker")
            first = await _until_serving(serve.process.pid, 2)
            load = await push_all(base_url, msg_ids[:30])
            os.kill(first[0], signal.SIGKILL)
            # The survivor answers meanwhile; what the dead one held fails and is pushed again.
            await push_all(base_url, msg_ids[30:], load=load)
            await _until_serving(serve.process.pid, 2, other_than={first[0]})
            await push_all(base_url, sorted(set(load.failed) - set(load.acked)), load=load)
            acked = set(load.acked)
            assert acked == set(msg_ids), sorted(set(msg_ids) - acked)[:5]
            snap = await settle(db, receiver, acked, processes, within=120)
            assert_each_acked_push_is_one_ticket_message(snap, acked)
            assert_each_ticket_acknowledged_to_the_app(snap, receiver)
        finally:
            await processes.stop_all()
            await db.close()


def test_several_serve_processes_on_sqlite_are_refused_naming_why(tmp_path: Path) -> None:
    result = run(tmp_path, "serve", "--processes", "2", "--port", str(free_port()))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "2 serve processes need PostgreSQL" in result.stdout
