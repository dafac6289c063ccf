"""A client's spot checks: now and then, the same step on a second server of the same layers (issue 14).

With probability ``spot_check`` per hop and step, the client opens a session over the hop's layers on another
server that serves them in the same declared configuration (two precisions differ by their own rounding, far beyond
the float32 bound), replays the hop's whole input history there in one step (paid and signed like any
step), and compares the last tokens' outputs within ``spot_tolerance`` (the verifiers' float32 bound; relative L2
per token, verifier/checks.py ``deviation``). A mismatch is not a verdict: the client cannot tell which server is
wrong, and no honest server may be slashed on a client's word. So it keeps the first answer, logs the mismatch
and hands *both* signed answers to the verifiers (client/reports.py), whose openings and recomputation of those
two leaves decide (verifier/handed.py): a leaf that differs from its signed answer, or an output the layers do not
produce, is fraud; the honest server's passes.

Off by default: each check costs a second server's recomputation of the whole prefix, which the client pays for.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass

from efedllm.errors import EfedError
from efedllm.receipts import SignedAnswer
from efedllm.verifier.config import FLOAT32_TOLERANCE


@dataclass(frozen=True, kw_only=True)
class SpotCheck:
    spot_check: float = 0.0
    """Probability that a step of a hop is also sent to a second server of the same layers and compared (servers
    found on chain only; the mismatches go to the verifiers)."""
    spot_tolerance: float = FLOAT32_TOLERANCE
    """Largest relative deviation between the two servers' outputs (as the verifiers' float32 bound)."""


NO_SPOT_CHECKS = SpotCheck()


@dataclass(frozen=True, kw_only=True)
class Dispute:
    """Two servers' signed answers for the same step that disagree beyond the tolerance."""

    first: SignedAnswer
    second: SignedAnswer
    deviation: float


class SpotChecker:
    def __init__(self, config: SpotCheck, *, rng: random.Random | None = None):
        if not 0.0 <= config.spot_check <= 1.0 or not config.spot_tolerance > 0:
            raise EfedError("the spot-check probability must be in [0, 1] and its tolerance positive")
        self.config = config
        self.rng = rng or random.Random(secrets.randbits(64))
        self.checks = 0
        self.disputes: list[Dispute] = []

    def due(self) -> bool:
        return self.config.spot_check > 0 and self.rng.random() < self.config.spot_check
