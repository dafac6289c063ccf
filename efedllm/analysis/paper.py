"""The paper's efficiency formulas (sections 4.1 to 4.3), computed as written, next to the numbers it states.

Counts are numbers of matrix elements read or written; bytes are 4 per element (float32), as in the paper.
Where a stated number does not follow from the formulas, ``claims()`` says so and by how much. The sizes of SVD
factors (eq. 10, 15) are the runtime codec's (compression/sizes.py), re-exported here with the rest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from efedllm.compression.sizes import compression_ratio, k_for_ratio, max_useful_rank, saves_bytes  # noqa: F401

BYTES_PER_ELEMENT = 4
TABLE2_DIMS = (5, 10, 100, 10_000)
PAPER_TABLE2 = {
    5: (250, 50, 0.80),
    10: (2_000, 200, 0.90),
    100: (2 * 10**6, 20_000, 0.99),
    10_000: (2 * 10**12, 2 * 10**8, 0.9999),
}
"""Table 2 as printed: dimension -> (centralized reads, federated reads, reduction)."""
GPT2_C_ATTN = (768, 2304)
PAPER_EQ10 = 0.5332
"""Section 4.2: GPT-2 ``h.1.attn.c_attn.weight`` with the top 40% of singular values -> compression ratio 53.32%."""
BERT_FFN = (3072, 768)
BERT_SEQUENCE, BERT_BATCH = 30, 10
TABLE3_RATIOS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
PAPER_FIG7_CLAIM = (0.7, 0.60)
"""Section 4.3: "setting the compression ratio to 0.7 can reduce the bandwidth by 60%"."""


# --- 4.1: Theorem 4.1 and Table 2 ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Reads:
    centralized: int
    """T_c = 2 n m k: every element of C reads a row of A and a column of B."""
    federated: int
    """T_f = m n + n k: A and B read once, partial results kept in block memory."""

    @property
    def reduction(self) -> float:
        return (self.centralized - self.federated) / self.centralized


def memory_reads(m: int, n: int, k: int) -> Reads:
    """Memory reads of C = A (m x n) B (n x k), as in the proof of Theorem 4.1."""
    return Reads(centralized=2 * n * m * k, federated=m * n + n * k)


def theorem_41(m: int, k: int) -> float:
    """Eq. 6: R_t = 1 - 1/(2k) - 1/(2m)."""
    return 1 - 1 / (2 * k) - 1 / (2 * m)


def table2(dims: Sequence[int] = TABLE2_DIMS) -> list[dict]:
    """Square d x d products: counts, eq. 6, and the paper's printed row for each d."""
    rows = []
    for d in dims:
        reads = memory_reads(d, d, d)
        rows.append(
            {
                "dim": d,
                "centralized": reads.centralized,
                "federated": reads.federated,
                "reduction": reads.reduction,
                "theorem": theorem_41(d, d),
                "paper": PAPER_TABLE2.get(d),
            }
        )
    return rows


# --- 4.2: eq. 9, 10, 13 ---------------------------------------------------------------------------------------


def eq10(m: int = GPT2_C_ATTN[0], n: int = GPT2_C_ATTN[1], *, fraction: float = 0.4) -> dict:
    """Eq. 10 when the top ``fraction`` of the min(m, n) singular values are kept (k rounded down)."""
    k = math.floor(fraction * min(m, n))
    return {
        "m": m,
        "n": n,
        "k": k,
        "ratio": compression_ratio(m, n, k),
        "saved": 1 - compression_ratio(m, n, k),
        "paper_approx_saved": (m - k) * (n - k) / (m * n),
        "paper_text_ratio": (m * k + k * k + k * n) / (m * n),
    }


def p_total(energies: Sequence[Sequence[float]]) -> float:
    """Eq. 13: product over layers of the mean retained energy of the layer's H parts."""
    return math.prod(sum(layer) / len(layer) for layer in energies)


# --- 4.3: eq. 15, Table 3, eq. 16 and 17 ----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Table3:
    m: int
    n: int
    t: int
    ratio: float
    k: int
    """eq. 15, rounded down to a whole rank."""

    @classmethod
    def of(cls, m: int, n: int, t: int, ratio: float) -> Table3:
        return cls(m=m, n=n, t=t, ratio=ratio, k=k_for_ratio(m, n, ratio))

    @property
    def storage(self) -> tuple[int, int]:
        m, n, k = self.m, self.n, self.k
        return m * n, (m + n + 1) * k

    @property
    def reads_plain(self) -> tuple[int, int]:
        """Memory read of the multiplication without the hierarchy: 2 m n t vs 2 (m + n) k t."""
        m, n, k, t = self.m, self.n, self.k, self.t
        return 2 * m * n * t, 2 * (m + n) * k * t

    @property
    def reads_hierarchy(self) -> tuple[int, int]:
        """With the hierarchy: m n + n t vs m k + k + n k + n t."""
        m, n, k, t = self.m, self.n, self.k, self.t
        return m * n + n * t, m * k + k + n * k + n * t


