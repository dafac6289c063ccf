"""The main job end to end: `efedllm demo` against a chain the test holds, and its report checked against it.

The demo runs as a user runs it (a subprocess, its own server and verifier processes); afterwards everything its
JSON report claims is read back from the chain: scores and outcomes per epoch, the slashing, the takeover, every
claim, and the identical text before and after the takeover.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from efedllm.chain.deployment import Deployment
from efedllm.chain.node import NODE_KINDS
from efedllm.chain.protocol import Protocol, Status
from efedllm.demo import ROLES
from efedllm.localnet import EFEDLLM

pytestmark = pytest.mark.parametrize("node_kind", NODE_KINDS, scope="module")  # Anvil and Ganache


def test_the_demo_reports_what_the_chain_holds(w3, anvil, tmp_path):
    summary = tmp_path / "summary.json"
    result = subprocess.run(
        [
            *EFEDLLM,
            "demo",
            "--rpc-url",
            anvil.url,
            "--work-dir",
            str(tmp_path / "work"),
            "--summary-json",
            str(summary),
            "--max-new-tokens",
            "8",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "identical text before and after the takeover: yes" in result.stdout
    report = json.loads(summary.read_text())
    deployment = Deployment.load(tmp_path / "work" / "deployments" / f"{w3.eth.chain_id}.json")
    protocol = Protocol(w3, deployment)
    address = {r.name: w3.eth.accounts[r.account] for r in ROLES}
    servers = {s.address: s for s in protocol.servers()}

    for epoch, entry in report["epochs"].items():
        for server, claimed in entry["scores"].items():
            score = protocol.score_of(int(epoch), server)
            assert (claimed["acc"], claimed["score"], claimed["outcome"]) == (
                score.acc,
                score.score,
                score.outcome.label,
            )
        assert entry["pool"] == protocol.pool.functions.poolSize(int(epoch)).call()
    first = min(report["epochs"], key=int)
    assert report["epochs"][first]["scores"][address["F"]]["outcome"] == "slashed"
    assert servers[address["F"]].status == Status.DEACTIVATED and servers[address["F"]].times_slashed == 1
    assert all(servers[address[n]].times_slashed == 0 for n in "ABC")

    takeover = report["takeover"]
    moved = servers[takeover["address"]]
    assert takeover["layers"] == f"{moved.first_layer}:{moved.first_layer + moved.num_layers}" == "20:30"
    assert protocol.missing_layers() == []

    events = protocol.pool.events.RewardsClaimed().get_logs(from_block=deployment.block)
    on_chain = {}
    for event in events:
        on_chain[event.args.server] = on_chain.get(event.args.server, 0) + event.args.amount
    reported = {}
    for c in report["claims"]:
        who = address[c["server"]] if "server" in c else c["verifier"]
        reported[who] = reported.get(who, 0) + c["amount"]
    verifiers = {c["verifier"] for c in report["claims"] if "verifier" in c}
    assert reported == on_chain and len(on_chain) == 3 + len(verifiers) and len(verifiers) == 2  # A, B, C; verifiers

    gens = report["generations"]
    assert len(gens) == 2 and gens[0]["tokens"] == gens[1]["tokens"]
    assert "F" in {hop["server"] for hop in gens[0]["route"]} and "F" not in {hop["server"] for hop in gens[1]["route"]}
