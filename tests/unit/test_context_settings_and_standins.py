"""The [context] settings refuse what cannot work; the stand-ins run as their own processes
and speak the contracts in docs/context-providers.md."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import ValidationError

from hub.sdk import ContextRefused, generate_secret, post_signed_json
from hub.settings import Settings
from hub.testing import free_port


def test_segment_policy_is_read_case_insensitively_and_priorities_are_checked() -> None:
    settings = Settings(context={"vip_segments": [" VIP ", "Private"], "vip_tiers": ["Diamond"]})
    assert settings.context.vip_segments == ["private", "vip"]
    assert settings.context.vip_tiers == ["diamond"]
    with pytest.raises(ValidationError, match="vip_priority"):
        Settings(context={"vip_priority": "highest"})
    with pytest.raises(ValidationError, match="fraud_threshold"):
        Settings(context={"fraud_threshold": 1.5})


@pytest.mark.slow
@pytest.mark.parametrize(
    ("module", "path", "payload", "expected"),
    [
        (
            "hub.testing.standins.crm",
            "/customers/lookup",
            {"request_id": "r1", "identities": [{"kind": "app_user", "value": "u-1002"}]},
            {"found": True},
        ),
        (
            "hub.testing.standins.antifraud",
            "/assessments",
            {
                "request_id": "r2",
                "identities": [],
                "message": {"text": "不退款就找媒体曝光", "received_at": "2026-11-24T09:00:00Z"},
            },
            {"risk_score": 0.92},
        ),
    ],
)
async def test_a_stand_in_runs_as_its_own_process_and_answers_signed_requests(
    module: str, path: str, payload: dict[str, object], expected: dict[str, object]
) -> None:
    secret = generate_secret()
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        "--port",
        str(port),
        "--secret",
        secret,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(30):
            banner = (await process.stdout.readline()).decode()  # printed once it listens
        assert f"127.0.0.1:{port}" in banner, banner
        async with httpx.AsyncClient() as http:
            base = f"http://127.0.0.1:{port}"
            assert (await http.get(f"{base}/health")).status_code == 200
            answer = await post_signed_json(
                http,
                base + path,
                payload,
                secret=secret,
                now=datetime.now(UTC),
                timeout=5,
                max_bytes=65536,
            )
            assert expected.items() <= answer.items()
            with pytest.raises(ContextRefused, match="HTTP 401"):
                await post_signed_json(
                    http,
                    base + path,
                    payload,
                    secret=generate_secret(),
                    now=datetime.now(UTC),
                    timeout=5,
                    max_bytes=65536,
                )
    finally:
        process.terminate()
        async with asyncio.timeout(10):
            await process.wait()
