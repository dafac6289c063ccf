"""Checking the signed answers clients handed in (verifier/inbox.py) against what their servers committed.

An answer signed by a server for epoch e and leaf index i says: "leaf i of my epoch-e tree is this task". The
verifier opens leaf i like any sampled leaf (verifier/checks.py recomputes it) and also compares the committed
record with the signed answer: a server that sent a client one output and committed another (``equivocate``) is
caught by its own two signatures, whatever the recomputation says; one that signed an index beyond the leaves it
committed, likewise. Which handed leaves are opened, when there are more than the limit, follows the epoch's seed,
so that every verifier holding the same answers opens the same ones.
"""

from __future__ import annotations

from dataclasses import asdict

from eth_abi import encode as abi_encode
from eth_utils import keccak

from efedllm.openings import Opening
from efedllm.receipts import Answer, SignedAnswer
from efedllm.tasks import TaskRecord
from efedllm.verifier.checks import Verdict


def pick_handed(
    handed: list[SignedAnswer], *, seed: bytes, work_units: int, limit: int
) -> tuple[dict[int, SignedAnswer], list[Verdict]]:
    """(index -> answer for at most ``limit`` handed leaves to open, verdicts already reached): an answer for an
    index at or beyond ``work_units`` is fraud without opening anything."""
    beyond = sorted({s.answer.index for s in handed if s.answer.index >= work_units})
    caught = [Verdict.caught(f"it signed task {i} for a client but committed {work_units} task(s)") for i in beyond[:1]]
    within = {s.answer.index: s for s in handed if s.answer.index < work_units}
    order = sorted(within, key=lambda i: keccak(abi_encode(["bytes32", "uint256"], [seed, i])))
    return {i: within[i] for i in order[:limit]}, caught


def check_handed(opening: Opening, signed: SignedAnswer) -> Verdict:
    """Whether the opened (and separately proven) record of a leaf is the task its server signed for a client."""
    try:
        committed = Answer.of(TaskRecord.from_fields(opening.record))
    except (KeyError, TypeError, ValueError, AttributeError):
        return Verdict.caught("the opened record is malformed")
    if committed == signed.answer:
        return Verdict.ok()
    differs = [name for name, value in asdict(committed).items() if getattr(signed.answer, name) != value]
    return Verdict.caught(
        f"task {signed.answer.index}: the committed leaf differs from the answer it signed for a client "
        f"({', '.join(differs)})"
    )
