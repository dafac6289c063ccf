"""The main job end to end: `efedllm demo` against a chain the test holds, and its report checked against it.

The demo runs as a user runs it (a subprocess, its own server and verifier processes); afterwards everything its
JSON report claims is read back from the chain: scores and outcomes per epoch, the slashing, the takeover, every
claim, the identical text before and after the takeover, the client's receipts redeemed (price x tokens x layers,
to the wei), and the equivocating server caught by the client's challenge alone.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from efedllm.chain.deployment import Deployment
from efedllm.chain.node import NODE_KINDS
from efedllm.chain.protocol import Protocol, Status
from efedllm.demo import CLIENT, EQUIVOCATOR, ROLES
from efedllm.localnet import EFEDLLM

pytestmark = pytest.mark.parametrize("node_kind", NODE_KINDS, scope="module")  # Anvil and Ganache


def _why(result: subprocess.CompletedProcess, logs: Path) -> str:
    """Why the demo failed: its error lines first (the CLI's one-line error is its last), then its output's tails
    and the tail of each process's log."""
    lines = (result.stdout + "\n" + result.stderr).splitlines()
    errors = [line for line in lines if "error" in line.lower() or "traceback" in line.lower()]
    parts = [f"efedllm demo exited {result.returncode}", *errors[-20:], "--- stdout", result.stdout[-3000:]]
    parts += ["--- stderr", result.stderr[-3000:]]
    for log in sorted(logs.glob("*.log")) if logs.is_dir() else []:
        text = log.read_text(errors="replace")
        ours = [line for line in text.splitlines() if "efedllm/" in line and line.lstrip().startswith("File ")]
        if ours:  # which of our calls a traceback went through (its tail below is mostly the libraries')
            parts += [f"--- {log.name}: our frames of its traceback", *ours[-12:]]
        parts += [f"--- {log.name}", text[-1500:]]
    return "\n".join(parts)


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
    if result.returncode != 0:  # pytest.fail: an assert's message would be cut to its first lines
        pytest.fail(_why(result, tmp_path / "work" / "logs"), pytrace=False)
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

    # the equivocator passed the verifiers (its records are honest) and was caught by the client's challenge
    liar, caught = address[EQUIVOCATOR], report["challenge"]
    assert report["epochs"][first]["scores"][liar]["outcome"] == "passed" and caught["address"] == liar
    (upheld,) = protocol.challenges.events.ChallengeUpheld().get_logs(from_block=deployment.block)
    (opened,) = protocol.challenges.events.Challenged().get_logs(from_block=deployment.block)
    assert upheld.args.id == opened.args.id and upheld.args.server == opened.args.server == liar
    assert (opened.args.epoch, opened.args.index, opened.args.challenger) == (
        int(first),
        caught["index"],
        w3.eth.accounts[CLIENT],
    )
    fraction = protocol.registry.functions.slashFraction().call()
    assert upheld.args.slashed == caught["slashed"] == caught["stake_before"] * fraction // 10**18 > 0
    assert servers[liar].status == Status.DEACTIVATED and servers[liar].times_slashed == 1
    assert servers[liar].stake == caught["stake_before"] - caught["slashed"]
    assert "cannot be answered" in (tmp_path / "work" / "logs" / f"server-{EQUIVOCATOR}.log").read_text()

    # every server on the client's routes redeemed its receipt: price x tokens x layers, to the wei
    client = w3.eth.accounts[CLIENT]
    redeemed = protocol.payments.events.Redeemed().get_logs(
        from_block=deployment.block, argument_filters={"client": client}
    )  # the verifiers pay for their canaries too
    assert len(redeemed) == len(report["fees"]) == sum(len(g["route"]) for g in report["generations"])
    for fee in report["fees"]:
        role = next(r for r in ROLES if r.name == fee["server"])
        server = address[role.name]
        assert protocol.payments.functions.priceOf(server).call() == role.price == fee["price"]
        on_chain = protocol.payments.functions.redeemed(fee["epoch"], client, server).call()
        assert on_chain == fee["redeemed"] == role.price * fee["tokens"] * fee["layers"] > 0
    assert sum(e.args.paid for e in redeemed) == sum(f["redeemed"] for f in report["fees"])

    takeover = report["takeover"]
    moved = servers[takeover["address"]]
    assert takeover["layers"] == f"{moved.first_layer}:{moved.first_layer + moved.num_layers}" == "10:20"
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
    assert reported == on_chain and len(verifiers) == 2
    # A, B, C; and E, which passed epoch 1 and was caught after its scores were final (docs/SECURITY.md)
    assert set(on_chain) - verifiers == {address[n] for n in ("A", "B", "C", EQUIVOCATOR)}

    gens = report["generations"]
    assert len(gens) == 2 and gens[0]["tokens"] == gens[1]["tokens"]
    for name in ("F", EQUIVOCATOR):  # both on the first route, neither on the second
        assert name in {hop["server"] for hop in gens[0]["route"]} and name not in {
            h["server"] for h in gens[1]["route"]
        }
    assert all(g["failovers"] == 0 for g in gens)
