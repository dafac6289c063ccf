"""The page's shell (title, header, the loading state) paints at once, whatever the chain's reads cost: a user (or
`chromium --headless --screenshot`) sees the dashboard start, not a blank page until the history is read (issue
17). The chain here is a port that accepts connections and never answers, the slowest chain there is."""

from __future__ import annotations

import socket

from efedllm.dashboard.app import DashboardConfig
from tests.browser.pages import LAPTOP, dashboard_thread

SHELL_WITHIN_MS = 2_000


def test_the_shell_paints_before_any_chain_read_finishes(browser, dist, tmp_path):
    with socket.socket() as silent:  # listens, never accepts: every RPC call hangs until the relay's timeout
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        rpc_url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        config = DashboardConfig(rpc_url=rpc_url, dist=dist, deployments_dir=tmp_path, rpc_timeout_s=3)
        with dashboard_thread(config) as url:
            context = browser.new_context(viewport=LAPTOP)
            try:
                page = context.new_page()
                page.goto(url, wait_until="commit")
                page.wait_for_function(
                    "performance.getEntriesByType('paint').some(e => e.name === 'first-contentful-paint')",
                    timeout=SHELL_WITHIN_MS,
                    polling=20,
                )
                painted = page.evaluate(
                    "performance.getEntriesByType('paint').find(e => e.name === 'first-contentful-paint').startTime"
                )
                assert painted < SHELL_WITHIN_MS
                assert page.title() == "eFedLLM dashboard"
                assert page.locator("header.topbar .brand").is_visible()
                assert "Connecting to the chain" in page.inner_text("#view")
                assert page.evaluate("efedDashboard.state") == "connecting"  # no chain read has finished
            finally:
                context.close()
