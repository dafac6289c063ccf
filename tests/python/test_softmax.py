"""The verifier's lookup-table softmax (paper 4.4, eq. 21-22) on the real model's attention scores.

The scores are recorded from SmolLM2-135M-Instruct itself: a chat prompt (prefill, causal mask) and one decode
step (no mask) run through all 30 layers with a softmax hook that keeps its input. Error bounds are the errors
measured on these scores with a margin of about 2x (docs/SOFTMAX.md has the measured table).
"""

from __future__ import annotations

import itertools
import math
import threading
import time

import pytest
import torch
from transformers import AutoTokenizer

import efedllm.verifier.softmax as softmax_module
from efedllm.errors import InvalidParameter
from efedllm.model.head import ModelEnds
from efedllm.model.source import resolve
from efedllm.model.span import LayerSpan
from efedllm.verifier.softmax import LutSoftmax, SoftmaxConfig, digit_tables

CPU = torch.device("cpu")
PROMPT = "Explain in two sentences why the sky is blue and what changes at sunset."
MAX_ABS_ERROR = {(2, 16): 1e-2, (8, 2): 1e-2, (3, 16): 8e-4, (4, 8): 8e-4, (6, 4): 8e-4, (4, 16): 6e-5, (5, 16): 5e-6}
"""Measured on this test's scores: 4.8e-3 for b**K = 256, 4.1e-4 for 4096, 3.2e-5 for 65536, 2.3e-6 for 2**20."""


