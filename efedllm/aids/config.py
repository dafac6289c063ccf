"""What a test aid may be asked to do (torch-free: the CLI reads it to build its flags' choices)."""

from __future__ import annotations

from dataclasses import dataclass

from efedllm.errors import EfedError

KINDS = (
    "noise",
    "replay",
    "skip",
    "inflate",
    "refuse",
    "equivocate",
    "equivocate-grouped",
    "lower",
    "layer",
    "model",
    "svd",
)
"""Server faults: see faults.py for what each kind does (substitutes.py: lower, layer, model, svd)."""
SUBSTITUTE_KINDS = ("lower", "layer", "model", "svd")
"""The faults that compute something other than the declared configuration (substitutes.py)."""
COMPUTE_AS = ("float32", "bfloat16", "float16", "int8/float32", "int8/bfloat16", "int8/float16")
"""What ``lower`` may compute as instead of the declared configuration."""
STEP_KINDS = ("noise", "replay", "skip")
"""The faults that change a step's output."""
EQUIVOCATING_KINDS = ("equivocate", "equivocate-grouped")
"""The faults that send an answer other than the one recorded (equivocate-grouped: only to steps that came
grouped, in one ``POST /steps``)."""
LIES = ("always-0", "always-1")
"""Verifier lies: the accuracy reported for every server, whatever the checks say."""


@dataclass(frozen=True, kw_only=True)
class FaultConfig:
    kind: str
    rate: float = 1.0
    scale: float = 0.05
    seed: int = 0
    compute_as: str = "bfloat16"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise EfedError(f"unknown fault {self.kind!r}; choose one of {', '.join(KINDS)}")
        if not (0 < self.rate <= (100 if self.kind == "inflate" else 1)) or self.scale <= 0:
            raise EfedError(f"fault rate {self.rate} or scale {self.scale} is out of range")
        if self.compute_as not in COMPUTE_AS:
            raise EfedError(f"unknown configuration {self.compute_as!r} to compute as; one of {', '.join(COMPUTE_AS)}")
