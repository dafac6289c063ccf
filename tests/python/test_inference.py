"""Model-parallel inference on the real model across real server processes, routed from the chain.

One network serves the whole module: Anvil with the contracts, and four server processes registered on chain:
A 0:10, B 10:20, C 20:30 and D 10:20 (a second server for the middle layers). The tests run in order and the
later ones change the network: one kills a server mid-generation, the last deactivates one on chain.
"""

from __future__ import annotations

import subprocess

import pytest
import torch
from transformers import AutoModelForCausalLM

from efedllm.chain.anvil import warp_to
from efedllm.chain.connection import Signer
from efedllm.chain.params import ONE
from efedllm.chain.protocol import Phase, Protocol, Status
from efedllm.client import DistributedModel
from efedllm.client.routing import NoRouteError
from efedllm.errors import EfedError
from efedllm.localnet import EFEDLLM, ServerProcess, start_all, stop_all
from efedllm.model.source import resolve

SPANS = {"A": "0:10", "B": "10:20", "C": "20:30", "D": "10:20"}
PROMPTS = [
    ("What is the capital of France?", 4),
    ("Write a haiku about the sea.", 12),
    ("List three prime numbers.", 32),
]
VERIFIER = 9


@pytest.fixture(scope="module")
def source():
    return resolve()


@pytest.fixture(scope="module")
def reference(source):
    model = AutoModelForCausalLM.from_pretrained(source.folder, dtype=torch.float32)
    model.eval()
    return model


@pytest.fixture(scope="module")
def network(anvil, deployment, tmp_path_factory):
    path = deployment.save(tmp_path_factory.mktemp("deployments"))
    logs = tmp_path_factory.mktemp("logs")
    from efedllm.chain.anvil import free_port

    servers = {
        name: ServerProcess(
            layers,
            free_port(),
            args=[
                "--rpc-url",
                anvil.url,
                "--deployment",
                str(path),
                "--node-account",
                str(i + 1),
                "--data-dir",
                str(logs / name),
            ],
            log_path=logs / f"{name}.log",
        )
        for i, (name, layers) in enumerate(SPANS.items())
    }
    start_all(list(servers.values()))
    yield servers
    stop_all(list(servers.values()))


@pytest.fixture(scope="module")
def client(w3, deployment, network):
    return DistributedModel.from_pretrained(protocol=Protocol(w3, deployment))


def reference_generate(reference, ids, max_new_tokens):
    out = reference.generate(
        ids, max_new_tokens=max_new_tokens, do_sample=False, output_logits=True, return_dict_in_generate=True
    )
    return out.sequences[0, ids.shape[1] :].tolist(), [logits.float() for logits in out.logits]


def test_servers_registered_themselves_on_chain(w3, deployment, network):
    servers = Protocol(w3, deployment).servers()
    spans = sorted((s.first_layer, s.num_layers) for s in servers if s.status == Status.ACTIVE)
    assert spans == [(0, 10), (10, 10), (10, 10), (20, 10)]
    assert Protocol(w3, deployment).missing_layers() == []


@pytest.mark.parametrize("prompt,max_new_tokens", PROMPTS)
def test_greedy_generation_matches_single_process(client, reference, prompt, max_new_tokens):
    ids = client.encode(prompt=prompt)
    expected_tokens, expected_logits = reference_generate(reference, ids, max_new_tokens)
    tokens, logits = client.generate(ids, max_new_tokens=max_new_tokens, output_logits=True)
    assert tokens[0].tolist() == expected_tokens
    assert len(client.last_route) == 3 and len({h.peer.endpoint for h in client.last_route}) == 3
    worst = max((a - b).abs().max().item() for a, b in zip(logits, expected_logits))
    assert worst < 1e-4, f"max logit difference {worst}"


def test_sampling_is_reproducible_with_a_seed(client):
    kwargs = dict(prompt="Tell me a story.", max_new_tokens=10, do_sample=True, temperature=0.8, top_k=50, top_p=0.9)
    first = client.generate(seed=7, **kwargs)
    assert torch.equal(first, client.generate(seed=7, **kwargs))


