"""Linear layers for decode steps: a product with a few rows of hidden states, faster on the CPU.

A decode step multiplies one row (one token) per session by each weight matrix. On the CPU, PyTorch runs
``F.linear`` of two to a few rows as a GEMM that is slower per call than one row, while ``weight @ rows.T`` takes
another GEMM path that reads the weights faster: 1.2-1.6x for 2 to 4 rows over SmolLM2-135M's layer matrices, and
for its LM head (49152 x 576, the largest matrix a client holds) 2-5x for 1 to 4 rows, a single row doubled first
(``python bench/linear.py`` measures each case side by side). For a single row through the layers' smaller matrices
``F.linear`` stays the faster, and is kept. The result is the same product summed in another order: within float32
rounding of ``F.linear``'s (about 3e-7 relative; the verifier's float32 bound is 1e-3), and it applies to float32
CPU tensors only, so the bounds calibrated for half precision (verifier/rules.py) hold for the kernels they were
measured on.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FEW_ROWS = 8
"""Products with 2 to this many rows take the ``weight @ rows.T`` path; more rows (a prefill) run ``F.linear``."""
LARGE = 4 << 20
"""A matrix of at least this many elements (an LM head) takes the ``weight @ rows.T`` path for one row too."""


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear(x, weight, bias)``, computed as ``weight @ rows.T`` for a few float32 rows on the CPU."""
    rows = x.reshape(-1, x.shape[-1])
    n = rows.shape[0]
    few = 2 <= n <= FEW_ROWS or (n == 1 and weight.numel() >= LARGE)
    if not few or weight.dtype != torch.float32 or weight.device.type != "cpu" or x.dtype != torch.float32:
        return F.linear(x, weight, bias)
    out = (weight @ (torch.cat([rows, rows]) if n == 1 else rows).t())[:, :n].t()
    if bias is not None:
        out = out + bias
    return out.contiguous().view(*x.shape[:-1], weight.shape[0])


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters, same checkpoint names) whose forward is ``linear`` above."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)
