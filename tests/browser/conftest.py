"""Fixtures of the browser tests: a real Anvil with a protocol history (scenario.py), the dashboard server, and
Debian's Chromium driven by Playwright (no browser is downloaded: tools/setup.sh installs `chromium`).

What the tests do with them (the dashboard as a process or a thread, pages, screenshots) is in pages.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import scenario  # this folder's (pytest puts a conftest's folder on sys.path)

from efedllm.dashboard.bundle import ensure_bundle
from tests.support.chain import *  # noqa: F403 (the shared chain fixtures: anvil, w3)

CHROMIUM = Path(os.environ.get("EFEDLLM_CHROMIUM", "/usr/bin/chromium"))


@pytest.fixture(scope="session")
def dist() -> Path:
    return ensure_bundle(progress=lambda message: None)


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: run tools/setup.sh (it installs Debian's chromium package)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def history(w3, tmp_path_factory):
    """The deployment, its file and the scenario that wrote three epochs of history."""
    deployment = scenario.deploy_protocol(w3)
    played = scenario.run_history(w3, deployment)
    path = deployment.save(tmp_path_factory.mktemp("deployments"))
    return played, path
