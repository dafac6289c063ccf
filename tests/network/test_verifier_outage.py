"""A verifier down for an epoch: the quorum rule decides, and nobody is slashed for a verifier's absence.

One server S over all 30 layers, three verifiers V7, V8 and V9, minVerifiers = 2, a client generating in every
epoch; each epoch is walked window by window.

1. V9 is stopped for epoch e1: two of three reveal, the quorum of 2 is met, and S passes on their median.
2. The governor raises minVerifiers to 3 while V9 stays down for e2: two reveals miss the quorum, and S's outcome
   is NoQuorum: not scored, not slashed, not paid, still active, its stake intact.
3. V9 comes back on its own data directory for e3: all three reveal, the quorum of 3 is met, and S passes.
"""

from __future__ import annotations

import dataclasses

import pytest

from efedllm.chain.anvil import free_port
from efedllm.chain.connection import Signer
from efedllm.chain.params import ONE
from efedllm.chain.protocol import Outcome, Protocol, Score, Status
from efedllm.client import DistributedModel
from efedllm.localnet import WALKED_PARAMS, ServerProcess, VerifierProcess, Walker, start_all, stop_all

SERVER = 1
VERIFIERS = (7, 8, 9)  # granted VERIFIER_ROLE at deployment (tests/support/chain.py)
PARAMS = dataclasses.replace(WALKED_PARAMS, min_verifiers=2)
ABSENT = 9


@pytest.fixture(scope="module")
def net(w3, deployment, network_files):
    root, chain = network_files.root, network_files.args
    server = ServerProcess("0:30", free_port(), chain(SERVER), log_path=root / "server.log")
    verifiers = {v: VerifierProcess(chain(v), log_path=root / f"verifier-{v}.log") for v in VERIFIERS}
    start_all([server, *verifiers.values()])
    yield {"server": server, "verifiers": verifiers}
    stop_all([server, *verifiers.values()])


def test_the_quorum_rule_decides_while_a_verifier_is_down_and_nobody_is_slashed(w3, deployment, net):
    governor = Protocol(w3, deployment, Signer(w3.eth.accounts[0]))
    walker = Walker(governor, [net["server"], *net["verifiers"].values()])
    client = DistributedModel.from_pretrained(protocol=governor)
    server = w3.eth.accounts[SERVER]
    present = [w3.eth.accounts[v] for v in VERIFIERS if v != ABSENT]
    stake = next(s.stake for s in governor.servers() if s.address == server)

    def epoch_with(verifiers: list[str]) -> tuple[int, Score]:
        epoch = walker.fresh_epoch()
        client.generate(prompt="Name a tree.", max_new_tokens=4, eos_token_id=[])
        assert walker.commitments(epoch, [server])[server].work_units == 4
        return epoch, walker.scores(epoch, verifiers, [server])[server]

    def untouched() -> None:
        record = next(s for s in governor.servers() if s.address == server)
        assert (record.status, record.times_slashed, record.stake) == (Status.ACTIVE, 0, stake)

    net["verifiers"][ABSENT].stop()
    walker.processes.remove(net["verifiers"][ABSENT])
    _, score = epoch_with(present)
    assert (score.outcome, score.verifiers, score.acc) == (Outcome.PASSED, 2, ONE)
    untouched()

    governor.tx.send(governor.scoring.functions.setMinVerifiers(3), label="setMinVerifiers")
    e2, score = epoch_with(present)
    assert score.outcome == Outcome.NO_QUORUM and score.verifiers == 2
    assert len(governor.scoring.functions.revealedAccuracies(e2, server).call()) == 2
    assert governor.pool.functions.rewardWeight(e2, server).call() == 0
    untouched()

    back = net["verifiers"][ABSENT] = VerifierProcess(
        net["verifiers"][ABSENT].args, log_path=net["verifiers"][ABSENT].log_path.with_name("back.log")
    )
    back.start().wait_ready()
    walker.processes.append(back)
    _, score = epoch_with([w3.eth.accounts[v] for v in VERIFIERS])
    assert (score.outcome, score.verifiers, score.acc) == (Outcome.PASSED, 3, ONE)
    untouched()
