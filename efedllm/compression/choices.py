"""The names of the codecs and SVD methods, and when ``auto`` picks randomized SVD, without torch: the command line and the configs offer them as
choices, and codec.py and svd.py check against the same tuples."""

from __future__ import annotations

CODECS: tuple[str, ...] = ("raw", "float16", "bfloat16", "svd")
"""How weights travel: raw float32 (lossless), float16, bfloat16 or svd factors."""
METHODS: tuple[str, ...] = ("full", "randomized", "auto")
"""How SVD factors are computed: full, randomized (torch.svd_lowrank) or auto (by the matrix's size)."""
RANDOMIZED_ABOVE = 1024
"""``auto`` uses randomized SVD when the smaller side of the matrix exceeds this (full SVD costs O(m n min(m, n)))."""
