"""Int8 weight-only quantization of a layer span, defined so that a verifier reproduces it bit for bit.

GPU providers commonly serve int8 weights. A verifier can only hold such a server to its declared configuration
if it can rebuild exactly the weights the server computes with, so the quantization here is a pure function of the
float weights, with no calibration data and no library-specific packing:

- per output channel (row of ``nn.Linear.weight``), symmetric: ``scale = max |w| over the input dim / 127``;
- ``q = round(w / scale)`` (round half to even) clamped to ``[-127, 127]``, stored as int8, the scale as float32;
- everything is computed in float32 with correctly rounded IEEE operations only (``abs``, ``amax``, a division
  and ``round``; no reciprocal multiply, no fused kernels), which give the same bits on every CPU and GPU;
- the forward dequantizes to the compute dtype, ``x @ (q.to(dtype) * scale.to(dtype)).T``, so a verifier can run
  the same int8 weights in float32 and bound only the compute-precision error, not the quantization error.

The span must be loaded in float32 (an exact upcast of float32, bfloat16 or float16 checkpoints): quantizing
weights that were first rounded to a lower precision can move a value across a rounding boundary, and the
verifier's ``q`` would then differ from the server's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from efedllm.errors import EfedError
from efedllm.model.span import LayerSpan

LEVELS = 127
"""Largest |q| of int8 symmetric quantization (-128 is left out so that the grid is symmetric around zero)."""


def quantize_weight(weight: torch.Tensor, *, levels: int = LEVELS) -> tuple[torch.Tensor, torch.Tensor]:
    """(q int8 [out, in], scale float32 [out]) of a float32 ``weight``; ``levels`` below 127 gives a coarser
    grid in the same format (the precision benchmark's 4-bit cheat uses 7). A row of zeros gets scale 0 and q 0."""
    if weight.dtype != torch.float32:
        raise EfedError(f"quantization reads float32 weights, not {weight.dtype} (it must match the verifier's)")
    if not 1 <= levels <= LEVELS:
        raise EfedError(f"levels must be in 1..{LEVELS}, not {levels}")
    scale = weight.abs().amax(dim=1) / levels
    divisor = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.round(weight / divisor[:, None]).clamp_(-levels, levels).to(torch.int8)
    return q, scale


class Int8Linear(nn.Module):
    """A Linear layer with int8 weights and one float32 scale per output channel, run in ``dtype``."""

    def __init__(self, *, q: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None, dtype: torch.dtype):
        super().__init__()
        self.register_buffer("q", q)
        self.register_buffer("scale", scale)
        self.register_buffer("bias", None if bias is None else bias.to(dtype))
        self.in_features, self.out_features, self.dtype = q.shape[1], q.shape[0], dtype

    @classmethod
    def from_linear(cls, linear: nn.Linear, *, dtype: torch.dtype, levels: int = LEVELS) -> Int8Linear:
        q, scale = quantize_weight(linear.weight.detach(), levels=levels)
        bias = None if linear.bias is None else linear.bias.detach()
        return cls(q=q, scale=scale, bias=bias, dtype=dtype)

    def dequantized(self, dtype: torch.dtype) -> torch.Tensor:
        """The weight the forward multiplies by: both factors cast to ``dtype`` first, then one product."""
        return self.q.to(dtype) * self.scale.to(dtype)[:, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return F.linear(x, self.dequantized(x.dtype), bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, dtype={self.dtype}"


def quantize_int8(span: LayerSpan, *, compute_dtype: torch.dtype = torch.float32, levels: int = LEVELS) -> LayerSpan:
    """Replace every ``nn.Linear`` of ``span`` (q, k, v, o, gate, up, down of each decoder layer) by an
    ``Int8Linear`` in place, and cast the remaining parameters (the RMSNorm weights) to ``compute_dtype``, the
    dtype the span then computes in. Returns ``span``. Two spans quantized from the same float32 weights hold
    bit-identical ``q`` and ``scale``, whatever ``compute_dtype``: that is what lets a verifier recompute an int8
    server's step in float32 from its own copy of the model."""
    if span.dtype != torch.float32:
        raise EfedError(
            f"load the span in float32 before quantizing it, not {span.dtype}: see efedllm/model/quantize.py"
        )
    linears = [(name, module) for name, module in span.named_modules() if isinstance(module, nn.Linear)]
    for name, linear in linears:
        parent_name, _, child = name.rpartition(".")
        parent = span.get_submodule(parent_name) if parent_name else span
        setattr(parent, child, Int8Linear.from_linear(linear, dtype=compute_dtype, levels=levels))
    for module in span.modules():
        if not isinstance(module, Int8Linear):
            for key, param in list(module.named_parameters(recurse=False)):
                setattr(module, key, nn.Parameter(param.detach().to(compute_dtype), requires_grad=False))
    span.dtype = compute_dtype
    return span


def is_quantized(span: LayerSpan) -> bool:
    return any(isinstance(m, Int8Linear) for m in span.modules())