READINGS = {
    "svd, no hierarchy": ("reads_plain", "reads_plain"),
    "svd+hierarchy vs hierarchy": ("reads_hierarchy", "reads_hierarchy"),
    "svd+hierarchy vs plain": ("reads_plain", "reads_hierarchy"),
}
"""Eq. 16 needs an original and an optimized case; the paper does not say which Table 3 rows they are, so every
reading is computed: (row of the original WX, row of the optimized compressed WX)."""


def bandwidth_reduce(
    ratio: float, *, m: int = BERT_FFN[0], n: int = BERT_FFN[1], t: int = BERT_SEQUENCE, batch: int = BERT_BATCH
) -> dict[str, float]:
    """Eq. 16 with eq. 17 (weight and input reads from Table 3, plus the output write m t) for each reading.

    The batch makes X n x (batch t): without the hierarchy every column re-reads the weights, with it the weights
    are read once for the whole batch."""
    row = Table3.of(m, n, t * batch, ratio)
    output = m * t * batch
    rates = {}
    for name, (original_row, optimized_row) in READINGS.items():
        original = getattr(row, original_row)[0] + output
        optimized = getattr(row, optimized_row)[1] + output
        rates[name] = 1 - optimized / original
    return rates


def ratio_for_reduce(target: float, reading: str, *, steps: int = 10_000) -> float | None:
    """The compression ratio at which ``reading`` first reaches a bandwidth reduction of ``target``."""
    for i in range(steps, 0, -1):
        ratio = i / steps
        if ratio < 1 and bandwidth_reduce(ratio)[reading] >= target:
            return ratio
    return None


def claims() -> list[tuple[str, str, str]]:
    """(the paper's statement, what its own formulas give, verdict) for each checkable number."""
    out = []
    rows = table2()
    exact = all(r["paper"] and (r["centralized"], r["federated"]) == r["paper"][:2] for r in rows)
    out.append(
        (
            "Table 2 reads for dims 5, 10, 100, 10000",
            "2d^3 and 2d^2, reduction 1 - 1/d",
            "follows" if exact else "differs",
        )
    )
    e = eq10()
    out.append(
        (
            f"eq. 10, 768x2304, top 40% -> {PAPER_EQ10:.2%}",
            f"k={e['k']}: {e['ratio']:.2%}",
            "follows" if round(e["ratio"], 4) == PAPER_EQ10 else "differs",
        )
    )
    out.append(
        (
            "91.32% energy retained at 40% (GPT-2)",
            "needs GPT-2's weights, not available offline",
            "not checkable here; see `analyze energy` for the real model",
        )
    )
    out.append(
        (
            "savings approximated as (m-k)(n-k)",
            f"{e['paper_approx_saved']:.2%} vs exact {e['saved']:.2%} saved",
            "overstates the saving by (k^2 + k)/(m n)",
        )
    )
    out.append(
        (
            "sent size m k + k^2 + k n (text) vs (m + n + 1) k (eq. 10)",
            f"{e['paper_text_ratio']:.2%} vs {e['ratio']:.2%}",
            "inconsistent: Sigma_k is diagonal, k numbers suffice",
        )
    )
    square = compression_ratio(576, 576, math.floor(0.4 * 576))
    wide = eq10()["saved"], 1 - compression_ratio(768, 2304, math.floor(0.5 * 768))
    out.append(
        (
            "top 40-50% of singular values saves 40-60% of bandwidth",
            f"768x2304: {min(wide):.0%}-{max(wide):.0%} saved; square 576x576 at 40%: {1 - square:.0%}, at 50%: none",
            "holds only for strongly rectangular matrices, and then 33-47%, not 60%",
        )
    )
    claim_ratio, claim_rate = PAPER_FIG7_CLAIM
    rates = bandwidth_reduce(claim_ratio)
    got = ", ".join(f"{k}: {v:.1%}" for k, v in rates.items())
    at = ratio_for_reduce(claim_rate, "svd, no hierarchy")
    out.append(
        (
            f"Fig. 7: ratio {claim_ratio} reduces bandwidth by {claim_rate:.0%}",
            got,
            f"does not follow from eq. 16/17 under any reading; 60% is reached at ratio {at:.2f} (svd, no hierarchy)",
        )
    )
    return out
