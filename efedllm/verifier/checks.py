"""Checking one opened task: is it the leaf the server committed to, and is its output what the layers compute?

A check has three outcomes. ``passed``; ``failed`` (the task could not be checked: the server was unreachable);
and ``fraud`` (the server answered with something provably wrong: a proof that does not reach the committed root,
hashes that do not match, an output the layers do not produce, or a refusal to open a committed leaf). The
distinction matters for scoring (verifier/scoring.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from efedllm import merkle
from efedllm.openings import Opening
from efedllm.tasks import ZERO_PREFIX, TaskRecord, next_prefix, tensor_hash
from efedllm.verifier.config import FLOAT32_TOLERANCE

TOLERANCE = {torch.float32: FLOAT32_TOLERANCE, torch.float16: 2e-2, torch.bfloat16: 6e-2}
"""Largest accepted relative deviation (see ``deviation``) by the dtype the verifier computes in. Honest float32
recomputation differs by about 1e-6 (a whole prefix at once instead of step by step, another thread count); the
bound leaves a wide margin while a perturbation of 1% of the activations' scale is far above it."""


@dataclass(frozen=True)
class Verdict:
    passed: bool
    fraud: bool
    reason: str

    @classmethod
    def ok(cls) -> Verdict:
        return cls(True, False, "ok")

    @classmethod
    def caught(cls, reason: str) -> Verdict:
        return cls(False, True, reason)

    @classmethod
    def unreachable(cls, reason: str) -> Verdict:
        return cls(False, False, reason)


def deviation(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """Worst relative L2 error over the tokens: max_t ||a_t - e_t|| / ||e_t||. Per token, so that a few huge
    activations (common in LLM residual streams) cannot hide an error in the rest."""
    a, e = actual.double().reshape(-1, actual.shape[-1]), expected.double().reshape(-1, expected.shape[-1])
    return ((a - e).norm(dim=-1) / e.norm(dim=-1).clamp_min(1e-12)).max().item()


Recompute = Callable[[torch.Tensor, int, int], torch.Tensor]
"""(inputs [1, tokens, hidden] from position 0, first layer, end layer) -> outputs for every input position."""


class PrefixMemo:
    """Recomputations reused across openings of one session. Attention is causal, so one pass over a session's
    longest opened prefix yields the outputs of every shorter prefix of it: checking the longest opening first,
    the others of that session cost no compute (their inputs must still equal the start of the longer one)."""

    def __init__(self, recompute: Recompute):
        self.recompute = recompute
        self._done: dict[tuple[int, int], list[tuple[torch.Tensor, torch.Tensor]]] = {}
        self.passes = 0

    def __call__(self, inputs: torch.Tensor, start: int, end: int) -> torch.Tensor:
        n = inputs.shape[1]
        for known, outputs in self._done.get((start, end), []):
            if known.shape[1] >= n and known.dtype == inputs.dtype and torch.equal(known[:, :n], inputs):
                return outputs[:, :n]
        outputs = self.recompute(inputs, start, end)
        self.passes += 1
        self._done.setdefault((start, end), []).append((inputs, outputs))
        return outputs


def check_opening(
    opening: Opening,
    *,
    server: str,
    epoch: int,
    index: int,
    root: bytes,
    work_units: int,
    num_layers: int,
    recompute: Recompute,
    tolerance: float,
) -> Verdict:
    """Check ``opening`` of leaf ``index`` against the on-chain commitment (``root``, ``work_units``)."""
    try:
        record = TaskRecord.from_fields(opening.record)
    except (KeyError, TypeError, ValueError, AttributeError):
        return Verdict.caught("the opened record is malformed")
    if (record.epoch, record.index) != (epoch, index):
        return Verdict.caught(f"asked for task {index} of epoch {epoch}, got {record.index} of {record.epoch}")
    if not merkle.verify(root, record.leaf(server), index, work_units, opening.proof):
        return Verdict.caught("the Merkle proof does not reach the committed root")
    if not 0 <= record.start < record.end <= num_layers:
        return Verdict.caught(f"layers {record.start}:{record.end} are not layers of the model")
    steps, inputs, output = opening.steps, opening.inputs, opening.output
    if (
        not steps
        or min(steps) < 1
        or inputs.dim() != 3
        or sum(steps) != inputs.shape[1]
        or sum(steps[:-1]) != record.past
        or output.shape != (1, steps[-1], inputs.shape[2])
        or inputs.dtype != output.dtype
    ):
        return Verdict.caught("the opened tensors do not have the record's shape")
    chunks = torch.split(inputs, steps, dim=1)
    prefix = ZERO_PREFIX
    for chunk in chunks[:-1]:
        prefix = next_prefix(prefix, tensor_hash(chunk))
    if prefix != record.prefix_hash:
        return Verdict.caught("the session prefix does not match the committed prefix hash")
    if tensor_hash(chunks[-1]) != record.input_hash or tensor_hash(output) != record.output_hash:
        return Verdict.caught("the opened input or output does not match the committed hashes")
    if not torch.isfinite(inputs).all():
        return Verdict.caught("the opened inputs are not finite")
    expected = recompute(inputs, record.start, record.end)[:, -steps[-1] :]
    error = deviation(output, expected.to(output.dtype))
    if not error <= tolerance:
        return Verdict.caught(f"the output deviates from recomputation by {error:.2e} (tolerance {tolerance:.0e})")
    return Verdict.ok()
