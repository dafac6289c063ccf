"""The dashboard's HTTP side without a browser: the RPC relay passes reads and refuses anything else, errors are
4xx/5xx JSON, the bundle's files are served by name only, and a missing bundle says how to build it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from efedllm.chain.anvil import Anvil, AnvilConfig, free_port
from efedllm.dashboard import bundle
from efedllm.dashboard.app import DashboardConfig
from efedllm.errors import EfedError
from tests.browser.pages import dashboard_thread


def post(url: str, body) -> tuple[int, object]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    return fetch(request)


def fetch(request) -> tuple[int, object]:
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def call(method: str, params=(), id_=1) -> dict:
    return {"jsonrpc": "2.0", "id": id_, "method": method, "params": list(params)}


@pytest.fixture(scope="module")
def node():
    with Anvil(AnvilConfig(port=0, accounts=2)) as anvil:
        yield anvil


@pytest.fixture(scope="module")
def dash(node, dist, tmp_path_factory):
    config = DashboardConfig(rpc_url=node.url, dist=dist, deployments_dir=tmp_path_factory.mktemp("none"))
    with dashboard_thread(config) as url:
        yield url


def test_relay_passes_reads_single_and_batched(dash):
    status, answer = post(dash + "rpc", call("eth_chainId"))
    assert status == 200 and int(answer["result"], 16) == 31337
    status, answers = post(dash + "rpc", [call("eth_blockNumber", id_=1), call("eth_chainId", id_=2)])
    assert status == 200 and sorted(a["id"] for a in answers) == [1, 2]


@pytest.mark.parametrize(
    "method",
    [
        "eth_sendTransaction",
        "eth_sendRawTransaction",
        "anvil_setBalance",
        "evm_mine",
        "personal_sign",
        "debug_traceTransaction",
    ],
)
def test_relay_refuses_anything_but_reads(dash, node, method):
    before = urllib.request.urlopen(
        urllib.request.Request(
            node.url, data=json.dumps(call("eth_blockNumber")).encode(), headers={"content-type": "application/json"}
        )
    ).read()
    status, answer = post(dash + "rpc", [call("eth_blockNumber"), call(method)])
    assert status == 403 and method in answer["error"]
    after = urllib.request.urlopen(
        urllib.request.Request(
            node.url, data=json.dumps(call("eth_blockNumber")).encode(), headers={"content-type": "application/json"}
        )
    ).read()
    assert before == after


def test_relay_rejects_bodies_that_are_not_json_rpc(dash):
    assert post(dash + "rpc", b"{nope")[0] == 400
    assert post(dash + "rpc", [])[0] == 400
    assert post(dash + "rpc", [1, 2])[0] == 400


def test_no_chain_is_502_json(dist, tmp_path):
    config = DashboardConfig(rpc_url=f"http://127.0.0.1:{free_port()}", dist=dist, deployments_dir=tmp_path)
    with dashboard_thread(config) as url:
        status, answer = post(url + "rpc", call("eth_chainId"))
        assert status == 502 and "no chain reachable" in answer["error"]
        status, answer = fetch(url + "deployment.json")
        assert status == 502 and "no chain reachable" in answer["error"]


def test_deployment_file_is_looked_up_by_chain_id(dash):
    status, answer = fetch(dash + "deployment.json")
    assert status == 404 and answer["error"].endswith("31337.json; deploy first with `efedllm deploy`")


def test_the_start_line_names_the_deployment_file(node, dist, tmp_path):
    """Issue 17: it printed a literal ``deployments/<chain id>.json``."""
    port = free_port()
    cmd = [sys.executable, "-m", "efedllm.cli.main", "dashboard", "--rpc-url", node.url, "--port", str(port)]
    env = {**os.environ, "EFEDLLM_DEPLOYMENTS": str(tmp_path)}
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        said = []
        while not (said and "dashboard at" in said[-1]):  # it may print a build line first
            said.append(process.stdout.readline())
            assert said[-1], f"dashboard did not start: {''.join(said)}"
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert f"deployment {tmp_path.resolve() / '31337.json'};" in said[-1], said[-1]
    assert "<chain id>" not in said[-1]


def test_bundle_files_by_name_only(dash):
    with urllib.request.urlopen(dash, timeout=10) as response:
        assert response.status == 200 and b'src="app.js"' in response.read()
    with urllib.request.urlopen(dash + "app.js", timeout=10) as response:
        assert response.status == 200 and len(response.read()) > 10_000
    for path in [".stamp", "%2e%2e%2fpackage.json", "..%2F..%2Fetc%2Fpasswd", "nope.js"]:
        status, answer = fetch(dash + path)
        assert status == 404 and "error" in answer
    status, config = fetch(dash + "config.json")
    assert status == 200 and config["rpc"] == "rpc" and config["pollMs"] == 1000


def test_missing_bundle_without_node_says_how_to_build(monkeypatch, tmp_path):
    (tmp_path / "frontend").mkdir()
    monkeypatch.setattr(bundle, "frontend_dir", lambda: tmp_path / "frontend")
    monkeypatch.setattr(bundle.shutil, "which", lambda name: None)
    with pytest.raises(EfedError, match="npm run build"):
        bundle.ensure_bundle()
