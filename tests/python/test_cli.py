"""The command line as a user runs it: real processes, real chain; errors are one line without a traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eth_account import Account

from efedllm.chain.anvil import free_port
from efedllm.chain.connection import connect
from efedllm.errors import EfedError

EFEDLLM = str(Path(sys.executable).with_name("efedllm"))


def run(*args, env=None, timeout=120):
    full_env = {**os.environ, **(env or {})}
    full_env.pop("EFEDLLM_PRIVATE_KEY", None) if "EFEDLLM_PRIVATE_KEY" not in (env or {}) else None
    return subprocess.run([EFEDLLM, *args], capture_output=True, text=True, env=full_env, timeout=timeout)


def assert_one_line_error(result, pattern):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("efedllm: error: ")
    assert pattern in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout


@pytest.fixture
def deployments(tmp_path):
    return {"EFEDLLM_DEPLOYMENTS": str(tmp_path / "deployments")}


def test_no_chain_reachable(deployments):
    url = f"http://127.0.0.1:{free_port()}"
    assert_one_line_error(run("status", "--rpc-url", url, env=deployments), f"no chain reachable at {url}")
    assert_one_line_error(run("deploy", "--rpc-url", url, env=deployments), "no chain reachable")


def test_rpc_url_without_a_scheme(deployments):
    result = run("status", "--rpc-url", "127.0.0.1:8545", env=deployments)
    assert_one_line_error(result, "needs a scheme: http://127.0.0.1:8545")
    assert "chain up" not in result.stderr


def test_no_deployment_file(anvil, deployments):
    assert_one_line_error(run("status", "--rpc-url", anvil.url, env=deployments), "no deployment file")


def test_bad_private_key(anvil, deployments):
    result = run("deploy", "--rpc-url", anvil.url, env={**deployments, "EFEDLLM_PRIVATE_KEY": "0x1234"})
    assert_one_line_error(result, "EFEDLLM_PRIVATE_KEY is not a valid private key")


def test_keystore_with_wrong_password(anvil, deployments, tmp_path):
    keystore = tmp_path / "key.json"
    keystore.write_text(json.dumps(Account.encrypt(Account.create().key, "right")))
    result = run(
        "deploy",
        "--rpc-url",
        anvil.url,
        "--keystore",
        str(keystore),
        env={**deployments, "EFEDLLM_KEYSTORE_PASSWORD": "wrong"},
    )
    assert_one_line_error(result, "wrong password")


def test_out_of_bounds_parameter_is_refused_before_deploying(anvil, deployments):
    result = run("deploy", "--rpc-url", anvil.url, "--theta", str(2 * 10**18), env=deployments)
    assert_one_line_error(result, "parameter theta must be between 0 and 1000000000000000000")


def test_invalid_parameters_are_refused_before_sending(anvil, deployments):
    result = run("deploy", "--rpc-url", anvil.url, "--unbonding-period", "5", env=deployments)
    assert_one_line_error(result, "unbonding_period")


def test_debug_shows_the_traceback(deployments):
    url = f"http://127.0.0.1:{free_port()}"
    result = run("--debug", "status", "--rpc-url", url, env=deployments)
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_deploy_then_status_with_a_keystore(anvil, deployments, tmp_path):
    """A keystore-signed deployment: the governor is the keystore's address, and status reads the file."""
    w3 = connect(anvil.url)
    account = Account.create()
    w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": account.address, "value": 10**19})
    keystore = tmp_path / "key.json"
    keystore.write_text(json.dumps(Account.encrypt(account.key, "pw")))
    env = {**deployments, "EFEDLLM_KEYSTORE_PASSWORD": "pw"}
    deployed = run("deploy", "--rpc-url", anvil.url, "--keystore", str(keystore), env=env)
    assert deployed.returncode == 0, deployed.stderr
    path = Path(deployments["EFEDLLM_DEPLOYMENTS"]) / f"{w3.eth.chain_id}.json"
    assert json.loads(path.read_text())["governor"] == account.address
    status = run("status", "--rpc-url", anvil.url, env=deployments)
    assert status.returncode == 0, status.stderr
    assert "coverage: 0/30 layers served" in status.stdout
    assert account.address in status.stdout


def test_deploy_takes_the_min_stake_in_eth(anvil, deployments):
    """Issue 17: `--stake` was in ETH but `deploy --min-stake` in wei; the file and the chain keep wei."""
    refused = run("deploy", "--rpc-url", anvil.url, "--min-stake", "lots", env=deployments)
    assert refused.returncode != 0 and "--min-stake: invalid ETH value: 'lots'" in refused.stderr
    deployed = run("deploy", "--rpc-url", anvil.url, "--min-stake", "0.5", env=deployments)
    assert deployed.returncode == 0, deployed.stderr
    path = Path(deployments["EFEDLLM_DEPLOYMENTS"]) / f"{connect(anvil.url).eth.chain_id}.json"
    assert json.loads(path.read_text())["params"]["min_stake"] == 5 * 10**17


def test_chain_up_serves_rpc_and_stops_on_ctrl_c():
    port = free_port()
    proc = subprocess.Popen([EFEDLLM, "chain", "up", "--port", str(port)], stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                assert connect(f"http://127.0.0.1:{port}").eth.chain_id == 31337
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
    finally:
        proc.kill()
    with pytest.raises(EfedError):
        connect(f"http://127.0.0.1:{port}", timeout=2)
