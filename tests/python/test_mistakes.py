"""Ordinary mistakes must not cost money (issue 17): a port in use, an endpoint another server announces, a typo in
``efedllm deploy --verifier`` are refused before any transaction; a server says what happened to it in each of its
epochs and stops paying gas to commit when nothing can be earned. Real Anvil, real ``efedllm`` processes."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys

import pytest
import torch

from efedllm.chain.anvil import free_port, warp_to
from efedllm.chain.connection import connect
from efedllm.chain.node import LocalNode, NodeConfig
from efedllm.chain.params import ETHER
from efedllm.chain.protocol import Phase, Status
from efedllm.server.records import TaskStore
from efedllm.server.verdicts import Verdicts
from efedllm.server.work import Committer

EFEDLLM = [sys.executable, "-m", "efedllm.cli.main"]


def efedllm(*args, env=None):
    full_env = {k: v for k, v in os.environ.items() if k != "EFEDLLM_PRIVATE_KEY"}
    return subprocess.run(
        [*EFEDLLM, *args], capture_output=True, text=True, env={**full_env, **(env or {})}, timeout=180
    )


def assert_one_line_error(result, text):
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("efedllm: error: ") and text in lines[0], result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def server_run(network_files, account, port, *extra):
    return efedllm(
        "server",
        "run",
        "--layers",
        "0:30",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *extra,
        *network_files.args(account),
    )


def nonce(w3, account):
    return w3.eth.get_transaction_count(w3.eth.accounts[account])


def test_a_port_in_use_is_refused_before_registering(w3, protocol_for, network_files):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        before = nonce(w3, 1)
        result = server_run(network_files, 1, port)
    assert_one_line_error(result, f"cannot listen on 127.0.0.1:{port}: address already in use")
    assert nonce(w3, 1) == before
    assert protocol_for(1).server(w3.eth.accounts[1]).status == Status.NONE


def register(protocol, endpoint):
    protocol.tx.send(protocol.registry.functions.register(endpoint, 0, 30), value=ETHER, label="register")


def test_an_endpoint_another_active_server_announces_is_refused(w3, protocol_for, network_files):
    endpoint = f"http://127.0.0.1:{free_port()}"
    register(protocol_for(2), endpoint)
    before = nonce(w3, 3)
    result = server_run(network_files, 3, free_port(), "--public-url", endpoint)
    assert_one_line_error(result, f"endpoint {endpoint} is already announced by active server {w3.eth.accounts[2]}")
    assert nonce(w3, 3) == before

    register(protocol_for(4), endpoint + "/")  # registered around the CLI: status must flag it
    status = efedllm("status", "--rpc-url", network_files.rpc_url, "--deployment", str(network_files.deployment_path))
    assert status.returncode == 0, status.stderr
    assert f"warning: 2 servers share the endpoint {endpoint}" in status.stdout
    assert w3.eth.accounts[4] in status.stdout.split("share the endpoint")[1]


@pytest.mark.parametrize(
    "verifier, error",
    [
        ("0xdeadbeef", "--verifier '0xdeadbeef' is not an address"),
        ("0x52908400098527886E0F7030069857D2E4169Ee7".replace("E0F", "e0F"), "wrong checksum"),
    ],
)
def test_deploy_refuses_a_bad_verifier_before_sending(w3, anvil, tmp_path, verifier, error):
    before = nonce(w3, 0)
    result = efedllm(
        "deploy",
        "--rpc-url",
        anvil.url,
        "--verifier",
        verifier,
        env={"EFEDLLM_DEPLOYMENTS": str(tmp_path / "deployments")},
    )
    assert_one_line_error(result, error)
    assert nonce(w3, 0) == before
    assert not (tmp_path / "deployments").exists()


def test_deploy_warns_without_a_verifier(anvil, tmp_path):
    result = efedllm("deploy", "--rpc-url", anvil.url, env={"EFEDLLM_DEPLOYMENTS": str(tmp_path / "deployments")})
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert warnings == [line for line in warnings if line.startswith("efedllm: warning: no --verifier")] != []


def test_deploy_on_a_public_chain_refuses_a_quorum_one_liar_decides(tmp_path):
    """On a chain that is not a local dev chain, fewer than three verifiers (or any immunity) is refused before the
    first transaction: with one or two, a single lying verifier decides each verdict."""
    with LocalNode(NodeConfig(chain_id=11155111, block_time=0)) as node:
        env = {"EFEDLLM_DEPLOYMENTS": str(tmp_path / "deployments")}
        verifier = ("--verifier", "0x" + "11" * 20)
        result = efedllm("deploy", "--rpc-url", node.url, *verifier, "--min-verifiers", "2", env=env)
        assert_one_line_error(result, "min_verifiers must be at least 3 on a public chain (chain id 11155111)")
        result = efedllm(
            "deploy", "--rpc-url", node.url, *verifier, "--min-verifiers", "3", "--immunity-epochs", "1", env=env
        )
        assert_one_line_error(result, "immunity_epochs must be 0 on a public chain")
        result = efedllm("deploy", "--rpc-url", node.url, *verifier, "--min-verifiers", "3", env=env)
        assert_one_line_error(result, "reward_rule must be stake on a public chain")  # work: self-dealing pays
        w3 = connect(node.url)
        assert w3.eth.get_transaction_count(w3.eth.accounts[0]) == 0
        assert not (tmp_path / "deployments").exists()


def work(protocol, tmp_path, epoch):
    """A task store holding one served step of ``epoch`` for the signer of ``protocol``."""
    me = protocol.signer.address
    store = TaskStore(tmp_path / f"tasks-{me}.sqlite", server=me)
    store.record(
        epoch=epoch, session="s", start=0, end=30, past=0, inputs=torch.zeros(1, 1, 4), outputs=torch.ones(1, 1, 4)
    )
    return Committer(protocol, store)


def fresh_epoch(w3, protocol) -> int:
    epoch = protocol.current_epoch() + 1
    warp_to(w3, protocol.window_start(epoch, Phase.WORK))
    return epoch


def test_no_commitment_when_nothing_can_be_earned(w3, protocol_for, tmp_path, caplog):
    idle = protocol_for(5)
    register(idle, "http://127.0.0.1:1")
    idle.tx.send(idle.registry.functions.requestUnstake(ETHER), label="requestUnstake")  # inactive, no stake
    epoch = fresh_epoch(w3, idle)
    committer = work(idle, tmp_path, epoch)
    warp_to(w3, idle.window_start(epoch, Phase.COMMIT_WORK))
    before = nonce(w3, 5)
    with caplog.at_level(logging.INFO, logger="efedllm.server"):
        committer.commit_ready()
        committer.commit_ready()
    assert nonce(w3, 5) == before
    said = [r.getMessage() for r in caplog.records if "not committing work" in r.getMessage()]
    assert len(said) == 1 and "inactive with no bonded stake" in said[0]


def test_a_server_logs_its_verdicts_and_stops_once_deactivated(w3, protocol_for, tmp_path, caplog):
    good, bad, verifier = protocol_for(6), protocol_for(7), protocol_for(9)
    register(good, "http://127.0.0.1:6")
    register(bad, "http://127.0.0.1:7")
    epoch = fresh_epoch(w3, good)
    committers = [work(p, tmp_path, epoch) for p in (good, bad)]
    warp_to(w3, good.window_start(epoch, Phase.COMMIT_WORK))
    for committer in committers:
        committer.commit_ready()
    pairs = sorted(
        [(good.signer.address, 95 * ETHER // 100), (bad.signer.address, ETHER // 10)], key=lambda pair: int(pair[0], 16)
    )
    servers, accuracies, salt = [s for s, _ in pairs], [a for _, a in pairs], b"\1" * 32
    scoring = verifier.scoring.functions
    warp_to(w3, good.window_start(epoch, Phase.COMMIT_SCORES))
    digest = scoring.scoresHash(verifier.signer.address, epoch, servers, accuracies, salt).call()
    verifier.tx.send(scoring.commitScores(epoch, digest), label="commitScores")
    warp_to(w3, good.window_start(epoch, Phase.REVEAL_SCORES))
    verifier.tx.send(scoring.revealScores(epoch, servers, accuracies, salt), label="revealScores")
    verdicts = [Verdicts(good), Verdicts(bad)]
    warp_to(w3, good.window_start(epoch, Phase.FINALIZE))
    verifier.tx.send(scoring.finalize(epoch, servers), label="finalize")
    warp_to(w3, good.window_start(epoch, Phase.SETTLED))

    (good_line,) = verdicts[0].check()
    (bad_line,) = verdicts[1].check()
    assert good_line.startswith(f"epoch {epoch} verdict: acc 0.9500, S 0.9500 -> passed; slashed 0.000000 ETH")
    assert bad_line.startswith(f"epoch {epoch} verdict: acc 0.1000, S 0.1000 -> slashed; slashed 0.500000 ETH")
    assert verdicts[1].check() == []  # each verdict once

    next_epoch = fresh_epoch(w3, bad)
    committer = work(bad, tmp_path / "next", next_epoch)
    warp_to(w3, bad.window_start(next_epoch, Phase.COMMIT_WORK))
    before = nonce(w3, 7)
    with caplog.at_level(logging.INFO, logger="efedllm.server"):
        committer.commit_ready()
    assert nonce(w3, 7) == before
    assert any("not committing work" in r.getMessage() and "deactivated" in r.getMessage() for r in caplog.records)


def test_a_server_that_lost_its_data_directory_declares_the_loss_instead_of_being_slashed(w3, protocol_for, tmp_path):
    """Restarted with a new, empty data directory after committing, a server cannot open its committed leaves:
    every refused opening would be fraud. On start it finds the commitment it does not hold and declares the
    records lost before the seed is drawn (the epoch is forfeited: no pay, no slash)."""
    me = protocol_for(8)
    register(me, "http://127.0.0.1:3")
    epoch = fresh_epoch(w3, me)
    committer = work(me, tmp_path / "old", epoch)
    warp_to(w3, me.window_start(epoch, Phase.COMMIT_WORK))
    committer.commit_ready()
    address = me.signer.address
    assert me.commitment_of(epoch, address).work_units == 1

    restarted = Committer(me, TaskStore(tmp_path / "new" / f"tasks-{address}.sqlite", server=address))
    assert restarted.declare_lost() == [epoch]
    assert me.commitment_of(epoch, address).lost
    assert restarted.declare_lost() == []  # declared once
    assert committer.declare_lost() == []  # the old directory holds its records: nothing lost
