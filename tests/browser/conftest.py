"""What the browser tests share: a real `postvoice serve` on loopback and Debian's Chromium,
headless, driven by Playwright's sync API.

Playwright's sync API marks its own event loop as running in the thread that started it for as
long as it lives. So browser tests are plain (non-async) functions, nothing in them may call
`asyncio.run`, and the browser lives only as long as this package's tests: the async tests
elsewhere in the suite get their thread back.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.bench_server import postvoice_command
from harness.target import free_port

ROOT = Path(__file__).parents[2]
SCREENSHOTS = ROOT / "out" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT_S = 180  # the speech models load and warm before /healthz answers
PAGE_TIMEOUT_MS = 20_000


@dataclass
class LiveServer:
    """A `postvoice serve --dev` subprocess with its own database and admin token."""

    base: str
    ws_url: str
    admin_token: str
    env: dict[str, str]
    tmp: Path
    log_path: Path

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run `postvoice <args>` against this server's database and secrets."""
        return subprocess.run(
            [*postvoice_command(), *args],
            env={**self.env, "COLUMNS": "200"},
            cwd=self.tmp,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def api(self, path: str, **params: Any) -> Any:
        """GET a JSON route with the admin token as a Bearer header."""
        answer = httpx.get(
            self.base + path,
            params=params,
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=10,
        )
        answer.raise_for_status()
        return answer.json()

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's log (stdout and stderr)."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError as exc:
            return f"(no server log: {exc})"


def _clean_environment() -> dict[str, str]:
    """The caller's environment without any POSTVOICE_ setting, so a developer's shell or
    `.env` cannot point the test server at a real shop."""
    return {k: v for k, v in os.environ.items() if not k.startswith("POSTVOICE_")}


@pytest.fixture(scope="package")
def live_server(tmp_path_factory) -> Iterator[LiveServer]:
    """The demo shop seeded into a fresh SQLite database, served on a free loopback port with
    the outbox worker in process; stopped (terminate, then kill) after the browser tests."""
    tmp = tmp_path_factory.mktemp("browser-server")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **_clean_environment(),
        "POSTVOICE_DATABASE_URL": f"sqlite:///{tmp}/postvoice.db",
        "POSTVOICE_ADMIN_TOKEN": secrets.token_urlsafe(24),
        "POSTVOICE_ALLOW_INJECTION": "true",
        "POSTVOICE_WORKER_IN_PROCESS": "true",
        "POSTVOICE_WORKER_POLL_S": "0.2",
        "POSTVOICE_PUBLIC_URL": base,
    }
    server = LiveServer(
        base=base,
        ws_url=f"ws://127.0.0.1:{port}/twilio/media",
        admin_token=env["POSTVOICE_ADMIN_TOKEN"],
        env=env,
        tmp=tmp,
        log_path=tmp / "server.log",
    )
    seeded = server.run("seed", timeout=120)
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    log = open(server.log_path, "w")  # noqa: SIM115 - open for the server's whole life
    proc = subprocess.Popen(
        [*postvoice_command(), "serve", "--dev", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=tmp,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"postvoice serve did not become healthy (exit code {proc.poll()}):\n"
                    + server.log_tail()
                )
            time.sleep(0.3)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test that used the live server shows the end of the server's log."""
    outcome = yield
    report = outcome.get_result()
    server = getattr(item, "funcargs", {}).get("live_server")
    if report.failed and isinstance(server, LiveServer):
        report.sections.append(("postvoice serve log (tail)", server.log_tail()))


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless (no browser download: the Makefile's test-deps installs it)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (make test-deps)")
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()


@pytest.fixture
def context(browser, live_server) -> Iterator[Any]:
    """A fresh browser profile (no cookies) per test, with the server as base URL."""
    ctx = browser.new_context(base_url=live_server.base, viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context) -> Any:
    """A new tab in the test's fresh profile."""
    return context.new_page()


def log_in(page: Any, token: str, path: str = "/dashboard/calls") -> None:
    """Open `path`, get sent to the login form, and log in with `token` through it."""
    page.goto(path)
    page.wait_for_url("**/login?next=*")
    page.fill("input[name=token]", token)
    page.click("form[action='/login'] button[type=submit]")


@pytest.fixture
def admin_page(page, live_server) -> Any:
    """A tab logged in to the dashboard through the login form."""
    log_in(page, live_server.admin_token)
    page.wait_for_url("**/dashboard/calls")
    return page


@pytest.fixture
def screenshot() -> Callable[[Any, str], Path]:
    """`screenshot(page, "calls")` saves a full-page PNG to out/screenshots/calls.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page: Any, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
