"""What the page says when it cannot show a deployment, and that it recovers by itself once the cause is gone:
no chain, no deployment file, a deployment of another chain, contracts missing on the chain, a broken file."""

from __future__ import annotations

import json

import pytest
import scenario

from efedllm.chain.anvil import Anvil, AnvilConfig, free_port
from efedllm.chain.connection import connect
from efedllm.dashboard.app import DashboardConfig
from tests.browser.pages import dashboard_thread, open_page, screenshot

RETRY_WAIT_MS = 20_000  # the page retries every 3 s


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """A chain with the contracts deployed and no history; yields (anvil, deployment file)."""
    with Anvil(AnvilConfig(port=0, accounts=10)) as node:
        path = scenario.deploy_protocol(connect(node.url)).save(tmp_path_factory.mktemp("deployed"))
        yield node, path


def error_of(page) -> dict:
    return page.evaluate("efedDashboard.error")


def wait_for_error(page, kind: str) -> dict:
    page.wait_for_function(
        f"efedDashboard.error && efedDashboard.error.kind === {kind!r}", timeout=RETRY_WAIT_MS, polling=100
    )
    assert page.locator(f'.state[data-state="{kind}"]').is_visible()
    return error_of(page)


def test_no_chain_then_no_deployment_then_live(browser, dist, tmp_path):
    port = free_port()
    config = DashboardConfig(rpc_url=f"http://127.0.0.1:{port}", dist=dist, deployments_dir=tmp_path)
    with dashboard_thread(config) as url:
        page = open_page(browser, url, state="error")
        try:
            error = wait_for_error(page, "no-chain")
            assert f"127.0.0.1:{port}" in error["message"]
            assert page.get_attribute("#chain-chip", "data-state") == "error"
            assert "efedllm chain up" in page.inner_text(".state-hint")
            screenshot(page, "state-no-chain", full_page=False)

            with Anvil(AnvilConfig(port=port, accounts=10)) as node:
                error = wait_for_error(page, "no-deployment")
                assert str(tmp_path / "31337.json") in error["message"]
                w3 = connect(node.url)
                deployment = scenario.deploy_protocol(w3)
                deployment.save(tmp_path)
                page.wait_for_function("efedDashboard.state === 'ready'", timeout=RETRY_WAIT_MS, polling=100)
                assert "No servers registered yet" in page.inner_text("#servers")
                kinds = page.eval_on_selector_all("#recent .ev", "evs => evs.map(e => e.dataset.event)")
                # the constructors' parameters and the verifiers' stakes, nothing else yet
                assert set(kinds) == {"ParameterSet", "VerifierStaked"}
                assert page.locator('[data-chart="scores"][data-empty="true"]').count() == 1
                assert int(page.inner_text('[data-kpi="covered"]')) == 0
                screenshot(page, "overview-empty", full_page=False)

                played = scenario.Scenario(w3, deployment, [w3.to_checksum_address(a) for a in w3.eth.accounts])
                played.register(1, "http://gpu-a.example:8080", 0, 30, 1, scenario.ONE)
                page.wait_for_selector("#servers tbody tr[data-address]", timeout=10_000)
                assert page.locator("#servers tbody tr[data-address]").count() == 1
                assert int(page.inner_text('[data-kpi="covered"]')) == 30

            # the chain went away under a live page: the data stays, a banner says it is stale
            page.wait_for_selector("#banner:not([hidden])", timeout=RETRY_WAIT_MS)
            assert "Lost the connection to the chain" in page.inner_text("#banner")
            assert page.get_attribute("#chain-chip", "data-state") == "stale"
            assert page.locator("#servers tbody tr[data-address]").count() == 1
        finally:
            page.context.close()


def test_wrong_network(browser, dist, deployed):
    _, path = deployed
    with Anvil(AnvilConfig(port=0, accounts=2, chain_id=4242)) as other:
        config = DashboardConfig(rpc_url=other.url, dist=dist, deployment=path)
        with dashboard_thread(config) as url:
            page = open_page(browser, url, state="error")
            try:
                error = wait_for_error(page, "wrong-network")
                assert "chain 31337" in error["message"] and "chain 4242" in error["message"]
                assert page.get_attribute("#chain-chip", "data-state") == "error"
                screenshot(page, "state-wrong-network", full_page=False)
            finally:
                page.context.close()


def test_contracts_missing_on_a_restarted_chain(browser, dist, deployed):
    _, path = deployed
    with Anvil(AnvilConfig(port=0, accounts=2)) as fresh:
        with dashboard_thread(DashboardConfig(rpc_url=fresh.url, dist=dist, deployment=path)) as url:
            page = open_page(browser, url, state="error")
            try:
                error = wait_for_error(page, "not-deployed")
                registry = json.loads(path.read_text())["contracts"]["ServerRegistry"]["address"]
                assert registry.lower() in error["message"].lower()
            finally:
                page.context.close()


@pytest.mark.parametrize(
    "content, kind, says",
    [
        (None, "no-deployment", "no deployment file at"),
        ("{not json", "bad-deployment", "not valid JSON"),
        ('{"format": 1, "chainId": 31337}', "bad-deployment", "missing field"),
    ],
)
def test_missing_or_broken_deployment_file(browser, dist, deployed, tmp_path, content, kind, says):
    node, _ = deployed
    path = tmp_path / "31337.json"
    if content is not None:
        path.write_text(content)
    with dashboard_thread(DashboardConfig(rpc_url=node.url, dist=dist, deployment=path)) as url:
        page = open_page(browser, url, state="error")
        try:
            error = wait_for_error(page, kind)
            assert says in error["message"] and str(path) in error["message"]
        finally:
            page.context.close()
