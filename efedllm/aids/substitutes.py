"""Faults that compute something other than what the server declared (issue 15): a precision, weights or depth
substituted behind the declared configuration. For demonstrations and tests only (``efedllm server run --fault``).

``lower``  computes as ``--fault-as`` (a lower precision: ``bfloat16`` where float32 is declared, ``float16`` or
           ``int8/bfloat16`` where bfloat16 is) and casts the answer back to the declared dtype: cheaper compute
           that looks like the declared one on the wire, in the records and on chain.
``layer``  skips the last layer of every step's span (a cheaper forward with plausible outputs).
``model``  runs another model's layers: every weight tensor perturbed by Gaussian noise at ``--fault-scale``
           times its standard deviation, then put in the declared configuration.
``svd``    runs a compressed model: every matrix cut to the rank that keeps 95% of its energy (eq. 12).

Each replaces the span's ``forward`` with one over a substitute span (loaded afresh from the float weights, so the
declared span is left as it was and the server still reports its declared configuration); the KV cache then holds
the substitute's tensors, as a real cheater's would.
"""

from __future__ import annotations

import dataclasses

import torch

from efedllm.aids.config import FaultConfig
from efedllm.chain.views import Serving
from efedllm.compression.svd import factor, full_svd, k_for_energy
from efedllm.model.serving import apply_serving
from efedllm.model.span import LayerSpan
from efedllm.server.config import ServerConfig

SVD_ENERGY = 0.95


def substitute(span: LayerSpan, config: ServerConfig, fault: FaultConfig, *, load) -> None:
    """Make ``span`` (served as ``config`` declares) compute as ``fault`` says; ``load(config, first, count)``
    loads a span as a server config says (server/main.py ``load_span``)."""
    kind, declared = fault.kind, span.dtype
    if kind == "layer":
        original = span.forward

        def skipping(hidden, cache, *, past, start=None, end=None, **kwargs):
            start = span.first if start is None else start
            end = span.first + span.count if end is None else end
            return original(hidden, cache, past=past, start=start, end=max(start, end - 1), **kwargs)

        span.forward = skipping
        return
    if kind == "lower":
        shadow = load(dataclasses.replace(config, **_named(fault.compute_as)), span.first, span.count)
    else:
        shadow = load(dataclasses.replace(config, dtype="float32", quantize=None), span.first, span.count)
        _change_weights(shadow, fault)
        shadow = apply_serving(shadow, config.serving)

    def substituted(hidden, cache, **kwargs):
        return shadow(hidden.to(shadow.dtype), cache, **kwargs).to(declared)

    span.forward = substituted


def _named(label: str) -> dict:
    """``int8/bfloat16`` -> dtype and quantize, as ServerConfig takes them (checked by Serving.named)."""
    weights, _, dtype = label.rpartition("/")
    named = {"dtype": dtype, "quantize": weights or None}
    Serving.named(**named)
    return named


@torch.no_grad()
def _change_weights(span: LayerSpan, fault: FaultConfig) -> None:
    generator = torch.Generator().manual_seed(fault.seed)
    for param in span.parameters():
        if fault.kind == "model":
            noise = torch.randn(param.shape, generator=generator, dtype=param.dtype)
            param.add_(noise.to(param.device) * (fault.scale * param.std()))
        elif param.dim() == 2:  # svd: every matrix, cut to the rank keeping SVD_ENERGY of it
            w = param.detach().cpu()
            thin = full_svd(w)
            k = k_for_energy(thin[1], SVD_ENERGY)
            param.copy_(factor(w, k=k, precomputed=thin).reconstruct(param.dtype).to(param.device))
