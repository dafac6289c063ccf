"""Serve wrong, record right: caught through the client's signed answers and an on-chain challenge alone (issue 14).

Two real server processes on Anvil: an honest one over layers 0:15 and one over 15:30 run with
``--fault equivocate`` (it records and commits the honest output, and sends the client a wrong one, signed). No
verifier runs. A client finds the servers on chain, generates, and checks every answer's signature against the
server's on-chain address (client/answers.py), keeping the signed answers. Once the epoch's seed is drawn it
challenges one answer of each server (ServingChallenges). The honest server answers by itself with the Merkle proof
(server/challenges.py); the equivocator cannot, and is slashed when the response window ends.
"""

from __future__ import annotations

import pytest

from efedllm.chain.anvil import free_port
from efedllm.chain.connection import Signer
from efedllm.chain.node import warp_to
from efedllm.chain.protocol import ChallengeState, Phase, Protocol, Status
from efedllm.client import DistributedModel
from efedllm.localnet import ServerProcess, Walker, start_all, stop_all, wait_for

CLIENT = 7


@pytest.fixture(scope="module")
def network(network_files):
    root, chain = network_files.root, network_files.args
    honest = ServerProcess("0:15", free_port(), chain(1), log_path=root / "honest.log")
    liar = ServerProcess("15:30", free_port(), [*chain(2), "--fault", "equivocate"], log_path=root / "liar.log")
    start_all([honest, liar])
    yield {"honest": honest, "liar": liar}
    stop_all([honest, liar])


def test_an_equivocating_server_is_slashed_through_a_challenge(w3, deployment, network):
    protocol = Protocol(w3, deployment)
    client = Protocol(w3, deployment, Signer(w3.eth.accounts[CLIENT]))
    walker = Walker(protocol, [network["honest"], network["liar"]])
    honest, liar = w3.eth.accounts[1], w3.eth.accounts[2]

    epoch = walker.fresh_epoch()
    model = DistributedModel.from_pretrained(protocol=client)
    model.generate(prompt="Tell me about the sea.", max_new_tokens=4, eos_token_id=[])
    kept = model.answers.kept
    assert {a.server for a in kept} == {honest, liar}  # every answer was signed by the server on record
    assert all(a.answer.epoch == epoch for a in kept)

    walker.commitments(epoch, [honest, liar])
    walker.warp(epoch, Phase.COMMIT_SCORES)
    client.tx.send(client.scoring.functions.drawSeed(epoch), label="drawSeed")

    bond = client.challenges.functions.BOND().call()
    ids = {}
    for server in (honest, liar):
        signed = next(a for a in kept if a.server == server and a.answer.index == 1)
        receipt = client.tx.send(
            client.challenges.functions.challenge(signed.answer.as_tuple(), signed.signature), value=bond
        )
        ids[server] = client.challenges.events.Challenged().process_receipt(receipt)[0]["args"]["id"]

    state = lambda cid: client.challenge(cid).state  # noqa: E731
    wait_for(
        lambda: state(ids[honest]) == ChallengeState.ANSWERED,
        "the honest server to answer its challenge",
        processes=[network["honest"]],
    )
    assert state(ids[liar]) == ChallengeState.OPEN
    wait_for(  # it looks, like the honest one, and has no proof (enforced before it looked, it would say nothing)
        lambda: "cannot be answered" in network["liar"].log_tail(20_000),
        "the equivocator to find it has no proof",
        processes=[network["liar"]],
    )

    deadline = client.challenge(ids[liar]).deadline
    warp_to(w3, deadline + 1)
    stake = protocol.server(liar).stake
    client.tx.send(client.challenges.functions.enforce(ids[liar]), label="enforce")
    assert state(ids[liar]) == ChallengeState.UPHELD
    after = protocol.server(liar)
    assert after.status == Status.DEACTIVATED and after.stake == stake // 2
    assert protocol.server(honest).status == Status.ACTIVE
