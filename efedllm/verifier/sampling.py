"""Which committed tasks a verifier opens, and how likely that is to catch a cheater.

Indices come from the epoch's on-chain seed (``WorkLedger.sampleSeed``, drawn by ``TrustScoring.drawSeed`` after
every commitment was fixed, from salts that the verifiers committed before), so a server could not know at commit
time which of its tasks would be checked, nor choose the seed afterwards, and every verifier derives the same
sample: they can compare notes, and a server cannot tell one verifier's requests from another's.
"""

from __future__ import annotations

import math

from eth_abi import encode as abi_encode
from eth_utils import keccak
from web3 import Web3

DEFAULT_SAMPLES = 44
"""Per server per epoch: 1 - 0.9**44 = 0.990, so a server corrupting 10% of its tasks is caught with probability at
least 0.99 (more when an epoch holds few tasks, since sampling is without replacement)."""


def sample_indices(seed: bytes, server: str, work_units: int, samples: int) -> list[int]:
    """``min(samples, work_units)`` distinct leaf indices in ``[0, work_units)``, in draw order."""
    count = min(samples, work_units)
    if count == work_units:
        return list(range(work_units))
    chosen: list[int] = []
    seen: set[int] = set()
    counter = 0
    server = Web3.to_checksum_address(server)
    while len(chosen) < count:
        digest = keccak(abi_encode(["bytes32", "address", "uint256"], [seed, server, counter]))
        counter += 1
        index = int.from_bytes(digest, "big") % work_units
        if index not in seen:
            seen.add(index)
            chosen.append(index)
    return chosen


def detection_probability(*, corrupted: float, samples: int, work_units: int | None = None) -> float:
    """Probability that at least one sampled task is corrupted when a fraction ``corrupted`` of them is: without
    replacement from ``work_units`` tasks when given (hypergeometric), else with replacement."""
    if work_units is None:
        return 1.0 - (1.0 - corrupted) ** samples
    bad = round(corrupted * work_units)
    drawn = min(samples, work_units)
    if bad == 0:
        return 0.0
    if drawn > work_units - bad:
        return 1.0
    return 1.0 - math.comb(work_units - bad, drawn) / math.comb(work_units, drawn)


def samples_needed(*, corrupted: float, target: float) -> int:
    """Fewest samples (with replacement, the worst case) that catch a ``corrupted`` fraction with ``target``."""
    return math.ceil(math.log(1.0 - target) / math.log(1.0 - corrupted))
