"""A client's spot checks (client/spotcheck.py): the verifiers' recomputation decides, never the client's word.

Two real servers over all 30 layers on Anvil: an honest one and one with ``--fault noise`` (it computes, adds noise
to every output, and records and commits what it sent: its openings agree with its answers, only recomputation
shows the lie). Two staked verifiers that open no random sample and send no canaries: they check only what
clients hand them. A client with ``spot_check=1`` and no random hand-off: each step is also run on the other
server and compared. Every step disagrees; the client keeps the first answer and hands both signed answers of
each disagreement to the verifiers, which open and recompute both leaves. The noisy server is slashed within the
epoch, the honest one passes with acc 1: the same dispute names both, and only recomputation tells them apart.
"""

from __future__ import annotations

import dataclasses

import pytest

from efedllm.chain.anvil import free_port
from efedllm.chain.connection import Signer
from efedllm.chain.params import ONE
from efedllm.chain.protocol import Outcome, Protocol, Status
from efedllm.client import DistributedModel
from efedllm.client.spotcheck import SpotCheck
from efedllm.localnet import WALKED_PARAMS, ServerProcess, VerifierProcess, Walker, start_all, stop_all

PARAMS = dataclasses.replace(WALKED_PARAMS, min_verifiers=2)
VERIFIERS = (7, 8)
HONEST, NOISY, CLIENT = 1, 2, 6


@pytest.fixture(scope="module")
def net(network_files):
    root, chain = network_files.root, network_files.args
    servers = [
        ServerProcess("0:30", free_port(), chain(HONEST), log_path=root / "honest.log"),
        ServerProcess("0:30", free_port(), [*chain(NOISY), "--fault", "noise"], log_path=root / "noisy.log"),
    ]
    checks_only_handed = ["--samples", "0", "--canaries", "0"]
    verifiers = [
        VerifierProcess([*chain(v), *checks_only_handed], log_path=root / f"verifier-{v}.log") for v in VERIFIERS
    ]
    start_all([*servers, *verifiers])
    yield [*servers, *verifiers]
    stop_all([*servers, *verifiers])


def test_a_spot_check_mismatch_goes_to_the_verifiers_whose_recomputation_decides(w3, deployment, net):
    governor = Protocol(w3, deployment, Signer(w3.eth.accounts[0]))
    walker = Walker(governor, net)
    honest, noisy = w3.eth.accounts[HONEST], w3.eth.accounts[NOISY]
    verifiers = [w3.eth.accounts[v] for v in VERIFIERS]
    stake = governor.server(noisy).stake

    epoch = walker.fresh_epoch()
    model = DistributedModel.from_pretrained(
        protocol=Protocol(w3, deployment, Signer(w3.eth.accounts[CLIENT])),
        handed_per_server=0,
        spot=SpotCheck(spot_check=1.0),
    )
    model.generate(prompt="Tell me about the sea.", max_new_tokens=3, eos_token_id=[])
    assert model.spot.checks == 3  # the prefill and two decode steps, each on the other server too
    disputes = model.spot.disputes
    assert len(disputes) == 3 and all(d.deviation > 1e-2 for d in disputes)
    assert all({d.first.server, d.second.server} == {honest, noisy} for d in disputes)
    assert model.reporter.handed == {v: 6 for v in verifiers}  # both answers of each dispute, to each verifier

    walker.commitments(epoch, [honest, noisy])
    scores = walker.scores(epoch, verifiers, [honest, noisy])
    assert scores[honest].outcome == Outcome.PASSED and scores[honest].acc == ONE
    assert scores[noisy].outcome == Outcome.SLASHED and scores[noisy].acc == 0
    after = governor.server(noisy)
    assert after.status == Status.DEACTIVATED and after.stake == stake // 2
    for process in net[2:]:
        assert "deviates from recomputation" in process.log_tail(10**6)
