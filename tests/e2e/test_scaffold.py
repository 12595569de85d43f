"""``tongdao connectors new``: the package it writes installs, passes the kit untouched, and a
broken signature check makes the kit fail naming the rule."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def _run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**{k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}, **env}
    return subprocess.run(
        args, cwd=cwd, env=environment, capture_output=True, text=True, timeout=240, check=False
    )


@pytest.fixture(scope="module")
def kiosk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("scaffold")
    made = _run([str(BIN / "tongdao"), "connectors", "new", "kiosk", "--dir", str(root)], root)
    assert made.returncode == 0, made.stdout + made.stderr
    return root / "tongdao-kiosk"


def _install_and_run_kit(package: Path, site: Path) -> subprocess.CompletedProcess[str]:
    installed = _run(
        [
            str(BIN / "pip"),
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--upgrade",
            "--target",
            str(site),
            str(package),
        ],
        package,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return _run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        package,
        PYTHONPATH=str(site),
    )


def test_scaffolded_connector_installs_and_passes_the_kit_untouched(
    kiosk: Path, tmp_path: Path
) -> None:
    result = _install_and_run_kit(kiosk, tmp_path / "site")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "16 passed" in result.stdout


def test_broken_signature_check_fails_the_kit_naming_the_rule(kiosk: Path, tmp_path: Path) -> None:
    broken = tmp_path / "tongdao-kiosk"
    subprocess.run(["cp", "-r", str(kiosk), str(broken)], check=True)
    connector = broken / "tongdao_kiosk" / "connector.py"
    source = connector.read_text()
    check = "msg_id = verify([self.config.secret], request.headers, body, now)"
    assert check in source
    connector.write_text(source.replace(check, 'msg_id = request.headers.get("webhook-id", "")'))
    result = _install_and_run_kit(broken, tmp_path / "site")
    assert result.returncode != 0
    assert (
        "conformance rule broken: a request with a bad signature is refused (401/403) and "
        "nothing is stored: the tampered request was answered 202 and 1 envelope(s) were stored"
    ) in result.stdout


def test_connector_name_is_checked(tmp_path: Path) -> None:
    result = _run(
        [str(BIN / "tongdao"), "connectors", "new", "Bad-Name", "--dir", str(tmp_path)], tmp_path
    )
    assert result.returncode == 2
    assert "not a usable connector name" in result.stdout
