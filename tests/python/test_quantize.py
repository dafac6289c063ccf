"""Int8 weight-only spans (efedllm/model/quantize.py): reproducible bit for bit, close to float32, and usable
wherever a float span is.

Reproducibility is what a verifier relies on: it quantizes its own float32 copy of the layers and must hold the
very weights the server computes with. Closeness is measured on the real model (SmolLM2-135M-Instruct) with the
float32 model's own hidden states as inputs: random inputs lack the few huge residual-stream activations of real
ones and say little about the error a verifier sees.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from transformers import AutoTokenizer

from efedllm.errors import EfedError
from efedllm.model.decoder import KVCache
from efedllm.model.head import ModelEnds
from efedllm.model.quantize import is_quantized, quantize_int8, quantize_weight
from efedllm.model.source import resolve
from efedllm.model.span import LayerSpan
from efedllm.verifier.checks import deviation

CPU = torch.device("cpu")
PROMPT = "The keeper climbed the hundred steps at dusk to light the lamp, as he had done for forty years."
FIRST, COUNT = 10, 3
INT8_BOUND = 0.03
"""Largest accepted deviation of the int8 span from float32 on real inputs: measured 1.48e-2 with float32 compute
and 1.58e-2 with bfloat16 compute for layers 10:13 on PROMPT (torch 2.x, CPU); the bound keeps 2x of headroom.
That is int8's own rounding, far above the float32 tolerance (1e-3), which is why a verifier recomputes with the
int8 weights themselves rather than comparing against float ones."""


@pytest.fixture(scope="module")
def folder():
    return resolve().folder


@pytest.fixture(scope="module")
def inputs(folder):
    """The float32 model's hidden states entering layer FIRST for the tokens of a real sentence."""
    ids = AutoTokenizer.from_pretrained(folder)(PROMPT, return_tensors="pt")["input_ids"]
    hidden = ModelEnds(folder, device=CPU).embed_tokens(ids)
    lower = LayerSpan(folder, 0, FIRST, device=CPU)
    return lower(hidden, lower.new_cache(), past=0)


def span(folder, **kwargs) -> LayerSpan:
    return LayerSpan(folder, FIRST, COUNT, device=CPU, **kwargs)


def test_quantizing_twice_gives_identical_weights(folder):
    a, b = quantize_int8(span(folder)), quantize_int8(span(folder), compute_dtype=torch.bfloat16)
    qa, qb = a.state_dict(), b.state_dict()
    ints = [k for k in qa if k.endswith(".q")]
    assert len(ints) == 7 * COUNT and all(qa[k].dtype == torch.int8 for k in ints)
    for key in ints + [k.removesuffix(".q") + ".scale" for k in ints]:
        assert torch.equal(qa[key], qb[key]), key  # the compute dtype does not change the stored weights
    assert not any(isinstance(m, nn.Linear) for m in a.modules()) and is_quantized(a)


def test_quantize_weight_follows_its_definition():
    w = torch.tensor([[0.5, -1.0, 0.25, 0.0], [0.0, 0.0, 0.0, 0.0], [3.0, 1.5, -0.75, 0.003]])
    q, scale = quantize_weight(w)
    assert torch.equal(scale, torch.tensor([1.0, 0.0, 3.0]) / 127)
    assert q.tolist() == [[64, -127, 32, 0], [0, 0, 0, 0], [127, 64, -32, 0]]  # 63.5 and -31.75 round to even/near
    assert (q.abs() <= 127).all() and q.dtype == torch.int8
    with pytest.raises(EfedError):
        quantize_weight(w.to(torch.bfloat16))


def test_int8_span_is_close_to_float32(folder, inputs):
    exact = span(folder)
    expected = exact(inputs, exact.new_cache(), past=0)
    int8 = quantize_int8(span(folder))
    error = deviation(int8(inputs, int8.new_cache(), past=0), expected)
    assert 1e-3 < error < INT8_BOUND  # really quantized, and still the same layers
    bf16 = quantize_int8(span(folder), compute_dtype=torch.bfloat16)
    assert deviation(bf16(inputs.to(torch.bfloat16), bf16.new_cache(), past=0), expected) < INT8_BOUND


def test_a_verifier_recomputes_an_int8_server_exactly(folder, inputs):
    """The server decodes step by step in float32; the verifier recomputes the whole prefix at once from its own
    quantization: float32 kernel-path differences only, far below the float32 tolerance (1e-3)."""
    server, verifier = quantize_int8(span(folder)), quantize_int8(span(folder))
    cache = server.new_cache()
    steps = [server(inputs[:, :16], cache, past=0)]
    steps += [server(inputs[:, t : t + 1], cache, past=t) for t in range(16, inputs.shape[1])]
    assert deviation(torch.cat(steps, dim=1), verifier(inputs, KVCache(), past=0)) < 1e-5


def test_quantized_span_accepts_what_a_float_span_accepts(folder, inputs):
    """Sub-ranges of layers, a batch, the verifier's explicit softmax, and bfloat16 compute all still run."""
    int8 = quantize_int8(span(folder))
    whole = int8(inputs, int8.new_cache(), past=0)
    part = int8(inputs, int8.new_cache(), past=0, start=FIRST, end=FIRST + 1)
    assert torch.equal(int8(part, int8.new_cache(), past=0, start=FIRST + 1, end=FIRST + COUNT), whole)
    batch = int8(torch.cat([inputs, inputs]), int8.new_cache(), past=0)
    assert batch.shape == (2, *inputs.shape[1:]) and deviation(batch[1:], whole) < 1e-5
    explicit = int8(inputs, int8.new_cache(), past=0, softmax=lambda scores: torch.softmax(scores, dim=-1))
    assert deviation(explicit, whole) < 1e-3
    bf16 = quantize_int8(span(folder), compute_dtype=torch.bfloat16)
    out = bf16(inputs.to(torch.bfloat16), bf16.new_cache(), past=0)
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()
    assert bf16.kv_bytes_per_token() == int8.kv_bytes_per_token() // 2


def test_quantizing_refuses_a_span_loaded_in_low_precision(folder):
    with pytest.raises(EfedError, match="float32"):
        quantize_int8(span(folder, dtype=torch.bfloat16))
