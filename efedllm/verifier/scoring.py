"""acc_i for one epoch: open a sample of each server's committed tasks, recompute them, send canaries.

The paper's acc_i is passed / checked. Under that rule alone a server that corrupts a fraction f of its tasks
keeps acc near 1 - f and stays above θ whenever f < 1 - θ: at the default θ = 0.5 it could cheat on 40% of its
work for ever. So by default (policy ``strict``) one proven fraud in the sample (verifier/checks.py: a bad proof,
a wrong output, a refused opening of a committed leaf) sets acc_i to 0; checks that merely could not be made
(the server was unreachable) count as failures in passed / checked, as the paper says. ``--policy paper`` keeps
the plain ratio for comparison.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial

import requests

from efedllm.chain.params import ONE
from efedllm.chain.views import FLOAT32_FULL, Serving
from efedllm.model.serving import torch_dtype
from efedllm.openings import Opening
from efedllm.receipts import ReceiptDomain, SignedAnswer
from efedllm.verifier import rules
from efedllm.verifier.canaries import Canaries
from efedllm.verifier.checks import PrefixMemo, Verdict, check_opening
from efedllm.verifier.config import VerifyConfig
from efedllm.verifier.handed import check_handed, pick_handed
from efedllm.verifier.reference import ReferenceModel
from efedllm.verifier.remote import Target, fetch_opening
from efedllm.verifier.sampling import sample_indices

log = logging.getLogger("efedllm.verifier")


@dataclass
class Tally:
    address: str
    passed: int = 0
    checked: int = 0
    frauds: list[str] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)
    handed: int = 0
    """Checks of answers that clients handed in (verifier/handed.py)."""
    paid: int = 0
    """Passed openings whose step a client's receipt paid for (the leaf commits to it)..."""
    unpaid: int = 0
    """...and those no client paid for (a free server, or work nobody paid: self-dealing shows here)."""

    def add(self, verdict: Verdict) -> None:
        self.checked += 1
        self.passed += verdict.passed
        if verdict.paid is not None:
            self.paid += verdict.paid
            self.unpaid += not verdict.paid
        if verdict.fraud:
            self.frauds.append(verdict.reason)
        elif not verdict.passed:
            self.unreachable.append(verdict.reason)

    def accuracy(self, policy: str) -> int:
        """acc_i in 18-decimal fixed point."""
        if self.checked == 0 or (policy == "strict" and self.frauds):
            return 0
        return self.passed * ONE // self.checked


def check_openings(
    opened: dict[int, Opening],
    *,
    server: str,
    epoch: int,
    root: bytes,
    work_units: int,
    model: ReferenceModel,
    tolerance: float,
    receipts: ReceiptDomain,
    serving: Serving = FLOAT32_FULL,
) -> list[Verdict]:
    """Verdicts on a server's opened tasks, longest prefixes first so that each session is recomputed once: each
    recomputed as the server declared it serves (``serving``), within that configuration's bound
    (verifier/rules.py; ``tolerance`` is the bound of float32 compute)."""
    if not opened:
        return []
    memo = PrefixMemo(model.recompute_as(serving))
    return [
        check_opening(
            opened[index],
            server=server,
            epoch=epoch,
            index=index,
            root=root,
            work_units=work_units,
            num_layers=model.num_layers,
            recompute=memo,
            tolerance=partial(rules.tolerance, serving, float32=tolerance),
            dtype=torch_dtype(serving),
            receipts=receipts,
        )
        for index in sorted(opened, key=lambda i: -opened[i].inputs.shape[1])
    ]


def verify_server(
    target: Target,
    *,
    model: ReferenceModel,
    config: VerifyConfig,
    canaries: Canaries,
    sign,
    chain_id: int,
    receipts: ReceiptDomain,
    epoch: int,
    seed: bytes,
    root: bytes,
    work_units: int,
    handed: list[SignedAnswer] = (),
) -> Tally:
    """Every check of one server for ``epoch``: sampled openings of its commitment, the leaves of answers it
    signed for clients that they handed in (``handed``), then canaries (sent apart, as a client:
    verifier/canaries.py)."""
    tally = Tally(target.address)
    http = requests.Session()
    indices = sample_indices(seed, target.address, work_units, config.samples) if work_units else []
    to_compare, verdicts = pick_handed(handed, seed=seed, work_units=work_units, limit=config.handed_checks)
    for verdict in verdicts:
        tally.add(verdict)
    tally.handed += len(verdicts)
    indices += [i for i in to_compare if i not in indices]
    opened, down = {}, None
    for index in indices:
        if down is not None:  # unreachable a moment ago (after retries): do not wait out every other opening too
            tally.add(Verdict.unreachable(f"opening {index}: not tried, {down.reason}"))
            continue
        answer = fetch_opening(http, target, sign=sign, chain_id=chain_id, epoch=epoch, index=index)
        if isinstance(answer, Verdict):
            tally.add(answer)
            down = answer if not answer.fraud else None
        else:
            opened[index] = answer
    for verdict in check_openings(
        opened,
        server=target.address,
        epoch=epoch,
        root=root,
        work_units=work_units,
        model=model,
        tolerance=config.tolerance,
        receipts=receipts,
        serving=target.serving,
    ):
        tally.add(verdict)
    for index, signed in to_compare.items():
        if index in opened:
            tally.add(check_handed(opened[index], signed))
            tally.handed += 1
    for verdict in canaries.check(target):
        tally.add(verdict)
    # debug only: the caller reports the result (the verifier's progress line), so it shows once, not twice
    log.debug(
        "epoch %d: %s: %d/%d passed (%d openings, %d unreachable)%s",
        epoch,
        target.address,
        tally.passed,
        tally.checked,
        len(indices),
        len(tally.unreachable),
        f"; caught: {tally.frauds[0]}" if tally.frauds else "",
    )
    return tally
