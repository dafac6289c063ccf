"""The verifier's softmax of paper section 4.4: shift (eq. 21), K-digit base-b lookup tables (eq. 22), W workers.

A verifier that recomputes attention must check ``exp``, which is not arithmetic. Following zkLLM (the paper's
[26]), every exponential becomes a product of table lookups on integer digits, so the only non-arithmetic step is
a lookup into K small tables that the verifier builds once.

* **Shift (eq. 21).** For each row (one query of one head) ``z_hat`` is the largest score among the keys the mask
  allows, taken as the maximum of the W workers' chunk maxima. Every shifted score ``-x = z - z_hat`` is then
  ``<= 0``; the maximal key has ``x = 0`` and gets ``exp = 1`` exactly, so the denominator is at least 1.
* **Digits (eq. 22).** ``x`` is quantised to the integer ``q = round(x / scale)`` with
  ``scale = clamp / (b**K - 1)``, so the K base-b digits ``d_j`` of ``q`` (``q = sum_j d_j b**j``, ``d_j in [0, b)``)
  cover ``x in [0, clamp]`` with a resolution of ``scale``. Then
  ``exp(-x) ~= exp(-q scale) = prod_j LUT_j[d_j]`` with ``LUT_j[d] = exp(-d b**j scale)``: K tables of b entries.
  Quantisation moves every exponent by at most ``scale / 2`` (relative error <= ``scale / 2`` before
  normalisation). Scores more than about ``clamp`` below the row maximum do not fit in K digits and get
  ``exp = 0``; the true value there is below ``exp(-clamp)``. The default clamp is ``ln(2 b**K) + 3``:
  ``ln(2 b**K)`` alone would make the two errors equal for one entry (``scale / 2 = exp(-clamp)``), but the clamp
  error adds up over every dropped key of a row; on the real model's attention scores the error is smallest and
  flat for offsets of +2 to +4 (docs/SOFTMAX.md), and +3 leans towards the longer rows of long sessions.
  Accuracy depends only on ``b**K`` and the clamp; K and b trade table size (``K b`` entries) against lookups and
  multiplications per score (K). With float32 scores, more than about 2**24 levels add no precision.
* **Workers.** The key axis is cut into W chunks. Each worker reports its chunk's row maxima; the coordinator
  combines them into ``z_hat``; each worker then computes its chunk's exponentials and partial row sums; the
  coordinator adds the sums and normalises. Partial sums are exact integers (fixed point, ``2**-f`` with f chosen
  from the row length only), and every other step is an exactly rounded elementwise operation or a maximum, so
  the output is bit-for-bit the same for any W. The pool is a ``ThreadPoolExecutor``: torch releases the GIL
  inside its kernels, so threads run the chunks concurrently without copying tensors between processes, which is
  what a verifier spreading work over its own cores needs (workers on other machines would exchange the same two
  messages: chunk maxima, then chunk sums).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property, lru_cache

import torch

from efedllm.errors import InvalidParameter

_MAX_LEVELS = 2**62
"""Quantised shifts are int64; b**K must stay below this."""
CLAMP_OFFSET = 3.0
"""Added to ``ln(2 b**K)`` for the default clamp: measured, see the module docstring."""


@dataclass(frozen=True, kw_only=True)
class SoftmaxConfig:
    digits: int = 4
    """K: digits per shifted score."""
    base: int = 16
    """b: the base of the digits; each digit position has a table of b entries."""
    workers: int = 2
    """W: chunks of the key axis, each computed by one worker of the pool."""
    clamp: float | None = None
    """Largest shift ``x = z_hat - z`` that the K digits represent; larger ones give exp = 0.
    None: ``ln(2 b**K) + CLAMP_OFFSET`` (see the module docstring)."""

    def __post_init__(self):
        if self.digits < 1 or self.base < 2 or self.workers < 1:
            raise InvalidParameter(
                f"softmax needs digits >= 1, base >= 2 and workers >= 1 (got K={self.digits}, "
                f"b={self.base}, W={self.workers})"
            )
        if self.base**self.digits >= _MAX_LEVELS:
            raise InvalidParameter(f"base**digits = {self.base}**{self.digits} does not fit in 62 bits")
        if self.clamp is not None and not self.clamp > 0:
            raise InvalidParameter(f"softmax clamp must be positive (got {self.clamp})")

    @property
    def levels(self) -> int:
        """b**K: how many distinct shifts the digits represent."""
        return self.base**self.digits

    @property
    def clamp_range(self) -> float:
        return self.clamp if self.clamp is not None else math.log(2 * self.levels) + CLAMP_OFFSET

    @property
    def scale(self) -> float:
        """The fixed-point step: shift ``x`` is represented as ``q * scale``, q an integer in [0, b**K)."""
        return self.clamp_range / (self.levels - 1)

    @property
    def table_entries(self) -> int:
        return self.digits * self.base


@lru_cache(maxsize=64)
def digit_tables(*, digits: int, base: int, scale: float) -> torch.Tensor:
    """``[K, b]`` float64 on the CPU: row j holds ``exp(-d b**j scale)`` for d in [0, b). Built once per (K, b,
    scale); callers must not modify it."""
    d = torch.arange(base, dtype=torch.float64)
    weights = torch.tensor([float(base**j) for j in range(digits)], dtype=torch.float64)
    return torch.exp(-(weights[:, None] * d[None, :]) * scale)


class LutSoftmax:
    """Softmax over the last dimension by eq. 21 and 22, split across ``config.workers`` threads.

    Callable as ``softmax(scores, mask=None)``: ``mask`` (boolean, broadcastable to ``scores``, True = the key
    takes part, as in ``scaled_dot_product_attention``) and ``-inf`` scores both give exactly 0. A row with no
    allowed key is all zeros. Fits ``LayerSpan.forward(..., softmax=...)`` as it is. Close it (or use ``with``)
    to stop the pool.
    """

    def __init__(self, *, config: SoftmaxConfig = SoftmaxConfig()):
        self.config = config
        self.pool = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="softmax-worker")

    def __enter__(self) -> LutSoftmax:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    @cached_property
    def _tables(self) -> torch.Tensor:
        c = self.config
        return digit_tables(digits=c.digits, base=c.base, scale=c.scale)

    def __call__(self, scores: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        work = torch.float64 if scores.dtype == torch.float64 else torch.float32
        z = scores.to(work)
        allowed = torch.isfinite(z) if mask is None else mask.expand_as(z) & torch.isfinite(z)
        if z.shape[-1] == 0:
            return scores.clone()
        chunks = min(self.config.workers, z.shape[-1])  # chunks of the key axis, none of them empty
        parts = list(zip(torch.tensor_split(z, chunks, dim=-1), torch.tensor_split(allowed, chunks, dim=-1)))
        maxima = list(self.pool.map(lambda p: _chunk_max(*p), parts))
        z_hat = torch.stack(maxima).amax(dim=0)
        z_hat = torch.where(torch.isfinite(z_hat), z_hat, torch.zeros_like(z_hat))  # rows with no allowed key
        tables = self._tables.to(device=z.device, dtype=work)
        bits = 62 - z.shape[-1].bit_length()  # N values <= 1 in fixed point 2**-bits: the sum fits in int64
        results = list(self.pool.map(lambda p: self._chunk_exp(p[0], p[1], z_hat, tables, bits), parts))
        total = torch.stack([s for _, s in results]).sum(dim=0)  # exact integer sum: independent of W
        denominator = (total.to(torch.float64) * 2.0**-bits).to(work)  # scaling by a power of 2 is exact
        denominator = torch.where(denominator > 0, denominator, torch.ones_like(denominator))
        return (torch.cat([y for y, _ in results], dim=-1) / denominator).to(scores.dtype)

    def _chunk_exp(
        self, z: torch.Tensor, allowed: torch.Tensor, z_hat: torch.Tensor, tables: torch.Tensor, bits: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One worker's part: the chunk's exponentials by table lookups, and their row sums in fixed point."""
        c = self.config
        q = torch.round((z_hat - z) / c.scale)  # eq. 21 then quantisation: x = z_hat - z >= 0
        inside = allowed & (q <= c.levels - 1)  # beyond the K digits (or masked): exp = 0
        q = torch.where(inside, q, torch.zeros_like(q)).to(torch.int64)
        y = torch.ones_like(z)
        for j in range(c.digits):  # eq. 22: exp(-x) = prod_j LUT_j[d_j]; a loop over digit positions only
            y = y * torch.take(tables[j], torch.remainder(q, c.base))
            q = torch.div(q, c.base, rounding_mode="floor")
        y = torch.where(inside, y, torch.zeros_like(y))
        fixed = torch.round(y.to(torch.float64) * 2.0**bits).to(torch.int64)
        return y, fixed.sum(dim=-1, keepdim=True)


def _chunk_max(z: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """One worker's first message: the row maxima of its chunk over allowed keys (-inf where none)."""
    return torch.where(allowed, z, torch.full_like(z, -math.inf)).amax(dim=-1, keepdim=True)
