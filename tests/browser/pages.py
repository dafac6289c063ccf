"""What the browser tests do: start the dashboard, open it in a page, and save screenshots.

The main dashboard runs as the real command (`efedllm dashboard`, a subprocess); the error-state tests serve the
same aiohttp app in a thread of the test process, which starts in milliseconds instead of seconds. (A module of
its own, not conftest.py: test modules import it by a name no other suite's conftest shares.)
"""

from __future__ import annotations

import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from efedllm.chain.anvil import free_port
from efedllm.dashboard.app import DashboardConfig, create_app
from tests.support.serving import ServedApp

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
LAPTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
POLL_S = 0.3


@contextmanager
def dashboard_process(rpc_url: str, deployment: Path, *, poll: float = POLL_S):
    """`efedllm dashboard` as a user starts it; yields its base URL."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "efedllm.cli.main",
        "dashboard",
        "--rpc-url",
        rpc_url,
        "--deployment",
        str(deployment),
        "--port",
        str(port),
        "--poll",
        str(poll),
    ]
    process = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        said = []
        while not (said and "dashboard at" in said[-1]):  # it may print a build line first
            said.append(process.stdout.readline())
            assert said[-1], f"dashboard did not start: {''.join(said)}"
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def dashboard_thread(config: DashboardConfig):
    """The dashboard's app served from a thread of this process; yields its base URL."""
    with ServedApp(create_app(config), timeout=10) as served:
        yield served.url + "/"


def open_page(browser, url: str, *, viewport=LAPTOP, state: str = "ready", timeout_ms: int = 30_000):
    """A fresh browser context on `url`, once the dashboard reached `state` (ready or error)."""
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    page.wait_for_function(f"window.efedDashboard && efedDashboard.state === {state!r}", timeout=timeout_ms, polling=50)
    page.js_errors = errors
    return page


def screenshot(page, name: str, *, full_page: bool = True) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
