"""Sizes of truncated SVD factors (paper eq. 10 and 15): what the codec needs to choose k at run time.

They live here, apart from the paper's analysis (efedllm/analysis), so that a server or a weight source decides
what to send without importing the analysis and its plotting.
"""

from __future__ import annotations

import math

from efedllm.errors import InvalidParameter


def compression_ratio(m: int, n: int, k: int) -> float:
    """Eq. 10: numbers sent as factors over numbers in the matrix."""
    return (m + n + 1) * k / (m * n)


def saves_bytes(m: int, n: int, k: int) -> bool:
    """Whether rank-k factors are smaller than the m x n matrix itself."""
    return (m + n + 1) * k < m * n


def max_useful_rank(m: int, n: int) -> int:
    """The largest k whose factors are still smaller than the matrix."""
    return (m * n - 1) // (m + n + 1)


def k_for_ratio(m: int, n: int, ratio: float) -> int:
    """Eq. 15: the rank whose factors take ``ratio`` of the matrix's size (rounded down, at least 1)."""
    if not 0 < ratio <= 1:
        raise InvalidParameter(f"compression ratio must be in (0, 1], got {ratio}")
    return max(1, math.floor(m * n * ratio / (m + n + 1) + 1e-9))
