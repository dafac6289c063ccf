"""What a verifier checks and how it scores: options that the command line reads without loading torch."""

from __future__ import annotations

from dataclasses import dataclass

from efedllm.verifier.sampling import DEFAULT_SAMPLES

POLICIES = ("strict", "paper")


@dataclass(frozen=True, kw_only=True)
class VerifyConfig:
    samples: int = DEFAULT_SAMPLES
    """Openings per server per epoch (verifier/sampling.py: 44 catch a 10% corrupter with p >= 0.99)."""
    canaries: int = 1
    """Canary prompts per server per epoch."""
    canary_steps: int = 2
    """Greedy decode steps after each canary's prefill."""
    tolerance: float = 1e-3
    policy: str = "strict"
