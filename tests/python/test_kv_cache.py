"""The server's KV cache grows a block at a time (issue 16), and the client's LM head serves concurrent generations
in one batch: both must compute exactly what they did before, only with fewer copies and fewer passes.

Real model (SmolLM2-135M layers and head), no servers: the kernels themselves."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from efedllm.model.decoder import BLOCK_TOKENS, KVCache
from efedllm.model.head import ModelEnds
from efedllm.model.source import resolve
from efedllm.server.config import ServerConfig
from efedllm.server.main import load_span

quiet = {"progress": lambda *a: None}


@pytest.fixture(scope="module")
def span():
    return load_span(
        ServerConfig(model="smollm2-135m-instruct", first_layer=3, num_layers=4, device="cpu"), 3, 4, **quiet
    )


@pytest.fixture(scope="module")
def ends():
    return ModelEnds(resolve().folder, device=torch.device("cpu"))


def test_cache_holds_what_was_appended_and_grows_by_blocks():
    cache, keys, values = KVCache(), [], []
    allocations, buffer = 0, None
    for step in range(3 * BLOCK_TOKENS + 5):
        new = 7 if step == 0 else 1  # a prefill of 7 positions, then one position per step
        k, v = torch.randn(1, 3, new, 64), torch.randn(1, 3, new, 64)
        keys.append(k)
        values.append(v)
        got_k, got_v = cache.append(0, k, v)
        assert torch.equal(got_k, torch.cat(keys, dim=2)) and torch.equal(got_v, torch.cat(values, dim=2))
        assert cache.capacity % BLOCK_TOKENS == 0 and cache.capacity >= got_k.shape[2]
        if cache.keys[0] is not buffer:  # a new buffer (compared by object: a freed address may be reused)
            allocations, buffer = allocations + 1, cache.keys[0]
    length = 7 + 3 * BLOCK_TOKENS + 4
    assert cache.capacity == KVCache.blocks(length) < length + BLOCK_TOKENS
    assert allocations == KVCache.blocks(length) // BLOCK_TOKENS  # one allocation per block, not one per step
    assert torch.equal(cache.filled(0)[0], torch.cat(keys, dim=2))


def test_decode_through_blocks_matches_one_pass(span):
    """A prefill and 40 decode steps (crossing block boundaries) equal the whole sequence run at once."""
    torch.manual_seed(1)
    x = torch.randn(1, 50, 576) * 3
    whole = span(x, span.new_cache(), past=0)
    cache = span.new_cache()
    outs = [span(x[:, :10], cache, past=0)]
    outs += [span(x[:, t : t + 1], cache, past=t) for t in range(10, 50)]
    stepped = torch.cat(outs, dim=1)
    assert (stepped - whole).abs().max() < 1e-4
    assert cache.capacity == KVCache.blocks(50)


def _concurrent(ends, rows, *, together=1, stagger=0.0, repeat=1):
    """Head passes (rows each) and results when ``rows``' callers call at once, ``repeat`` times each; with
    ``stagger``, caller i comes i x ``stagger`` seconds after the first, as the sessions of one group are woken."""
    calls, results = [], [None] * len(rows)
    compute = ends._head_batch.compute
    ends._head_batch.compute = lambda batch: calls.append(batch.shape[0]) or compute(batch)
    gate = threading.Barrier(len(rows))

    def call(i):
        gate.wait()
        time.sleep(stagger * i)
        for _ in range(repeat):
            results[i] = ends.next_logits(rows[i], together=together)

    try:
        threads = [threading.Thread(target=call, args=(i,)) for i in range(len(rows))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        ends._head_batch.compute = compute
    return calls, results


def test_concurrent_heads_share_a_batch_and_match_alone(ends):
    torch.manual_seed(2)
    rows = [torch.randn(1, 1 + i % 3, 576) for i in range(12)]
    alone = [ends.logits(r[:, -1:])[0].float() for r in rows]
    # a caller alone; `weight @ rows.T` (model/linear.py) and F.linear sum in different orders: their float32
    # logits (up to about 10) differ by up to 2e-5, so the tolerance is the batched callers' below
    assert torch.allclose(ends.next_logits(rows[0]), alone[0], atol=1e-4)
    calls, results = _concurrent(ends, rows, repeat=5)
    for got, want in zip(results, alone):
        assert got.shape == (1, want.shape[-1]) and torch.allclose(got, want, atol=1e-4)
        assert int(got.argmax()) == int(want.argmax())
    assert sum(calls) == 5 * len(rows)
    assert max(calls) > 1  # concurrent callers were batched
    assert len(calls) < 5 * len(rows)


def test_callers_known_to_come_together_share_one_pass(ends, monkeypatch):
    """Sessions whose steps one server answered together wake one after the other: told how many they are, the
    first waits for the rest instead of running the head alone (and the rest in a second pass)."""
    import efedllm.model.head as head

    torch.manual_seed(3)
    rows = [torch.randn(1, 1, 576) for _ in range(6)]
    alone = [ends.logits(r)[0].float() for r in rows]
    with monkeypatch.context() as patched:
        patched.setattr(head, "GATHER_S", 30.0)  # the mechanism, not the machine's speed: wait for all of them
        calls, results = _concurrent(ends, rows, together=len(rows), stagger=0.0005)
    assert calls == [len(rows)]
    assert all(torch.allclose(got, want, atol=1e-4) for got, want in zip(results, alone))
    calls, results = _concurrent(ends, rows, stagger=0.0005)  # without the hint, whatever queued meanwhile
    assert sum(calls) == len(rows)
    assert all(torch.allclose(got, want, atol=1e-4) for got, want in zip(results, alone))
    # more announced than come: it waits a moment (GATHER_S), then runs what it has
    assert torch.allclose(ends.next_logits(rows[0], together=4), alone[0], atol=1e-4)


def test_an_error_reaches_every_caller_of_its_batch(ends):
    with pytest.raises(RuntimeError):
        ends.next_logits(torch.randn(1, 1, 7))  # the wrong hidden size
    assert ends.next_logits(torch.randn(1, 1, 576)).shape == (1, ends.config.vocab_size)  # and it goes on


@pytest.mark.parametrize("rows", [1, 2, 3, 5, 16, 17, 64, 200])
def test_few_rows_linear_matches_f_linear(rows):
    from efedllm.model.linear import linear

    torch.manual_seed(rows)
    weight, bias, x = torch.randn(1536, 576), torch.randn(1536), torch.randn(1, rows, 576)
    want = torch.nn.functional.linear(x, weight, bias)
    got = linear(x, weight, bias)
    assert got.shape == want.shape and got.is_contiguous()
    assert ((got - want).norm() / want.norm()).item() < 1e-6
    half = linear(x.bfloat16(), weight.bfloat16())  # half precision keeps F.linear: the bounds were measured on it
    assert torch.equal(half, torch.nn.functional.linear(x.bfloat16(), weight.bfloat16()))


def test_batcher_waits_for_the_sessions_stepping_now(span):
    """Two sessions stepping: a step that arrives alone waits (within wait_s) for the other's and they run as one
    batch; a session stepping alone never waits."""
    import asyncio
    import time
    from concurrent.futures import ThreadPoolExecutor

    from efedllm.server.batching import Batcher
    from efedllm.server.sessions import Session

    async def scenario():  # the test's second step comes 50 ms after the first: a gap of 0.2 s covers it
        batcher = Batcher(ThreadPoolExecutor(1), max_batch=8, wait_s=0.5, gap_s=0.2)
        sessions = [Session(id=f"s{i}", start=3, end=7, cache=span.new_cache()) for i in range(2)]
        for s in sessions:  # a prefill each, then one decode step together: both count as stepping now
            await batcher.run(span, s, torch.randn(1, 4, 576), 0)
        await asyncio.gather(*(batcher.run(span, s, torch.randn(1, 1, 576), 4) for s in sessions))
        before = batcher.batches
        first = asyncio.ensure_future(batcher.run(span, sessions[0], torch.randn(1, 1, 576), 5))
        await asyncio.sleep(0.05)  # the second session's step comes 50 ms later, within the wait
        second = batcher.run(span, sessions[1], torch.randn(1, 1, 576), 5)
        await asyncio.gather(first, second)
        together = batcher.batches - before
        batcher.forget("s1")  # closed: the other session steps alone from now on
        began = time.monotonic()
        await batcher.run(span, sessions[0], torch.randn(1, 1, 576), 6)
        return together, time.monotonic() - began

    together, alone_s = asyncio.run(scenario())
    assert together == 1  # one forward pass for both steps
    assert alone_s < 0.4  # and the lone session did not wait out the 0.5 s


def test_batcher_runs_small_passes_on_one_thread(span, monkeypatch):
    """A pass of at most ``one_thread_tokens`` tokens runs on one CPU thread (server/batching.py says why); a
    prefill longer than that keeps torch's threads, and the thread count is restored after each pass."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from efedllm.server import batching
    from efedllm.server.sessions import Session

    seen, compute = [], batching._compute
    monkeypatch.setattr(batching, "_compute", lambda batch: seen.append(torch.get_num_threads()) or compute(batch))
    torch.set_num_threads(2)

    async def scenario():
        batcher = batching.Batcher(ThreadPoolExecutor(1), max_batch=8, one_thread_tokens=4)
        session = Session(id="s", start=3, end=7, cache=span.new_cache())
        await batcher.run(span, session, torch.randn(1, 6, 576), 0)  # a prefill of 6 tokens: both threads
        await batcher.run(span, session, torch.randn(1, 1, 576), 6)  # a decode step: one thread
        await batcher.run(span, session, torch.randn(1, 4, 576), 7)  # 4 tokens: one thread
        batcher.executor.submit(lambda: seen.append(torch.get_num_threads())).result()  # restored afterwards

    asyncio.run(scenario())
    assert seen == [2, 1, 1, 2]


