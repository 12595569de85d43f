"""The ``tongdao`` command in a subprocess, as an operator runs it: this venv's executable,
none of the caller's ``TONGDAO_*`` settings, a SQLite database in the test's folder unless
``env`` says otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TONGDAO = str(Path(sys.executable).with_name("tongdao"))


def run(
    tmp_path: Path, *args: str, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TONGDAO_")},
        "TONGDAO_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path}/cli.db",
        "COLUMNS": "200",
        **env,
    }
    return subprocess.run(
        [TONGDAO, *args],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
