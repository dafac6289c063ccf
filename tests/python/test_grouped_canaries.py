"""Canaries that travel grouped catch a server that cheats only steps sent together (issue 16), on Anvil.

Busy clients send their sessions' decode steps to a server together, in one ``POST /steps`` (client/lockstep.py).
Canaries sent one at a time never do: a server that answers grouped steps wrongly and lone steps honestly would
cheat every busy client and pass every canary. The test aid ``--fault equivocate-grouped`` is that server, on chain,
signing what it sends: one at a time, the verifier's canaries pass it; in an epoch drawn for grouped canaries they
run two at once and every decode step, sent grouped, is caught by the verifier's own computation.
"""

from __future__ import annotations

import random

import pytest
from transformers import AutoTokenizer

from efedllm.chain.anvil import free_port
from efedllm.chain.protocol import Protocol
from efedllm.localnet import ServerProcess, start_all, stop_all
from efedllm.model.source import DEFAULT_MODEL
from efedllm.verifier.canaries import Canaries
from efedllm.verifier.config import VerifyConfig
from efedllm.verifier.reference import ReferenceModel
from efedllm.verifier.remote import Target

SERVER = 1
STEPS = 2


@pytest.fixture(scope="module")
def liar(w3, deployment, network_files):
    args = [*network_files.args(SERVER), "--fault", "equivocate-grouped"]
    process = ServerProcess("20:30", free_port(), args, log_path=network_files.root / "liar.log")
    start_all([process])
    yield process
    stop_all([process])


@pytest.fixture(scope="module")
def reference():
    return ReferenceModel(DEFAULT_MODEL, device="cpu", progress=lambda _: None)


def canaries(w3, deployment, reference, **config) -> Canaries:
    return Canaries(
        model=reference,
        tokenizer=AutoTokenizer.from_pretrained(reference.folder),
        config=VerifyConfig(canary_steps=STEPS, **config),
        domain=Protocol(w3, deployment).answer_domain,
        account=None,  # a free server: nothing to pay
        rng=random.Random(7),
    )


def target(w3, deployment, liar) -> Target:
    server = Protocol(w3, deployment).server(w3.eth.accounts[SERVER])
    return Target(
        address=server.address,
        endpoint=liar.url,
        first_layer=server.first_layer,
        num_layers=server.num_layers,
    )


def test_canaries_one_at_a_time_pass_a_server_that_cheats_grouped_steps(w3, deployment, liar, reference):
    verdicts = canaries(w3, deployment, reference, canaries=2, grouped_canaries=0).check(target(w3, deployment, liar))
    assert len(verdicts) == 2 * (1 + STEPS) and not any(v.fraud for v in verdicts), verdicts


def test_grouped_canaries_catch_it(w3, deployment, liar, reference):
    verdicts = canaries(w3, deployment, reference, canary_group=2, grouped_canaries=1).check(
        target(w3, deployment, liar)
    )
    assert len(verdicts) == 2 * (1 + STEPS), verdicts  # at least canary_group canaries, though --canaries is 1
    prefills, decodes = verdicts[:: 1 + STEPS], [v for i, v in enumerate(verdicts) if i % (1 + STEPS)]
    assert not any(v.fraud for v in prefills), prefills  # a prompt runs alone
    assert len(decodes) == 2 * STEPS and all(v.fraud and "deviates" in v.reason for v in decodes), decodes


def test_no_canaries_means_none_whatever_the_draw(w3, deployment, liar, reference):
    assert canaries(w3, deployment, reference, canaries=0, grouped_canaries=1).check(target(w3, deployment, liar)) == []