def test_batcher_runs_prefills_of_different_sessions_together(span):
    """Prompts that reach the server together (a client's concurrent generations starting) run as one ragged
    batch with the decode steps queued beside them, up to ``max_tokens`` tokens; each session gets its own output,
    the same as its step alone."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from efedllm.server.batching import Batcher
    from efedllm.server.sessions import Session

    torch.manual_seed(3)
    steps = [torch.randn(1, n, 576) for n in (6, 9, 1, 4)]

    async def scenario(max_tokens):
        batcher = Batcher(ThreadPoolExecutor(1), max_batch=8, max_tokens=max_tokens)
        sessions = [Session(id=f"s{i}", start=3, end=7, cache=span.new_cache()) for i in range(len(steps))]
        outputs = await asyncio.gather(*(batcher.run(span, s, h, 0) for s, h in zip(sessions, steps)))
        return outputs, batcher.batches

    together, batches = asyncio.run(scenario(1024))
    assert batches == 1
    alone = [span(h, span.new_cache(), past=0, start=3, end=7) for h in steps]
    assert all(torch.allclose(t, a, atol=1e-4) for t, a in zip(together, alone))
    _, batches = asyncio.run(scenario(10))  # 6 + 9 > 10: the second prompt waits for the next pass
    assert batches == 3  # [6, 1], [9], [4]: a step that does not fit waits at the head of the line
