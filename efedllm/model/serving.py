"""Loading a span as a server declared it serves (IServerRegistry.Serving): its compute dtype and weight format.

One function builds a span in a declared configuration from the float weights, for the server that serves it and
for the verifier that recomputes its work (efedllm/verifier/reference.py): full weights are cast to the compute
dtype; int8 weights are quantized from float32 weights by efedllm/model/quantize.py, a pure function of the float
weights, so that both hold bit-identical int8 weights and scales whatever hardware they run on.
"""

from __future__ import annotations

import copy

import torch

from efedllm import wire
from efedllm.chain.views import Serving
from efedllm.errors import EfedError
from efedllm.model.quantize import is_quantized, quantize_int8
from efedllm.model.span import LayerSpan


def torch_dtype(serving: Serving) -> torch.dtype:
    return wire.dtype_named(serving.dtype_name)


def apply_serving(span: LayerSpan, serving: Serving) -> LayerSpan:
    """Turn ``span``, loaded in float32, into ``serving``'s configuration in place; returns it."""
    if span.dtype != torch.float32:
        raise EfedError(f"load the span in float32 before applying a serving configuration, not {span.dtype}")
    dtype = torch_dtype(serving)
    if serving.quantize == "int8":
        return quantize_int8(span, compute_dtype=dtype)
    if dtype != torch.float32:
        span.to(dtype)
        span.dtype = dtype
    return span


def served_copy(span: LayerSpan, serving: Serving) -> LayerSpan:
    """A copy of the float32 ``span`` in ``serving``'s configuration (the verifier's, per declared configuration);
    ``span`` itself is left as it is."""
    return apply_serving(copy.deepcopy(span), serving)


def describe(span: LayerSpan) -> tuple[str, str]:
    """(compute dtype, weight format) of a loaded span, as ``/info`` reports them."""
    return str(span.dtype).removeprefix("torch."), "int8" if is_quantized(span) else "full"
