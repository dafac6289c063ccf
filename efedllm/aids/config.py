"""What a test aid may be asked to do (torch-free: the CLI reads it to build its flags' choices)."""

from __future__ import annotations

from dataclasses import dataclass

from efedllm.errors import EfedError

KINDS = ("noise", "replay", "skip", "inflate", "refuse", "equivocate")
"""Server faults: see faults.py for what each kind does."""
STEP_KINDS = ("noise", "replay", "skip")
"""The faults that change a step's output."""
LIES = ("always-0", "always-1")
"""Verifier lies: the accuracy reported for every server, whatever the checks say."""


@dataclass(frozen=True, kw_only=True)
class FaultConfig:
    kind: str
    rate: float = 1.0
    scale: float = 0.05
    seed: int = 0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise EfedError(f"unknown fault {self.kind!r}; choose one of {', '.join(KINDS)}")
        if not (0 < self.rate <= (100 if self.kind == "inflate" else 1)) or self.scale <= 0:
            raise EfedError(f"fault rate {self.rate} or scale {self.scale} is out of range")
