"""Every way a server can cheat ends with it deactivated and slashed, while an honest server passes.

One network: an honest server over all 30 layers and five faulty ones that together also cover all 30 (one
fault kind each: noise, replay, skip, inflate, refuse), a verifier process (using the softmax of eq. 21-22), and
a client that generates through
the five faulty servers. After one epoch's commit, verify, reveal and finalize windows, the chain must show each
faulty server slashed and deactivated, and the honest one passed.
"""

from __future__ import annotations

import pytest

from efedllm.chain.anvil import free_port
from efedllm.chain.params import ONE
from efedllm.chain.protocol import Outcome, Protocol, Status
from efedllm.client import DistributedModel
from efedllm.localnet import WALKED_PARAMS, ServerProcess, VerifierProcess, Walker, start_all, stop_all

FAULTS = {"noise": "0:6", "replay": "6:12", "skip": "12:18", "inflate": "18:24", "refuse": "24:30"}
VERIFIER = 9
PARAMS = WALKED_PARAMS  # the deployment's (tests/support/chain.py)


@pytest.fixture(scope="module")
def network(network_files):
    root, chain = network_files.root, network_files.args

    honest = ServerProcess("0:30", free_port(), chain(1), log_path=root / "honest.log")
    faulty = {
        kind: ServerProcess(layers, free_port(), [*chain(2 + i), "--fault", kind], log_path=root / f"{kind}.log")
        for i, (kind, layers) in enumerate(FAULTS.items())
    }
    # This verifier recomputes attention with the lookup-table softmax of paper eq. 21-22 (the other tests use
    # the exact one): honest work must still pass, and every cheat still be caught.
    verifier = VerifierProcess([*chain(VERIFIER), "--softmax", "lut"], log_path=root / "verifier.log")
    processes = [honest, *faulty.values(), verifier]
    start_all(processes)
    yield {"honest": honest, "faulty": faulty, "verifier": verifier, "all": processes}
    stop_all(processes)


def test_each_fault_kind_is_deactivated_and_slashed(w3, deployment, network):
    protocol = Protocol(w3, deployment)
    walker = Walker(protocol, network["all"])
    address = {kind: w3.eth.accounts[2 + i] for i, kind in enumerate(FAULTS)}
    honest = w3.eth.accounts[1]
    stakes_before = {s.address: s.stake for s in protocol.servers()}

    epoch = walker.fresh_epoch()
    client = DistributedModel.from_pretrained(servers=[p.url for p in network["faulty"].values()])
    client.generate(prompt="Tell me about the sea.", max_new_tokens=8, eos_token_id=[])
    assert [hop.peer.endpoint for hop in client.last_route] == [p.url for p in network["faulty"].values()]

    commitments = walker.commitments(epoch, address.values())
    served = commitments[address["noise"]].work_units
    assert served == 8  # a prefill that yields the first token, then seven decode steps
    assert (
        commitments[address["inflate"]].work_units > commitments[address["skip"]].work_units
    )  # it claims more than it served

    scores = walker.scores(epoch, [w3.eth.accounts[VERIFIER]], [honest, *address.values()])
    assert scores[honest].outcome == Outcome.PASSED and scores[honest].acc == ONE
    servers = {s.address: s for s in protocol.servers()}
    for kind, server in address.items():
        assert (kind, scores[server].outcome, scores[server].acc) == (kind, Outcome.SLASHED, 0)
        assert servers[server].status == Status.DEACTIVATED and servers[server].times_slashed == 1
        assert servers[server].stake == stakes_before[server] // 2
    assert servers[honest].status == Status.ACTIVE and servers[honest].times_slashed == 0
    assert protocol.missing_layers() == []  # the honest server still covers everything
