"""Continuous batching on the server (issue 16): decode steps of sessions that are ready together run as one
forward pass, with the same greedy tokens as unbatched and outputs within the verifier's float32 bound.

The kernel on the real model (efedllm/model/batched.py against LayerSpan.forward, session by session), then a real
server process with concurrent clients (every generation equal to its single-client run, and the server's /info
showing that steps were batched).
"""

from __future__ import annotations

import concurrent.futures

import pytest
import requests
import torch

from efedllm.chain.anvil import free_port
from efedllm.client import DistributedModel
from efedllm.client.lockstep import LOCKSTEP
from efedllm.localnet import ServerProcess, start_all, stop_all
from efedllm.model.batched import forward_batch
from efedllm.server.config import ServerConfig
from efedllm.server.main import load_span
from efedllm.verifier.checks import deviation
from efedllm.verifier.config import FLOAT32_TOLERANCE

quiet = {"progress": lambda *a: None}


def test_a_batched_decode_step_is_each_sessions_own_step():
    span = load_span(
        ServerConfig(model="smollm2-135m-instruct", first_layer=5, num_layers=6, device="cpu"), 5, 6, **quiet
    )
    torch.manual_seed(0)
    prompts = [torch.randn(1, 3 + 4 * i, 576) * 3 for i in range(8)]  # sessions of different lengths
    alone, together = [span.new_cache() for _ in prompts], [span.new_cache() for _ in prompts]
    for p, a, t in zip(prompts, alone, together):
        span(p, a, past=0)
        span(p, t, past=0)
    pasts = [p.shape[1] for p in prompts]
    for _ in range(3):  # three decode steps in a row, each batched
        steps = [torch.randn(1, 1, 576) * 3 for _ in prompts]
        single = [span(s, c, past=n) for s, c, n in zip(steps, alone, pasts)]
        batched = forward_batch(span, steps, together, pasts, start=5, end=11)
        worst = max(deviation(b, s) for b, s in zip(batched, single))
        assert worst < FLOAT32_TOLERANCE / 100, worst
        pasts = [n + 1 for n in pasts]
    for a, t in zip(alone, together):  # the caches grew the same, session by session
        assert all(torch.allclose(a.filled(i)[0], t.filled(i)[0], atol=1e-5) for i in a.keys)
    with pytest.raises(ValueError):
        forward_batch(span, [torch.randn(2, 1, 576)], [span.new_cache()], [0], start=5, end=11)


def test_prefills_and_decode_steps_batched_together_are_each_sessions_own():
    """A ragged batch: prompts of different lengths (a fresh prefill, a later chunk after earlier tokens, a replay)
    and decode steps in one pass, each session's output and cache as when it runs alone."""
    span = load_span(
        ServerConfig(model="smollm2-135m-instruct", first_layer=0, num_layers=4, device="cpu"), 0, 4, **quiet
    )
    torch.manual_seed(1)
    earlier = [0, 7, 0, 12, 3]  # tokens each session's cache already holds
    steps = [torch.randn(1, n, 576) * 3 for n in (9, 5, 1, 1, 23)]
    alone, together = [span.new_cache() for _ in steps], [span.new_cache() for _ in steps]
    for n, a, t in zip(earlier, alone, together):
        if n:
            history = torch.randn(1, n, 576) * 3
            span(history, a, past=0)
            span(history, t, past=0)
    single = [span(s, c, past=n) for s, c, n in zip(steps, alone, earlier)]
    batched = forward_batch(span, steps, together, earlier, start=0, end=4)
    assert [b.shape for b in batched] == [s.shape for s in single]
    worst = max(deviation(b, s) for b, s in zip(batched, single))
    assert worst < FLOAT32_TOLERANCE / 100, worst
    for a, t in zip(alone, together):
        assert all(torch.allclose(a.filled(i)[0], t.filled(i)[0], atol=1e-5) for i in a.keys)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    process = ServerProcess("0:30", free_port(), ["--no-chain"], log_path=tmp_path_factory.mktemp("batch") / "s.log")
    start_all([process])
    yield process
    stop_all([process])


PROMPTS = ("Name a planet.", "What do bees make?", "Say hello.", "Name a fruit.", "What is 2+2?", "Name a colour.")


def test_concurrent_sessions_are_batched_and_get_their_own_tokens(server):
    model = DistributedModel.from_pretrained(servers=[server.url])
    alone = {p: model.generate(prompt=p, max_new_tokens=8, eos_token_id=[]).tolist() for p in PROMPTS}
    before = requests.get(f"{server.url}/info", timeout=10).json()
    groups = LOCKSTEP.groups

    def run(prompt):
        own = DistributedModel(
            ends=model.ends,
            tokenizer=model.tokenizer,
            generation_config=model.generation_config,
            peers=model.peer_source,
        )
        return own.generate(prompt=prompt, max_new_tokens=8, eos_token_id=[]).tolist()

    with concurrent.futures.ThreadPoolExecutor(max_workers=len(PROMPTS)) as pool:
        together = dict(zip(PROMPTS, pool.map(run, PROMPTS)))
    assert together == alone
    after = requests.get(f"{server.url}/info", timeout=10).json()
    steps, batches = after["steps"] - before["steps"], after["batches"] - before["batches"]
    assert steps == 8 * len(PROMPTS) and batches < steps, (steps, batches)  # some steps ran together
    assert after["free_cache_bytes"] > 0 and after["queued"] == 0
    assert LOCKSTEP.groups > groups  # the client sent steps of several sessions in one request (POST /steps)
