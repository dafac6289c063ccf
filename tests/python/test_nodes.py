"""Any EVM dev node, not just Anvil: `efedllm chain up --node ganache` serves a chain the contracts deploy to, whose
dev accounts are the keys ``LocalNode`` knows, whose clock ``warp_to`` moves exactly with standard JSON-RPC, and
which survives a restart of its node (``--state``, Ganache's database folder); a node running an EVM older than
Shanghai (the contracts' EVM version) is refused before the first deployment transaction, in one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from eth_account import Account

from efedllm.chain.connection import connect
from efedllm.chain.node import GANACHE_CHAIN_ID, LocalNode, NodeConfig, dev_keys, free_port, warp_to

EFEDLLM = str(Path(sys.executable).with_name("efedllm"))


def run(*args, env, timeout=120):
    return subprocess.run([EFEDLLM, *args], capture_output=True, text=True, env={**os.environ, **env}, timeout=timeout)


def chain_up(port: int, state: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [EFEDLLM, "chain", "up", "--node", "ganache", "--port", str(port), "--accounts", "3", "--state", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline()  # the first line is printed once the node answers
    assert line.startswith(f"ganache listening on http://127.0.0.1:{port} (chain id {GANACHE_CHAIN_ID}"), (
        line + process.stderr.read() if process.poll() is not None else line
    )
    return process


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "stopping ganache" in out


def test_chain_up_ganache_deploys_moves_time_and_survives_a_restart(tmp_path):
    port, state = free_port(), tmp_path / "chain"
    env = {"EFEDLLM_DEPLOYMENTS": str(tmp_path / "deployments")}
    url = f"http://127.0.0.1:{port}"
    process = chain_up(port, state)
    try:
        w3 = connect(url)
        assert [Account.from_key(k).address for k in dev_keys("ganache", 3)] == w3.eth.accounts
        deployed = run("deploy", "--rpc-url", url, env=env)
        assert deployed.returncode == 0, deployed.stderr
        assert run("status", "--rpc-url", url, env=env).returncode == 0
        target = w3.eth.get_block("latest")["timestamp"] + 5000
        warp_to(w3, target)
        assert w3.eth.get_block("latest")["timestamp"] == target
        time.sleep(1.5)  # the node's clock runs on from the warp, not from the wall clock
        warp_to(w3, 0)
        assert target + 1 <= w3.eth.get_block("latest")["timestamp"] <= target + 3
    finally:
        stop(process)

    process = chain_up(port, state)
    try:
        w3 = connect(url)
        assert w3.eth.get_block("latest")["timestamp"] > target  # the clock resumed where it was, not the wall's
        contracts = json.loads((tmp_path / "deployments" / f"{GANACHE_CHAIN_ID}.json").read_text())["contracts"]
        assert all(w3.eth.get_code(c["address"]) for c in contracts.values())
        assert run("status", "--rpc-url", url, env=env).returncode == 0
    finally:
        stop(process)


def test_a_pre_shanghai_node_is_refused_before_deploying(tmp_path):
    with LocalNode(NodeConfig(kind="ganache", port=0, accounts=2, hardfork="london")) as node:
        verifier = "0x" + "11" * 20
        result = run(
            "deploy", "--rpc-url", node.url, "--verifier", verifier, env={"EFEDLLM_DEPLOYMENTS": str(tmp_path)}
        )
        assert result.returncode != 0
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        assert lines[0].startswith("efedllm: error: this node runs a pre-Shanghai EVM"), lines[0]
        assert "start it with --hardfork shanghai or later" in lines[0]
        assert connect(node.url).eth.get_transaction_count(connect(node.url).eth.accounts[0]) == 0  # nothing sent
