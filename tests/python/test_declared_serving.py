"""Serving in a declared configuration and the verifier's rule for it (issue 15), on the real model.

A server loads its span as it declares on chain (efedllm/model/serving.py); the verifier recomputes in the same
configuration (verifier/reference.py) and holds the deviation to that configuration's bound (verifier/rules.py).
Here a server's steps (a prefill, then decode steps through its KV cache, as it serves them) are recomputed in one
pass, as the verifier does: every honest configuration passes, every substitute (efedllm/aids/substitutes.py) of
the kinds the rule can see is caught. The float32 verifier of version 1, with its one bound, would have slashed
the honest bfloat16 server.
"""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer

from efedllm.aids.config import FaultConfig
from efedllm.aids.substitutes import substitute
from efedllm.chain.views import FLOAT32_FULL, Serving
from efedllm.model.serving import describe
from efedllm.server.config import ServerConfig
from efedllm.server.main import load_span
from efedllm.verifier import rules
from efedllm.verifier.checks import deviation
from efedllm.verifier.config import FLOAT32_TOLERANCE
from efedllm.verifier.reference import ReferenceModel

FIRST, COUNT = 10, 5
PROMPT = "Write a Python function that returns the n-th Fibonacci number, then explain how it works."
DECODE_STEPS = 3
quiet = {"progress": lambda *a: None}


@pytest.fixture(scope="module")
def reference():
    return ReferenceModel("smollm2-135m-instruct", device="cpu", **quiet)


@pytest.fixture(scope="module")
def inputs(reference):
    """The float32 model's hidden states entering layer FIRST for the prompt, then DECODE_STEPS more tokens."""
    ids = AutoTokenizer.from_pretrained(reference.folder)(PROMPT)["input_ids"]
    ids += [ids[-1]] * DECODE_STEPS  # any tokens do: the server's layers see what comes in
    return reference.recompute(reference.embed(ids), 0, FIRST)


def config(dtype: str = "float32", quantize: str | None = None) -> ServerConfig:
    return ServerConfig(
        model="smollm2-135m-instruct", first_layer=FIRST, num_layers=COUNT, device="cpu", dtype=dtype, quantize=quantize
    )


def served(config: ServerConfig, fault: FaultConfig | None = None):
    span = load_span(config, FIRST, COUNT, **quiet)
    if fault is not None:
        substitute(span, config, fault, load=lambda c, first, count: load_span(c, first, count, **quiet))
    return span


def serve_steps(span, inputs) -> list[tuple[int, torch.Tensor]]:
    """(tokens before, output) of a prefill and DECODE_STEPS one-token steps, as a server computes them."""
    hidden = inputs.to(span.dtype)
    prefill = hidden.shape[1] - DECODE_STEPS
    cache, steps, past = span.new_cache(), [], 0
    for chunk in [hidden[:, :prefill], *hidden[:, prefill:].split(1, dim=1)]:
        steps.append((past, span(chunk, cache, past=past)))
        past += chunk.shape[1]
    return steps


def worst(reference, inputs, steps, serving: Serving) -> float:
    """The worst deviation of the served steps from the verifier's one-pass recomputation as ``serving``."""
    expected = reference.recompute(inputs.to(steps[0][1].dtype), FIRST, FIRST + COUNT, serving=serving)
    return max(deviation(out, expected[:, past : past + out.shape[1]].to(out.dtype)) for past, out in steps)


HONEST = [("float32", None), ("bfloat16", None), ("float16", None), ("float32", "int8"), ("bfloat16", "int8")]


@pytest.mark.parametrize(("dtype", "quantize"), HONEST)
def test_an_honest_server_passes_in_its_declared_configuration(reference, inputs, dtype, quantize):
    cfg = config(dtype, quantize)
    span = served(cfg)
    assert describe(span) == (dtype, quantize or "full")
    error = worst(reference, inputs, serve_steps(span, inputs), cfg.serving)
    bound = rules.tolerance(cfg.serving, COUNT)
    assert error <= bound / 2, f"{cfg.serving.label}: honest deviation {error:.2e}, bound {bound:.1e}"


def test_the_float32_rule_alone_would_slash_an_honest_bfloat16_server(reference, inputs):
    """Version 1's verifier: float32 recomputation, one bound of 1e-3, for everyone."""
    span = served(config("bfloat16"))
    assert worst(reference, inputs, serve_steps(span, inputs), FLOAT32_FULL) > FLOAT32_TOLERANCE


CHEATS = [
    # (declared dtype, declared quantize, fault kind, computes as)
    ("float32", None, "lower", "bfloat16"),
    ("float32", "int8", "lower", "int8/bfloat16"),
    ("float32", None, "model", None),
    ("float32", None, "svd", None),
    ("float32", None, "layer", None),
    ("bfloat16", None, "layer", None),
    ("bfloat16", "int8", "layer", None),
    ("float16", None, "lower", "bfloat16"),
    ("float16", None, "model", None),
    ("bfloat16", None, "svd", None),
]


@pytest.mark.parametrize(("dtype", "quantize", "kind", "compute_as"), CHEATS)
def test_a_substitute_is_caught(reference, inputs, dtype, quantize, kind, compute_as):
    cfg = config(dtype, quantize)
    fault = FaultConfig(kind=kind, scale=0.01, compute_as=compute_as or "bfloat16")
    span = served(cfg, fault)
    assert describe(span) == (dtype, quantize or "full")  # it still looks like what it declared
    error = worst(reference, inputs, serve_steps(span, inputs), cfg.serving)
    bound = rules.tolerance(cfg.serving, COUNT)
    assert error > bound, f"{cfg.serving.label} {kind}: deviation {error:.2e} within the bound {bound:.1e}"


def test_rules_grow_with_the_span_and_cover_every_configuration():
    for dtype in ("float32", "bfloat16", "float16"):
        for quantize in (None, "int8"):
            serving = Serving.named(dtype=dtype, quantize=quantize)
            bounds = [rules.tolerance(serving, n) for n in (1, 5, 10, 30)]
            assert bounds == sorted(bounds) and bounds[0] > 0, serving.label
    assert rules.tolerance(FLOAT32_FULL, 30) == FLOAT32_TOLERANCE
    assert rules.tolerance(FLOAT32_FULL, 30, float32=5e-4) == 5e-4
