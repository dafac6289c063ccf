"""Truncated SVD of a weight matrix (paper section 4.2): factors, the choice of k, and reconstruction.

A matrix W (m x n) travels as U_k (m x k), the k singular values and V_k^T (k x n): (m + n + 1) k numbers instead
of m n (eq. 10). k comes from a retained energy e (eq. 12: the smallest k whose singular values squared reach
e of the total) or from a target compression ratio (eq. 15). Where (m + n + 1) k >= m n the factors would be no
smaller than the matrix, and the matrix is not factored at all (``plan`` returns None).

Retained energy is measured against the matrix itself, ||W_k||_F^2 / ||W||_F^2. For exact factors that is eq. 9;
for randomized factors it is still exact, because U_k U_k^T W = W_k is an orthogonal projection of W.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from efedllm.compression.choices import METHODS, RANDOMIZED_ABOVE
from efedllm.compression.sizes import k_for_ratio, max_useful_rank, saves_bytes
from efedllm.errors import InvalidParameter

Method = Literal["full", "randomized", "auto"]
Thin = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
"""A thin SVD (u, s, vh) as torch.linalg.svd(full_matrices=False) returns it."""
NITER = 4
"""Power iterations of randomized SVD: enough for slowly decaying spectra of trained weights (see bench/svd.py)."""
OVERSAMPLE = 32
"""Extra columns sampled beyond the wanted rank, which sharpen the top-k subspace."""


@dataclass(frozen=True, kw_only=True)
class Factors:
    """W ~ u @ diag(s) @ vh, with s in descending order."""

    u: torch.Tensor
    s: torch.Tensor
    vh: torch.Tensor
    energy: float
    """Retained energy ||W_k||_F^2 / ||W||_F^2 of these factors (eq. 9)."""
    method: str

    @property
    def k(self) -> int:
        return int(self.s.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.u.shape[0]), int(self.vh.shape[1])

    def reconstruct(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        u, s, vh = (t.to(dtype=torch.float32) for t in (self.u, self.s, self.vh))
        return ((u * s) @ vh).to(dtype)


def energy_curve(s: torch.Tensor) -> torch.Tensor:
    """Eq. 9 for every k: entry k-1 is the energy retained by the top k singular values."""
    power = s.double() ** 2
    return power.cumsum(0) / power.sum()


def k_for_energy(s: torch.Tensor, energy: float, *, total: float | None = None) -> int | None:
    """Eq. 12: the smallest k with sum_{i<=k} s_i^2 >= energy * total (total: ||W||_F^2, default sum of s^2).

    None when even all of ``s`` does not reach it (possible when ``s`` are only the top singular values)."""
    _check_energy(energy)
    power = s.double() ** 2
    total = float(power.sum()) if total is None else total
    reached = torch.nonzero(power.cumsum(0) >= energy * total * (1 - 1e-6))  # float32 singular values
    return int(reached[0]) + 1 if len(reached) else None


def pick_method(m: int, n: int, method: Method) -> str:
    if method not in METHODS:
        raise InvalidParameter(f"SVD method must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "auto":
        return "randomized" if min(m, n) > RANDOMIZED_ABOVE else "full"
    return method


def full_svd(w: torch.Tensor) -> Thin:
    """Thin SVD in float32 (float64 for float64 input)."""
    w = w if w.dtype == torch.float64 else w.float()
    return torch.linalg.svd(w, full_matrices=False)


def randomized_svd(
    w: torch.Tensor, rank: int, *, niter: int = NITER, oversample: int = OVERSAMPLE, seed: int = 0
) -> Thin:
    """Top-``rank`` SVD by Halko et al.'s randomized range finder (torch.svd_lowrank), seeded so that the same
    matrix always gives the same factors (a weight source must serve the bytes its manifest announced)."""
    w = w if w.dtype == torch.float64 else w.float()
    q = min(rank + oversample, *w.shape)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        u, s, v = torch.svd_lowrank(w, q=q, niter=niter)
    return u[:, :rank], s[:rank], v[:, :rank].T


def factor(w: torch.Tensor, *, k: int, method: Method = "full", precomputed: Thin | None = None) -> Factors:
    """Rank-``k`` factors of ``w``, whether or not they are smaller than ``w`` (k = min(m, n) is exact).

    ``precomputed``: the thin SVD of ``w`` made earlier (full method), for trying many k on one matrix."""
    m, n = _shape(w)
    if not 1 <= k <= min(m, n):
        raise InvalidParameter(f"rank must be in 1..{min(m, n)}, got {k}")
    chosen = "full" if precomputed is not None else pick_method(m, n, method)
    u, s, vh = precomputed or (full_svd(w) if chosen == "full" else randomized_svd(w, k))
    return _factors(u[:, :k], s[:k], vh[:k], total=_total(w), method=chosen)


def truncate(
    w: torch.Tensor,
    *,
    energy: float | None = None,
    ratio: float | None = None,
    k: int | None = None,
    method: Method = "full",
    precomputed: Thin | None = None,
) -> Factors | None:
    """Rank-k factors of ``w`` with k from exactly one of ``energy`` (eq. 12), ``ratio`` (eq. 15) or ``k``;
    None when factors would not be smaller than ``w`` ((m + n + 1) k >= m n)."""
    if sum(x is not None for x in (energy, ratio, k)) != 1:
        raise InvalidParameter("give exactly one of energy, ratio or k")
    m, n = _shape(w)
    if energy is None:
        k = k_for_ratio(m, n, ratio) if ratio is not None else k
        return factor(w, k=k, method=method, precomputed=precomputed) if saves_bytes(m, n, k) else None
    _check_energy(energy)
    total, chosen = _total(w), "full" if precomputed is not None else pick_method(m, n, method)
    if chosen == "randomized":
        found = _randomized_for_energy(w, energy, total)
        return None if found is None else _factors(*found, total=total, method=chosen)
    u, s, vh = precomputed or full_svd(w)
    k = k_for_energy(s, energy, total=total) or len(s)
    return _factors(u[:, :k], s[:k], vh[:k], total=total, method=chosen) if saves_bytes(m, n, k) else None


def _shape(w: torch.Tensor) -> tuple[int, int]:
    if w.dim() != 2:
        raise InvalidParameter(f"SVD needs a matrix, got shape {list(w.shape)}")
    return int(w.shape[0]), int(w.shape[1])


def _total(w: torch.Tensor) -> float:
    total = float(w.double().pow(2).sum())
    if total == 0.0:
        raise InvalidParameter("an all-zero matrix has no singular values to keep")
    return total


def _factors(u, s, vh, *, total: float, method: str) -> Factors:
    return Factors(
        u=u.contiguous(),
        s=s.contiguous(),
        vh=vh.contiguous(),
        method=method,
        energy=float((s.double() ** 2).sum() / total),
    )


def _randomized_for_energy(w: torch.Tensor, energy: float, total: float):
    """Grow the sampled rank until the top singular values reach ``energy`` of ||W||_F^2, or give up (None) once
    the rank no longer saves bytes."""
    m, n = w.shape
    limit = max_useful_rank(m, n)
    rank = min(limit, max(8, min(m, n) // 10))
    while True:
        u, s, vh = randomized_svd(w, rank)
        k = k_for_energy(s, energy, total=total)
        if k is not None:
            return u[:, :k], s[:k], vh[:k]
        if rank >= limit:
            return None
        rank = min(limit, rank * 2)


def _check_energy(energy: float) -> None:
    if not 0 < energy <= 1:
        raise InvalidParameter(f"retained energy must be in (0, 1], got {energy}")
