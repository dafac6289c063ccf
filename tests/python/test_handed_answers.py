"""Serve wrong, record right: caught within one epoch by staked verifiers through a client's handed answers.

Real processes on Anvil: an honest priced server over layers 0:15 and a priced one over 15:30 run with
``--fault equivocate`` (it records and commits the honest output and sends the client a noisy one, signed), two
staked verifiers that send no canaries (so that only the client's answers can catch the equivocator: its
openings recompute correctly), and a client with a deposit. Governance funds the epoch's pool.

The client generates, paying with receipts, and hands a sample of the signed answers to both verifiers on its own
(client/reports.py; endpoints announced on chain). The verifiers open those leaves beside their random sample
(verifier/handed.py): the equivocator's committed leaves differ from what it signed, so both give it acc 0, and
finalize slashes and deactivates it in that same epoch. Nobody challenged on chain. Then the money, to the wei:
the client's deposit is what the servers redeemed plus what it has left; the epoch's pool (the funding plus the
liar's slashed stake) is what the honest server and the two verifiers claimed plus the rounding dust.
"""

from __future__ import annotations

import dataclasses

import pytest
import requests

from efedllm.chain.anvil import free_port
from efedllm.chain.claims import claim
from efedllm.chain.connection import Signer
from efedllm.chain.params import ETHER, ONE
from efedllm.chain.protocol import Outcome, Phase, Protocol, Status
from efedllm.client import DistributedModel
from efedllm.localnet import WALKED_PARAMS, ServerProcess, VerifierProcess, Walker, start_all, stop_all, wait_for
from efedllm.receipts import SignedAnswer
from efedllm.rpc.routes import ANSWERS

PARAMS = dataclasses.replace(WALKED_PARAMS, min_verifiers=2)
VERIFIERS = (7, 8)  # granted VERIFIER_ROLE and staked at deployment (tests/support/chain.py)
CLIENT = 6
HONEST, LIAR = 1, 2
PRICES = {HONEST: ("0:15", 1_000), LIAR: ("15:30", 2_000)}
FUNDED = 2 * ETHER
DEPOSIT = ETHER


@pytest.fixture(scope="module")
def net(network_files):
    root, chain = network_files.root, network_files.args
    servers = {
        account: ServerProcess(
            layers,
            free_port(),
            [*chain(account), "--price", str(price), *(["--fault", "equivocate"] if account == LIAR else [])],
            log_path=root / f"server-{account}.log",
        )
        for account, (layers, price) in PRICES.items()
    }
    verifiers = {
        v: VerifierProcess([*chain(v), "--canaries", "0"], log_path=root / f"verifier-{v}.log") for v in VERIFIERS
    }
    start_all([*servers.values(), *verifiers.values()])
    yield {"servers": servers, "verifiers": verifiers}
    stop_all([*servers.values(), *verifiers.values()])


def test_an_equivocating_server_is_slashed_through_the_answers_clients_hand_to_verifiers(w3, deployment, net):
    governor = Protocol(w3, deployment, Signer(w3.eth.accounts[0]))
    client = Protocol(w3, deployment, Signer(w3.eth.accounts[CLIENT]))
    walker = Walker(governor, [*net["servers"].values(), *net["verifiers"].values()])
    honest, liar = w3.eth.accounts[HONEST], w3.eth.accounts[LIAR]
    verifiers = [w3.eth.accounts[v] for v in VERIFIERS]
    endpoints = client.verifier_endpoints()
    assert set(endpoints) == set(verifiers)  # announced on chain by `verifier run`
    stake = governor.server(liar).stake

    epoch = walker.fresh_epoch()
    governor.tx.send(governor.pool.functions.fundEpoch(epoch), value=FUNDED, label="fundEpoch")
    client.tx.send(client.payments.functions.deposit(), value=DEPOSIT, label="deposit")
    model = DistributedModel.from_pretrained(protocol=client)
    prompt = "Tell me about the sea."
    model.generate(prompt=prompt, max_new_tokens=4, eos_token_id=[])
    assert {a.server for a in model.answers.kept} == {honest, liar}
    assert model.reporter.handed == {v: 2 * 2 for v in verifiers}  # two answers per server, to each verifier

    for address, endpoint in endpoints.items():
        listed = requests.get(endpoint + ANSWERS, params={"epoch": epoch}, timeout=10).json()["answers"]
        taken = [SignedAnswer.from_json(raw) for raw in listed]
        assert {a.server for a in taken} == {honest, liar}, address
        assert all(a in model.answers.kept for a in taken)
    bad = requests.post(endpoints[verifiers[0]] + ANSWERS, data=b"{not json", timeout=10)
    assert bad.status_code == 400 and "answers" in bad.json()["error"]
    forged = dataclasses.replace(model.answers.kept[0], server=honest if model.answers.kept[0].server == liar else liar)
    refused = requests.post(endpoints[verifiers[0]] + ANSWERS, json={"answers": [forged.to_json()]}, timeout=10)
    assert refused.status_code == 422 and "not signed by that server" in refused.json()["error"]

    walker.commitments(epoch, [honest, liar])
    scores = walker.scores(epoch, verifiers, [honest, liar])
    assert scores[liar].outcome == Outcome.SLASHED and scores[liar].acc == 0
    assert scores[honest].outcome == Outcome.PASSED and scores[honest].acc == ONE
    after = governor.server(liar)
    assert after.status == Status.DEACTIVATED and after.stake == stake // 2
    assert governor.challenges.events.Challenged().get_logs(from_block=deployment.block) == []  # no challenge
    for process in net["verifiers"].values():
        log = process.log_tail(10**6)
        assert "the committed leaf differs from the answer it signed for a client" in log
        assert f"{honest} acc 1.000" in log

    # ---- the money, to the wei
    tokens = model.encode(prompt=prompt).shape[1] + 3  # the prefill, then three decode steps of one token
    owed = {honest: tokens * 15 * PRICES[HONEST][1], liar: tokens * 15 * PRICES[LIAR][1]}
    redeemed = lambda s: client.payments.functions.redeemed(epoch, client.signer.address, s).call()  # noqa: E731
    wait_for(lambda: all(redeemed(s) for s in owed), "the servers to redeem", processes=net["servers"].values())
    assert {s: redeemed(s) for s in owed} == owed
    available = client.payments.functions.accountOf(client.signer.address).call()[0]
    assert available + sum(owed.values()) == DEPOSIT

    walker.warp(epoch, Phase.SETTLED)
    claimed, amount = claim(Protocol(w3, deployment, Signer(honest)), epochs=[epoch])
    assert claimed == [epoch]
    pool = governor.pool.functions
    wait_for(
        lambda: all(pool.hasClaimed(epoch, v).call() for v in verifiers),
        "the verifiers' claims of their pay",
        processes=net["verifiers"].values(),
    )
    size = FUNDED + stake // 2  # the funding and the liar's slashed stake (into the epoch it was slashed for)
    assert pool.poolSize(epoch).call() == size
    pot = size * PARAMS.verifier_share // ONE
    assert amount == size - pot  # the only server with a weight
    paid = {
        e["args"]["server"]: e["args"]["amount"]
        for e in governor.pool.events.RewardsClaimed().get_logs(from_block=deployment.block)
        if e["args"]["epoch"] == epoch
    }
    assert paid == {honest: size - pot, **{v: pot // 2 for v in verifiers}}
    assert sum(paid.values()) + (pot - 2 * (pot // 2)) == FUNDED + stake // 2
    assert pool.rewardWeight(epoch, liar).call() == 0
