"""``tongdao import tickets`` as an operator runs it: a real process, killed with SIGKILL in the
middle of a large file, then the same command again, which goes on and ends with exactly the
file's tickets, whose audit trail verifies."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.ticket_import import write_file

pytestmark = pytest.mark.slow

TICKETS = 8_000
BATCH = 200


def environment(tmp_path: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("TONGDAO_")},
        "TONGDAO_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path}/import.db",
        "TONGDAO_LOG__LEVEL": "WARNING",
        "COLUMNS": "200",
    }


def tongdao(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", *args],
        cwd=tmp_path,
        env=environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def migrate(tmp_path: Path) -> None:
    """In this process: the command's own ``migrate`` is tested elsewhere."""
    import asyncio

    from hub.settings import DatabaseSettings
    from hub.store import create_engine, upgrade

    async def run() -> None:
        engine = create_engine(DatabaseSettings(url=environment(tmp_path)["TONGDAO_DATABASE__URL"]))
        await upgrade(engine)
        await engine.dispose()

    asyncio.run(run())


def committed(database: Path) -> int:
    try:
        with sqlite3.connect(database, timeout=5) as conn:
            row = conn.execute("SELECT max(loaded) FROM ticket_import_run").fetchone()
    except sqlite3.OperationalError:
        return 0
    return row[0] or 0


def test_an_import_killed_mid_file_resumes_to_exactly_the_whole_file(tmp_path: Path) -> None:
    migrate(tmp_path)
    path = tmp_path / "history.jsonl"
    write_file(path, TICKETS)
    command = ["import", "tickets", str(path), "--source", "legacy", "--batch-size", str(BATCH)]
    child = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", *command],
        cwd=tmp_path,
        env=environment(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while committed(tmp_path / "import.db") < 3 * BATCH and time.monotonic() < deadline:
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    partial = committed(tmp_path / "import.db")
    assert 0 < partial < TICKETS, "the kill should land in the middle of the file"

    resumed = tongdao(tmp_path, *command, "--no-progress")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resumed at line" in resumed.stdout
    assert f"{TICKETS} ticket(s): loaded {TICKETS}" in resumed.stdout
    with sqlite3.connect(tmp_path / "import.db") as conn:
        tickets, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT source_id) FROM ticket"
        ).fetchone()
        messages = conn.execute("SELECT count(*) FROM message").fetchone()[0]
    assert tickets == distinct == TICKETS
    assert messages == 2 * TICKETS

    verified = tongdao(tmp_path, "audit", "verify")
    assert verified.returncode == 0, verified.stdout
    assert f"checked {TICKETS} tickets" in verified.stdout


def test_rejected_tickets_exit_1_and_name_the_reject_file(tmp_path: Path) -> None:
    migrate(tmp_path)
    path = tmp_path / "few.jsonl"
    path.write_text(
        '{"source_id": "1", "kind": "complaint", "channel": "app", "created_at": "2025-01-01",'
        ' "customer_phone": "13800001111", "messages": [{"text": "hi"}]}\n'
        "not json\n",
        encoding="utf-8",
    )
    refused = tongdao(tmp_path, "import", "tickets", str(path))
    assert refused.returncode == 2 and "--source" in refused.stdout
    done = tongdao(tmp_path, "import", "tickets", str(path), "--source", "old")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "2 ticket(s): loaded 1" in done.stdout and "few.rejects.jsonl" in done.stdout
    assert "not valid JSON" in (tmp_path / "few.rejects.jsonl").read_text(encoding="utf-8")