@pytest.fixture(scope="module")
def model():
    source = resolve()
    span, ends = LayerSpan(source.folder, 0, 30, device=CPU), ModelEnds(source.folder, device=CPU)
    ids = AutoTokenizer.from_pretrained(source.folder).apply_chat_template(
        [{"role": "user", "content": PROMPT}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )["input_ids"]
    return span, ends, ends.embed_tokens(ids)


@pytest.fixture(scope="module")
def scores(model):
    """q k^T * scale of every layer, masked with -inf: the prompt's prefill, then one decode step."""
    span, ends, hidden = model
    recorded: list[torch.Tensor] = []

    def recording(s):
        recorded.append(s.clone())
        return torch.softmax(s, dim=-1)

    cache = span.new_cache()
    out = span(hidden, cache, past=0, softmax=recording)
    step = ends.embed_tokens(ends.logits(out)[:, -1:].argmax(-1))
    span(step, cache, past=hidden.shape[1], softmax=recording)
    assert len(recorded) == 60 and torch.isinf(recorded[0]).any() and torch.isfinite(recorded[-1]).all()
    return recorded


def max_error(lut: LutSoftmax, scores: list[torch.Tensor]) -> float:
    return max(float((lut(s) - torch.softmax(s, dim=-1)).abs().max()) for s in scores)


def test_lookup_tables_are_eq_22_and_cached():
    c = SoftmaxConfig(digits=4, base=8)
    tables = digit_tables(digits=4, base=8, scale=c.scale)
    assert tables.shape == (4, 8) and digit_tables(digits=4, base=8, scale=c.scale) is tables
    q = torch.randint(0, c.levels, (1000,), generator=torch.Generator().manual_seed(1))
    digits = [(q // 8**j) % 8 for j in range(4)]
    product = math.prod(tables[j][digits[j]] for j in range(4))
    torch.testing.assert_close(product, torch.exp(-q.double() * c.scale), rtol=1e-12, atol=0)
    assert c.clamp_range == pytest.approx(math.log(2 * 8**4) + softmax_module.CLAMP_OFFSET)
    assert c.scale * (c.levels - 1) == pytest.approx(c.clamp_range)


def test_shift_invariance_is_exact(scores):
    """eq. 21: adding a constant to every score changes nothing. Scores on a 2**-10 grid make the addition exact."""
    with LutSoftmax(config=SoftmaxConfig(digits=4, base=16, workers=2)) as lut:
        for s in scores[::7]:
            grid = torch.round(s * 1024) / 1024
            for shift in (37.0, -512.0, 3000.0):
                assert torch.equal(lut(grid + shift), lut(grid))


def test_error_against_torch_softmax_shrinks_with_precision(scores):
    errors = {}
    for (k, b), bound in MAX_ABS_ERROR.items():
        with LutSoftmax(config=SoftmaxConfig(digits=k, base=b, workers=2)) as lut:
            errors[k, b] = max_error(lut, scores)
        assert errors[k, b] < bound, (k, b, errors[k, b])
    by_levels: dict[int, list[float]] = {}
    for (k, b), e in errors.items():
        by_levels.setdefault(b**k, []).append(e)
    ordered = [by_levels[levels] for levels in sorted(by_levels)]
    for coarse, fine in itertools.pairwise(ordered):
        assert min(coarse) > 4 * max(fine)  # 16x more levels: at least 4x less error
    for same in ordered:  # only b**K matters for accuracy, not how it is split into digits
        assert max(same) - min(same) < 1e-6


def test_workers_give_identical_results(scores):
    outputs = {}
    for w in (1, 2, 3, 4):
        with LutSoftmax(config=SoftmaxConfig(digits=4, base=16, workers=w)) as lut:
            outputs[w] = [lut(s) for s in scores]
    for w in (2, 3, 4):
        assert all(torch.equal(a, b) for a, b in zip(outputs[1], outputs[w]))


def test_chunks_run_on_separate_pool_threads(monkeypatch):
    threads, real = set(), softmax_module._chunk_max

    def slow_chunk_max(z, allowed):
        threads.add(threading.get_ident())
        time.sleep(0.05)  # long enough that a pool of 4 threads must use them all
        return real(z, allowed)

    monkeypatch.setattr(softmax_module, "_chunk_max", slow_chunk_max)
    with LutSoftmax(config=SoftmaxConfig(workers=4)) as lut:
        lut(torch.randn(2, 3, 40))
    assert len(threads) == 4 and threading.get_ident() not in threads


def test_mask_gives_exact_zeros_and_rows_sum_to_one():
    g = torch.Generator().manual_seed(3)
    z = torch.randn(2, 3, 8, 50, generator=g) * 4
    mask = torch.rand(1, 3, 8, 50, generator=g) < 0.6
    mask[..., 0] = True
    mask[0, 1, 5] = False  # a row with no allowed key
    z[0, 0, 2, 7] = -math.inf  # -inf scores count as masked too
    with LutSoftmax(config=SoftmaxConfig(digits=4, base=16, workers=3)) as lut:
        out = lut(z, mask)
    allowed = mask.expand_as(z) & torch.isfinite(z)
    assert (out[~allowed] == 0).all()
    sums = out.sum(-1)
    assert (sums[0, 1, 5] == 0).all()
    sums[:, 1, 5] = 1
    assert (sums - 1).abs().max() < 1e-6
    reference = torch.softmax(z.masked_fill(~mask, -math.inf), dim=-1)
    reference[:, 1, 5] = 0
    assert (out - reference).abs().max() < MAX_ABS_ERROR[4, 16]


def test_full_recompute_matches_sdpa_and_the_next_token(model):
    span, ends, hidden = model
    reference = span(hidden, span.new_cache(), past=0)
    with LutSoftmax(config=SoftmaxConfig(digits=4, base=16, workers=2)) as lut:
        ours = span(hidden, span.new_cache(), past=0, softmax=lut)
    explicit = span(hidden, span.new_cache(), past=0, softmax=lambda s: torch.softmax(s, dim=-1))
    relative = lambda out: float((out - reference).abs().max() / reference.abs().max())  # noqa: E731
    assert relative(explicit) < 1e-6  # the explicit attention path itself computes what SDPA computes
    assert relative(ours) < 3e-5  # measured 7.2e-6
    assert ends.logits(ours)[0, -1].argmax() == ends.logits(reference)[0, -1].argmax()


@pytest.mark.parametrize(
    "kwargs", [dict(digits=0), dict(base=1), dict(workers=0), dict(digits=63, base=2), dict(clamp=0.0)]
)
def test_bad_configs_are_refused(kwargs):
    with pytest.raises(InvalidParameter):
        SoftmaxConfig(**kwargs)
