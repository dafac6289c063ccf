"""Checking one opened task: is it the leaf the server committed to, and is its output what the layers compute?

A check has three outcomes. ``passed``; ``failed`` (the task could not be checked: the server was unreachable);
and ``fraud`` (the server answered with something provably wrong: a proof that does not reach the committed root,
hashes that do not match, an output the layers do not produce, a refusal to open a committed leaf, or a leaf that
claims a client's receipt the opening cannot show). The distinction matters for scoring (verifier/scoring.py).

A leaf commits to the digest of the client's receipt that paid for its step (zero when none did). The opening
shows that receipt: its digest must be the leaf's, its client must have signed it, and it must pay this server for
the leaf's epoch or a neighbour (the window the server's Paywall accepts, as a client and a server may read the
chain's clock on either side of an epoch's end). A passed opening says whether its step was client-paid
(``Verdict.paid``), which the verifier counts per server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from efedllm import merkle
from efedllm.openings import Opening
from efedllm.receipts import UNPAID, ReceiptDomain
from efedllm.tasks import ZERO_PREFIX, TaskRecord, next_prefix, tensor_hash


@dataclass(frozen=True)
class Verdict:
    passed: bool
    fraud: bool
    reason: str
    paid: bool | None = None
    """For a passed opening: whether a client's receipt paid for its step; None for any other check."""

    @classmethod
    def ok(cls, *, paid: bool | None = None) -> Verdict:
        return cls(True, False, "ok", paid)

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
    tolerance: Callable[[int], float],
    dtype: torch.dtype = torch.float32,
    receipts: ReceiptDomain,
) -> Verdict:
    """Check ``opening`` of leaf ``index`` against the on-chain commitment (``root``, ``work_units``); the leaf's
    client receipt against ``receipts`` (the deployment's Payments). ``recompute`` computes as the server declared
    it serves, ``dtype`` is its declared compute dtype (the opened tensors must be recorded in it) and
    ``tolerance(layers)`` the largest deviation accepted for a step through that many layers (verifier/rules.py)."""
    try:
        record = TaskRecord.from_fields(opening.record)
    except (KeyError, TypeError, ValueError, AttributeError):
        return Verdict.caught("the opened record is malformed")
    if (record.epoch, record.index) != (epoch, index):
        return Verdict.caught(f"asked for task {index} of epoch {epoch}, got {record.index} of {record.epoch}")
    if not merkle.verify(root, record.leaf(server), index, work_units, opening.proof):
        return Verdict.caught("the Merkle proof does not reach the committed root")
    bad_receipt = check_receipt(opening, record, server=server, receipts=receipts)
    if bad_receipt is not None:
        return bad_receipt
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
    if output.dtype != dtype:
        return Verdict.caught(f"the opened tensors are {output.dtype}, not the declared {dtype}")
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
    error, bound = deviation(output, expected.to(output.dtype)), tolerance(record.end - record.start)
    if not error <= bound:
        return Verdict.caught(f"the output deviates from recomputation by {error:.2e} (tolerance {bound:.1e})")
    return Verdict.ok(paid=record.receipt != UNPAID)


def check_receipt(opening: Opening, record: TaskRecord, *, server: str, receipts: ReceiptDomain) -> Verdict | None:
    """A fraud verdict when the leaf's ``receipt`` is not the digest of a receipt its client signed to pay this
    server for this epoch (or a neighbour), or the opening shows a receipt the leaf does not claim; else None."""
    shown = opening.receipt
    if record.receipt == UNPAID:
        return None if shown is None else Verdict.caught("the opening shows a receipt its unpaid leaf does not commit")
    if shown is None:
        return Verdict.caught("the leaf claims a client's receipt the opening does not show")
    receipt = shown.receipt
    if receipts.digest(receipt) != record.receipt:
        return Verdict.caught("the opened receipt is not the one the leaf commits")
    try:
        signer = receipts.recover(receipt, shown.signature)
    except ValueError:
        return Verdict.caught("the leaf's client receipt carries no valid signature")
    if signer != receipt.client:
        return Verdict.caught(f"the leaf's client receipt is signed by {signer}, not by its client {receipt.client}")
    if receipt.server.lower() != server.lower() or abs(receipt.epoch - record.epoch) > 1:
        return Verdict.caught(
            f"the leaf's client receipt pays {receipt.server} for epoch {receipt.epoch}, not this server for epoch "
            f"{record.epoch}"
        )
    return None
