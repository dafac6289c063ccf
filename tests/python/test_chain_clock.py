"""How time moves on a dev chain, and what people are told when it did not move as they expected (issue 17).

- ``efedllm chain up`` keeps the chain's clock moving by default (a block interval): servers and verifiers read the
  epoch's phase from the latest block, and a node that mines only on transactions stopped them.
- A transaction that passed its simulation but reverted once mined names the contract's error (it printed
  ``commitScores reverted in block 18`` before).
- A verifier that missed a window of an epoch it was running for says so loudly, once.
- ``efedllm status`` shows the phase with the time left, and earlier epochs still settling.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from types import SimpleNamespace

import pytest
from test_cli import EFEDLLM, run
from web3 import Web3

from efedllm.chain.anvil import free_port, warp_to
from efedllm.chain.connection import Signer
from efedllm.chain.protocol import Phase, Protocol
from efedllm.chain.transactions import RevertError
from efedllm.verifier.config import VerifyConfig
from efedllm.verifier.daemon import Verifier

STRANGER, VERIFIER = 5, 9


def test_chain_up_keeps_time_without_transactions(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [EFEDLLM, "chain", "up", "--port", str(port), "--accounts", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}"))
        deadline = time.monotonic() + 60
        while not w3.is_connected():
            assert proc.poll() is None and time.monotonic() < deadline, "chain up did not start"
            time.sleep(0.2)
        first = w3.eth.get_block("latest")
        time.sleep(3.5)
        later = w3.eth.get_block("latest")
        assert later["number"] >= first["number"] + 2, "no block was mined while nobody sent a transaction"
        assert later["timestamp"] > first["timestamp"]
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert "keeps the chain's clock moving" in out


def test_a_transaction_that_reverts_once_mined_names_its_error(w3, deployment):
    protocol = Protocol(w3, deployment, Signer(w3.eth.accounts[STRANGER]))
    before = w3.eth.block_number
    # an explicit gas limit skips the simulation, as when the chain moves between simulating and mining
    with pytest.raises(RevertError) as caught:
        protocol.tx.send(protocol.registry.functions.requestUnstake(1), gas=200_000, label="requestUnstake")
    assert w3.eth.block_number > before  # it was mined, and reverted there
    assert caught.value.error == "NotRegistered"
    assert "NotRegistered(server=" in str(caught.value) and "is not registered as a server" in str(caught.value)


def test_a_verifier_that_missed_a_window_says_so_once(w3, deployment, tmp_path, caplog):
    protocol = Protocol(w3, deployment, Signer(w3.eth.accounts[VERIFIER]))
    epoch = protocol.current_epoch()
    verifier = Verifier(protocol, None, None, VerifyConfig(), data_dir=tmp_path, progress=lambda m: None)
    warp_to(w3, protocol.window_start(epoch, Phase.REVEAL_SCORES))  # its commit-scores window went by unseen
    with caplog.at_level(logging.ERROR, logger="efedllm.verifier"):
        verifier.tick()
        verifier.tick()
    missed = [r.getMessage() for r in caplog.records if "MISSED" in r.getMessage()]
    assert len(missed) == 1, missed
    assert f"epoch {epoch}: MISSED its commit-scores window" in missed[0]
    assert "reveal-scores phase" in missed[0]


def test_status_shows_the_phase_with_time_left_and_epochs_settling(anvil, w3, deployment, tmp_path):
    deployment.save(tmp_path)
    protocol = Protocol(w3, deployment)
    epoch = protocol.current_epoch()
    warp_to(w3, protocol.window_start(epoch + 1, Phase.WORK) + 5)  # epoch is now in its commit-work window
    result = run("status", "--rpc-url", anvil.url, env={"EFEDLLM_DEPLOYMENTS": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    rows = {
        line.split()[0]: line
        for line in result.stdout.splitlines()
        if line.split()[:1] in ([str(epoch)], [str(epoch + 1)])
    }
    assert "work" in rows[str(epoch + 1)] and "left" in rows[str(epoch + 1)]
    assert "commit-work" in rows[str(epoch)] and "left" in rows[str(epoch)]
    assert "until the next phase" in result.stdout


def test_a_verifier_reports_each_result_once(w3, deployment, tmp_path, caplog):
    """Issue 17: each server's result was printed twice, once logged by the checks and once as progress."""
    server = Protocol(w3, deployment, Signer(w3.eth.accounts[STRANGER]))
    server.tx.send(server.registry.functions.register("http://127.0.0.1:9", 0, 10), value=2 * 10**18, label="register")
    protocol = Protocol(w3, deployment, Signer(w3.eth.accounts[VERIFIER]))
    epoch = protocol.current_epoch()
    lines = []
    no_model = SimpleNamespace(recompute=None)  # no work and no canaries: nothing is recomputed
    verifier = Verifier(protocol, no_model, None, VerifyConfig(canaries=0), data_dir=tmp_path, progress=lines.append)
    warp_to(w3, protocol.window_start(epoch, Phase.COMMIT_SCORES))
    with caplog.at_level(logging.INFO, logger="efedllm.verifier"):
        verifier.tick()
    shown = lines + [r.getMessage() for r in caplog.records]
    about = [line for line in shown if line.startswith(f"epoch {epoch}:") and server.signer.address in line]
    assert len(about) == 1, shown
    assert f"epoch {epoch}: {server.signer.address} acc" in about[0]
    assert "opened 0 client-paid, 0 unpaid" in about[0]  # the tally of client-paid work (verifier/scoring.py)
