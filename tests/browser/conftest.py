"""Browser tests: a real Chromium (Debian's package, no Playwright download) driving the hub's
pages over loopback.

Playwright's sync API runs in one dedicated thread for the whole session (one browser per
session; its objects belong to the thread that made them), while each test's hub, stand-ins
and uvicorn server run in the test's event loop. A test hands a scenario to that thread with
``BrowserThread.run``; the scenario calls back into the loop (``Loop.call``) to drain the
workers, move the clock or read what a stand-in received.

Without Chromium (or the playwright package) the tests skip and say how to install them;
with ``TONGDAO_TEST_REQUIRE_CHROMIUM=1`` (as ``.ci/run`` sets) they fail instead.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

REQUIRE_CHROMIUM = os.environ.get("TONGDAO_TEST_REQUIRE_CHROMIUM") == "1"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
T = TypeVar("T")


@pytest.fixture(params=["sqlite"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Browser tests are about the pages: SQLite only (the e2e tests cover PostgreSQL)."""
    from hub.settings import DatabaseSettings
    from hub.store import create_engine, upgrade

    url = f"sqlite+aiosqlite:///{tmp_path}/tongdao.db"
    engine = create_engine(DatabaseSettings(url=url))
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    return url


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where screenshots go: docs/screenshots/ with TONGDAO_UPDATE_SCREENSHOTS=1, else away."""
    if os.environ.get("TONGDAO_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return SCREENSHOTS
    return tmp_path


class Loop:
    """Runs coroutines in the test's event loop from the browser thread, waiting for each."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def call(self, coroutine: Awaitable[T], timeout: float = 30.0) -> T:
        future = asyncio.run_coroutine_threadsafe(_wrap(coroutine), self._loop)
        return future.result(timeout)


async def _wrap(coroutine: Awaitable[T]) -> T:
    return await coroutine


class BrowserThread:
    def __init__(self, executor: ThreadPoolExecutor, browser: Any) -> None:
        self._executor = executor
        self.browser = browser

    async def run(self, scenario: Callable[[Any, Loop], T]) -> T:
        """Run ``scenario(browser, loop)`` in the browser thread; the event loop keeps
        serving the hub meanwhile."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, scenario, self.browser, Loop(loop))


def _missing(reason: str) -> None:
    message = f"{reason}; install it with: apt-get install chromium && pip install playwright"
    if REQUIRE_CHROMIUM:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def browser_thread() -> Iterator[BrowserThread]:
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        _missing("Chromium is not installed")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed")
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="browser")

    def start() -> tuple[Any, Any]:
        playwright = sync_playwright().start()
        browser = playwright.chromium.launch(
            executable_path=executable, args=["--no-sandbox", "--disable-gpu"]
        )
        return playwright, browser

    try:
        playwright, browser = executor.submit(start).result(60)
    except Exception as exc:
        executor.shutdown()
        _missing(f"Chromium did not start ({type(exc).__name__}: {exc})")
    try:
        yield BrowserThread(executor, browser)
    finally:

        def stop() -> None:
            browser.close()
            playwright.stop()

        executor.submit(stop).result(30)
        executor.shutdown()
