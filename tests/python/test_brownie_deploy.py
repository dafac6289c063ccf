"""`brownie run scripts/deploy.py` and `efedllm deploy` run one plan and write the same deployment file.

Each deploys to a fresh Anvil from the same account with the same parameters (a fixed genesis), so the two
files must be identical, and so must the runtime bytecode at every address: proof that both paths compile
with the same settings and wire the same roles.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from efedllm.chain.anvil import Anvil, AnvilConfig
from efedllm.chain.connection import connect

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
GENESIS = 1_900_000_000


def deployed_code(url: str, data: dict) -> dict[str, bytes]:
    w3 = connect(url)
    return {name: bytes(w3.eth.get_code(c["address"])) for name, c in data["contracts"].items()}


def test_brownie_and_web3_deployments_are_identical(tmp_path):
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    brownie_chain = Anvil(AnvilConfig(port=8545, accounts=10))  # brownie's development port
    try:
        brownie_chain.start()
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"brownie's development network needs port 8545 free: {exc}")
    try:
        result = subprocess.run(
            [str(BIN / "brownie"), "run", "scripts/deploy.py", "main", json.dumps({"genesis": GENESIS})],
            cwd=ROOT,
            env={**env, "EFEDLLM_DEPLOYMENTS": str(tmp_path / "brownie")},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        from_brownie = json.loads((tmp_path / "brownie" / "31337.json").read_text())
        brownie_code = deployed_code(brownie_chain.url, from_brownie)
    finally:
        brownie_chain.stop()

    with Anvil(AnvilConfig(port=0, accounts=10)) as chain:
        result = subprocess.run(
            [
                str(BIN / "efedllm"),
                "deploy",
                "--rpc-url",
                chain.url,
                "--genesis",
                str(GENESIS),
                "--out",
                str(tmp_path / "web3"),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
        from_web3 = json.loads((tmp_path / "web3" / "31337.json").read_text())
        web3_code = deployed_code(chain.url, from_web3)

    assert from_brownie == from_web3
    assert brownie_code == web3_code
    assert all(len(code) > 0 for code in web3_code.values())
