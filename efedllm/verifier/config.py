"""What a verifier checks and how it scores: options that the command line reads without loading torch.

The field docstrings are the help of ``efedllm verifier run``'s flags (cli/flags.py generates them from this class).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from efedllm.chain.params import ETHER, wei_from_ether
from efedllm.verifier.sampling import DEFAULT_SAMPLES

Policy = Literal["strict", "paper"]
POLICIES: tuple[str, ...] = get_args(Policy)
FLOAT32_TOLERANCE = 1e-3
"""Largest relative deviation of a float32 recomputation (verifier/checks.py has the other dtypes' bounds)."""


@dataclass(frozen=True, kw_only=True)
class VerifyConfig:
    samples: int = field(
        default=DEFAULT_SAMPLES,
        metadata={
            "default_help": "%(default)s, which catches a server corrupting 10%% of its tasks with probability >= 0.99"
        },
    )
    """Committed tasks opened per server per epoch (verifier/sampling.py)."""
    handed_checks: int = 8
    """Leaves of answers clients handed in opened per server per epoch, beyond ``samples`` (verifier/inbox.py)."""
    canaries: int = 1
    """Canary prompts per server per epoch, each written anew by the verifier's model and sent as a paying client
    (verifier/canaries.py)."""
    canary_steps: int = 2
    """Decode steps after each canary's prefill (greedy)."""
    grouped_canaries: float = 0.5
    """Fraction of epochs, drawn at random per server, whose canaries run several at once, their decode steps
    travelling in one request (``POST /steps``) as a busy client's do: a server cannot answer grouped steps wrongly
    and pass canaries that only ever come alone (verifier/canaries.py)."""
    canary_group: int = 2
    """Canaries at once in such an epoch (at least this many are sent to the server then)."""
    tolerance: float = field(default=FLOAT32_TOLERANCE, metadata={"default_help": "%(default)s, for float32"})
    """Largest relative deviation of a recomputed output."""
    policy: Policy = "strict"
    """Strict: one proven fraud makes acc 0; paper: acc = passed/checked."""


@dataclass(frozen=True, kw_only=True)
class VerifierAccount:
    """What ``efedllm verifier run`` does with its stake and with other verifiers' misbehaviour."""

    stake: int | None = field(
        default=None,
        metadata={
            "parse": wei_from_ether,
            "metavar": "ETH",
            "help": "when the bond is below minVerifierStake on start, stake up to this many ETH (at least "
            "minVerifierStake); without it an unstaked verifier refuses to start",
            "default_help": "none: stake with `efedllm verifier stake` first",
        },
    )
    """The bond to reach on start, in wei (typed in ETH)."""
    canary_deposit: int = field(
        default=ETHER // 100,
        metadata={
            "parse": wei_from_ether,
            "metavar": "ETH",
            "help": "on start, top the canary account's deposit in Payments up to this many ETH, from the canary "
            "account's own ether (never the verifier's, which would link the two on chain): canaries pay priced "
            "servers as a client does, and an unpaid canary is refused (402) and counts as a failed check; "
            "0 deposits nothing",
            "default_help": "0.01 ETH",
        },
    )
    """What the canary account keeps deposited in Payments on start, in wei (typed in ETH), to pay for canaries."""
    penalize: bool = True
    """After finalizing an epoch, penalize verifiers that committed scores without revealing them or withheld a
    seed share (anyone may; it costs this verifier gas; finalize itself slashes a reveal more than κ from a
    median)."""
    canary_keystore: Path | None = field(
        default=None,
        metadata={
            "metavar": "FILE",
            "default_help": "the key in $EFEDLLM_CANARY_PRIVATE_KEY, else --canary-node-account, else on a dev "
            "chain a fresh account of this verifier's own, derived from its key and given ether by the node, else "
            "none: priced servers get no canaries",
        },
    )
    """Encrypted JSON keystore of the client account canaries pay priced servers from (password from
    $EFEDLLM_CANARY_KEYSTORE_PASSWORD or a prompt): never a verifier's, and funded in Payments from an address not
    linked to this verifier (verifier/canaries.py)."""
    canary_node_account: int | None = field(
        default=None, metadata={"metavar": "INDEX", "default_help": "see --canary-keystore"}
    )
    """Pay canaries from the node's unlocked account INDEX (local dev chains such as Anvil)."""
