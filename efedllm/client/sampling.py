"""How the client picks each next token: the one place the defaults of ``efedllm generate`` and
``DistributedModel.generate`` live (torch-free, so the command line reads it without loading a model)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Sampling:
    max_new_tokens: int = 64
    """Most tokens generated per answer."""
    temperature: float = 1.0
    """Sampling temperature."""
    top_k: int = 0
    """Sample from the k most likely tokens; 0: all."""
    top_p: float = 1.0
    """Nucleus sampling mass."""
    seed: int | None = None
    """Random seed for sampling."""