def test_generate_command_streams_the_answer(anvil, deployment, network, tmp_path):
    path = deployment.save(tmp_path)
    result = subprocess.run(
        [
            *EFEDLLM,
            "generate",
            "What is the capital of France?",
            "--rpc-url",
            anvil.url,
            "--deployment",
            str(path),
            "--show-route",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "The capital of France is Paris."
    assert "layers 0:10 on http://127.0.0.1:" in result.stderr and "layers 20:30" in result.stderr


def test_server_command_refuses_layers_outside_the_model(anvil, deployment, tmp_path):
    path = deployment.save(tmp_path)
    result = subprocess.run(
        [
            *EFEDLLM,
            "server",
            "run",
            "--layers",
            "25:35",
            "--rpc-url",
            anvil.url,
            "--deployment",
            str(path),
            "--node-account",
            "7",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "efedllm: error: layers 25:35 are out of range of a 30-layer model: need 0 <= START < END <= 30"
    ]


def test_killed_server_mid_generation_costs_only_time(client, reference, network):
    ids = client.encode(prompt="List three prime numbers.")
    expected, _ = reference_generate(reference, ids, 32)
    by_url = {s.url: s for s in network.values()}
    killed = []

    def kill_middle_server_after_five_tokens(token):
        if len(killed) == 0 and len(client.current_session.history_tokens) >= 5:
            middle = client.current_session.route[1].peer.endpoint
            by_url[middle].kill()
            killed.append(middle)

    tokens = client.generate(ids, max_new_tokens=32, on_token=kill_middle_server_after_five_tokens)
    assert killed, "the middle server was never killed"
    assert tokens[0].tolist() == expected
    assert client.last_failovers == 1
    assert killed[0] not in {h.peer.endpoint for h in client.last_route}
    assert [(h.start, h.end) for h in client.last_route] == [(0, 10), (10, 20), (20, 30)]


def test_unreachable_server_is_routed_around(client, network):
    tokens = client.generate(prompt="What is the capital of France?", max_new_tokens=8)
    assert client.last_failovers == 0  # the dead server is not even tried: its /info does not answer
    assert "Paris" in client.tokenizer.decode(tokens[0])


def test_deactivated_server_is_routed_around_and_missing_layers_are_named(w3, deployment, client, network):
    """Deactivate the remaining 10:20 server through a real score commit/reveal/finalize on chain."""
    live = next(s for s in network.values() if s.layers == "10:20" and s.process.poll() is None)
    address = next(p.address for p in client.peer_source.peers() if p.endpoint == live.url)
    verifier = Protocol(w3, deployment, Signer(w3.eth.accounts[VERIFIER]))
    epoch = verifier.current_epoch()
    salt = b"\x01" * 32
    digest = verifier.scoring.functions.scoresHash(verifier.signer.address, epoch, [address], [0], salt).call()
    warp_to(w3, verifier.window_start(epoch, Phase.COMMIT_SCORES))
    verifier.tx.send(verifier.scoring.functions.commitScores(epoch, digest))
    warp_to(w3, verifier.window_start(epoch, Phase.REVEAL_SCORES))
    verifier.tx.send(verifier.scoring.functions.revealScores(epoch, [address], [0], salt))
    warp_to(w3, verifier.window_start(epoch, Phase.FINALIZE))
    verifier.tx.send(verifier.scoring.functions.finalize(epoch, [address]))
    record = next(s for s in verifier.servers() if s.address == address)
    assert record.status == Status.DEACTIVATED and record.times_slashed == 1 and record.stake < ONE

    with pytest.raises(NoRouteError) as info:
        client.generate(prompt="What is the capital of France?", max_new_tokens=4)
    assert info.value.missing == list(range(10, 20))
    assert "layers 10-19" in str(info.value)
    assert isinstance(info.value, EfedError)
