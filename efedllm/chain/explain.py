"""What reverts and chain values mean, in words: the display side of ``transactions.py``.

``MEANINGS`` maps each custom error of our contracts (and OpenZeppelin's) to a sentence built from its
arguments; ``utc`` and ``ether`` show timestamps and wei as people read them. Kept apart from sending, so
the command line can show values without importing the transactor, and so this module needs only the enums.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from eth_utils import keccak

from efedllm.chain.enums import Phase


def describe(name: str, args: dict[str, Any]) -> str | None:
    """What a custom error of our contracts (or OpenZeppelin's) means, in words; None for unknown errors."""
    meaning = MEANINGS.get(name)
    if meaning is None or isinstance(meaning, str):
        return meaning
    try:
        return meaning(args)
    except (KeyError, ValueError, OverflowError):  # an ABI whose argument names differ: the name still shows
        return None


def utc(timestamp: int) -> str:
    """A chain timestamp as people read it."""
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def ether(wei: int) -> str:
    return f"{wei / 10**18:,.6f} ETH"


def epochs(numbers) -> str:
    """``[3]`` -> "epoch 3", ``[3, 4]`` -> "epochs 3, 4": the words before a list of epochs."""
    numbers = list(numbers)
    return f"epoch{'s' if len(numbers) != 1 else ''} {', '.join(map(str, numbers))}"


def _phase(value: int) -> str:
    return Phase(value).name.lower().replace("_", "-")


ROLES = {
    keccak(text=name): name
    for name in ("GOVERNOR_ROLE", "VERIFIER_ROLE", "SLASHER_ROLE", "SCORER_ROLE", "DEPOSITOR_ROLE", "SEEDER_ROLE")
}
ROLES[b"\0" * 32] = "DEFAULT_ADMIN_ROLE"

MEANINGS: dict[str, str | Callable[[dict[str, Any]], str]] = {
    # ServerRegistry
    "AlreadyRegistered": "this address is already registered as a server",
    "NotRegistered": lambda a: f"{a['server']} is not registered as a server (register with `efedllm server run`)",
    "ServerIsDeactivated": "the server was slashed and deactivated: it can only unstake and withdraw what is left",
    "InsufficientStake": lambda a: f"stake {ether(a['stake'])} is below the minimum {ether(a['minStake'])}",
    "InvalidSpan": lambda a: (
        f"layers {a['firstLayer']}:{a['firstLayer'] + a['numLayers']} do not fit the model's {a['modelLayers']} layers"
    ),
    "InvalidEndpoint": "the endpoint URL is empty or too long",
    "ZeroAmount": "the amount must be more than zero",
    "AmountExceedsStake": lambda a: f"asked for {ether(a['amount'])} but only {ether(a['stake'])} is bonded",
    "NothingToWithdraw": "nothing is unbonding: request it first with `efedllm server unstake` (a verifier: "
    "`efedllm verifier unstake`)",
    "StillUnbonding": lambda a: f"still unbonding until {utc(a['unlockTime'])}",
    "TransferFailed": "the contract could not send the ether to the recipient",
    "TooManyServers": lambda a: f"more than 65535 active servers would share layer (or span length) {a['index']}",
    # RewardPool
    "NothingToClaim": "nothing to claim for these epochs",
    "AlreadyClaimed": lambda a: f"the rewards of epoch {a['epoch']} were already claimed",
    "EpochClosed": lambda a: f"epoch {a['epoch']} is over (the current epoch is {a['currentEpoch']})",
    "NotRollable": lambda a: f"the pool of epoch {a['epoch']} is not settled, empty, earned or already rolled over",
    "WeightAlreadyRecorded": lambda a: f"the reward weight of {a['server']} in epoch {a['epoch']} is already recorded",
    "PoolTooLarge": lambda a: (
        f"the pool of epoch {a['epoch']} holds {ether(a['poolSize'])}; adding {ether(a['amount'])} would pass its cap"
    ),
    "ClaimPeriodOver": lambda a: f"the claim period of epoch {a['epoch']} is over and its rest was rolled over",
    # EpochSchedule and every contract's phase checks
    "WrongPhase": lambda a: (
        f"epoch {a['epoch']} is in its {_phase(a['actual'])} phase; this needs {_phase(a['expected'])}"
    ),
    "InvalidSchedule": "the epoch schedule's lengths must be positive and its genesis not in the past",
    # WorkLedger
    "ServerNotEligible": lambda a: f"{a['server']} is not an active or inactive server, so it may not commit work",
    "WorkAlreadyCommitted": lambda a: f"work for epoch {a['epoch']} is already committed",
    "EmptyCommitment": "a work commitment needs a Merkle root and at least one work unit",
    "TooManyWorkUnits": lambda a: f"{a['workUnits']} work units exceed the cap of {a['max']}",
    "SeedAlreadyDrawn": lambda a: f"the sampling seed of epoch {a['epoch']} is already drawn",
    "NothingToDeclare": lambda a: (
        f"{a['server']} committed no work for epoch {a['epoch']}, or already declared its records lost"
    ),
    # TrustScoring
    "ScoresAlreadyCommitted": lambda a: f"this verifier already committed scores for epoch {a['epoch']}",
    "TooManyVerifiers": lambda a: f"epoch {a['epoch']} already has the most verifiers allowed",
    "NoCommitment": lambda a: f"this verifier committed no scores for epoch {a['epoch']}",
    "ScoresAlreadyRevealed": lambda a: f"this verifier already revealed its scores for epoch {a['epoch']}",
    "CommitmentMismatch": "the revealed scores and salt do not match the commitment",
    "LengthMismatch": lambda a: f"{a['servers']} servers but {a['accuracies']} accuracies",
    "EmptyReveal": "a reveal needs at least one server",
    "AccuracyOutOfRange": lambda a: f"accuracy {a['accuracy'] / 10**18:g} of {a['server']} is above 1.0",
    "ServersNotSorted": lambda a: f"servers must be in ascending address order (at index {a['index']})",
    "UnknownServer": lambda a: f"{a['server']} is not a registered server",
    "VerifierStakeTooLow": lambda a: (
        f"verifier {a['verifier']} has {ether(a['bonded'])} bonded, below minVerifierStake {ether(a['minimum'])}: "
        f"stake with `efedllm verifier stake --amount ETH`"
    ),
    "AlreadyPenalized": lambda a: f"verifier {a['verifier']} was already penalized for epoch {a['epoch']}",
    "ScoresWereRevealed": lambda a: f"verifier {a['verifier']} revealed its scores for epoch {a['epoch']}",
    "SeedShareAlreadyCommitted": lambda a: (
        f"verifier {a['verifier']} already committed a seed share for epoch {a['epoch']}"
    ),
    "NoSeedShare": lambda a: f"verifier {a['verifier']} committed no seed share for epoch {a['epoch']}",
    "SeedShareAlreadyRevealed": lambda a: (
        f"verifier {a['verifier']} already revealed its seed share of epoch {a['epoch']}"
    ),
    "SeedShareWasRevealed": lambda a: f"verifier {a['verifier']} revealed its seed share of epoch {a['epoch']}",
    "SeedNotReady": lambda a: (
        f"the seed of epoch {a['epoch']} waits for its verifiers' shares ({a['revealed']} of {a['committed']} "
        f"revealed) until {a['readyAt']}"
    ),
    "SeedNotDrawn": lambda a: f"the sampling seed of epoch {a['epoch']} is not drawn yet",
    "EmptySeed": "a seed of zero cannot be recorded",
    "VerifierAlreadyAdded": lambda a: f"verifier {a['verifier']} is already paid from epoch {a['epoch']}'s pool",
    # Governed and OpenZeppelin
    "ParameterOutOfBounds": lambda a: (
        f"{a['name'].rstrip(bytes(1)).decode()} = {a['value']} is outside [{a['min']}, {a['max']}]"
    ),
    "AccessControlUnauthorizedAccount": lambda a: (
        f"{a['account']} lacks {ROLES.get(a['neededRole'], '0x' + a['neededRole'].hex())}"
    ),
    "EnforcedPause": "governance has paused the contract",
    "ExpectedPause": "the contract is not paused",
    "ReentrancyGuardReentrantCall": "a reentrant call was refused",
}


def show(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)
