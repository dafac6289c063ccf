"""Protocol parameters: the one place their defaults and units are written down.

Fractions are 18-decimal fixed point, as on chain (``ONE`` = 1.0); times are seconds; stakes are wei. The field
docstrings are also the help of ``efedllm deploy``'s flags (cli/flags.py); the stake flag takes ETH, as every
other stake amount on the command line does (``metadata["parse"]`` turns it into wei).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from decimal import Decimal, InvalidOperation

from efedllm.chain.enums import RewardRule, SlashingRule
from efedllm.errors import InvalidParameter

ONE = 10**18
ETHER = 10**18


def slashing_rule(text: str) -> int:
    """A slashing rule typed by name (``accuracy``, ``trust-score``) as its on-chain value."""
    try:
        return int(SlashingRule[text.strip().upper().replace("-", "_")])
    except KeyError:
        names = ", ".join(m.name.lower().replace("_", "-") for m in SlashingRule)
        raise ValueError(f"not a slashing rule: {text!r} (one of {names})") from None


def reward_rule(text: str) -> int:
    """A reward rule typed by name (``work``, ``stake``) as its on-chain value."""
    try:
        return int(RewardRule[text.strip().upper()])
    except KeyError:
        names = ", ".join(m.name.lower() for m in RewardRule)
        raise ValueError(f"not a reward rule: {text!r} (one of {names})") from None


def wei_from_ether(text: str) -> int:
    """An amount typed in ETH ("1", "0.5") as wei; ValueError for anything else (negative, past 18 decimals)."""
    try:
        wei = Decimal(text.strip()) * ETHER
    except InvalidOperation:
        raise ValueError(f"not a number of ETH: {text!r}") from None
    if not wei.is_finite() or wei < 0 or wei != wei.to_integral_value():
        raise ValueError(f"not a non-negative amount of ETH with at most 18 decimals: {text!r}")
    return int(wei)


@dataclass(frozen=True, kw_only=True)
class ProtocolParams:
    """Constructor arguments of a deployment.

    The defaults suit a local network that shows a whole epoch cycle in a few minutes; a public deployment
    wants epochs of hours and windows long enough for verifiers to recompute their samples.
    """

    num_layers: int = 30
    """Transformer layers of the served model."""
    epoch_length: int = 60
    """Seconds of an epoch's work phase."""
    commit_work_window: int = 20
    """Seconds after an epoch for servers to commit their work."""
    commit_scores_window: int = 40
    """Seconds after that for verifiers to commit scores."""
    reveal_window: int = 20
    """Seconds after that for verifiers to reveal them."""
    finalize_window: int = 20
    """Seconds after that to finalize the epoch's scores."""
    genesis: int = 0
    """Unix time epoch 0 starts; 0: the deployment block."""
    min_stake: int = field(
        default=1 * ETHER,
        metadata={
            "parse": wei_from_ether,
            "metavar": "ETH",
            "help": "least bonded stake of an active server, in ETH as `--stake` and `admin set min-stake` take it "
            "(0.5 is half an ether; the deployment file keeps wei)",
            "default_help": "1 ETH",
        },
    )
    """Least bonded stake of an active server, in wei (typed in ETH on the command line)."""
    unbonding_period: int = 300
    """Seconds unstaked ether stays slashable before it can be withdrawn.

    Must exceed epoch_length plus all windows, so that unbonding stake stays slashable."""
    slash_fraction: int = ONE // 2
    """Share of bonded plus unbonding stake slashed on deactivation, 1e18 = 100%."""
    theta: int = ONE // 2
    """θ: least median accuracy (or S_i, under the paper's rule) that keeps a server active and paid, 1e18 = 1.0."""
    slashing_rule: int = field(
        default=int(SlashingRule.ACCURACY),
        metadata={
            "parse": slashing_rule,
            "metavar": "accuracy|trust-score",
            "help": "what θ is compared with: the median accuracy (never slashes an honest server for a short "
            "span) or the paper's trust score S_i = acc·l/max(l)·w (eq. 4)",
            "default_help": "accuracy",
        },
    )
    """What θ is compared with (ITrustScoring.SlashingRule): 0 accuracy, 1 the paper's trust score."""
    reward_rule: int = field(
        default=int(RewardRule.WORK),
        metadata={
            "parse": reward_rule,
            "metavar": "work|stake",
            "help": "how a passing server's share of the pool is weighted: S_i x work units (the paper's; a server "
            "that sends itself work raises its share) or S_i x the stake it held through the epoch (self-dealing "
            "earns nothing; clients' fees pay for work); public chains need stake",
            "default_help": "work",
        },
    )
    """How a passing server's pool share is weighted (ITrustScoring.RewardRule): 0 work units, 1 epoch stake."""
    min_verifiers: int = 1
    """Revealed accuracies needed to score a server in an epoch."""
    immunity_epochs: int = 0
    """Epochs after registering in which a low score is not slashed."""
    min_verifier_stake: int = field(
        default=1 * ETHER,
        metadata={
            "parse": wei_from_ether,
            "metavar": "ETH",
            "help": "least bonded stake (VerifierStakes) of a verifier that commits scores, in ETH as "
            "`efedllm verifier stake` takes it (the deployment file keeps wei)",
            "default_help": "1 ETH",
        },
    )
    """Least bonded stake of a verifier that commits scores, in wei (typed in ETH on the command line)."""
    verifier_slash_fraction: int = ONE // 10
    """Share of a verifier's bonded plus unbonding stake slashed per penalty (a commit without reveal, or a reveal
    more than kappa from the median), 1e18 = 100%."""
    kappa: int = ONE // 2
    """κ: largest distance of a verifier's revealed accuracy from the server's final median that is not penalized,
    1e18 = 1.0 (Bittensor's Yuma clips at 0.5)."""
    verifier_share: int = ONE // 20
    """Share of each epoch's pool that its verifiers split equally (those that revealed and were not penalized for
    deviating), when some server earned a weight; 1e18 = 100%, at most 50%. Fixed at deployment."""
    claim_period: int = 30 * 24 * 3600
    """Seconds after an epoch settles during which its rewards can be claimed; then the rest can be rolled over."""
    challenge_bond: int = field(
        default=ETHER // 100,
        metadata={
            "parse": wei_from_ether,
            "metavar": "ETH",
            "help": "what a challenger of a server-signed answer puts up (ServingChallenges), in ETH; the server's "
            "if it proves the answer committed",
            "default_help": "0.01 ETH",
        },
    )
    """Wei a challenger of a server-signed answer puts up; the server's if it answers with the Merkle proof."""
    response_window: int = 60
    """Seconds a server has to answer a challenge of one of its signed answers with the leaf's Merkle proof."""
    withdrawal_delay: int = 0
    """Seconds a client's requested withdrawal from Payments waits, so that its receipts can still be redeemed; 0:
    the unbonding period.

    Must exceed epoch_length plus all windows, like unbonding_period."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InvalidParameter(f"parameter {f.name} must be a non-negative integer, got {value!r}")
        if self.slashing_rule not in set(SlashingRule):
            raise InvalidParameter(f"parameter slashing_rule must be one of {[int(r) for r in SlashingRule]}")
        if self.reward_rule not in set(RewardRule):
            raise InvalidParameter(f"parameter reward_rule must be one of {[int(r) for r in RewardRule]}")
        settlement = self.epoch_length + self.settlement_delay
        for name in ("unbonding_period", "withdrawal_delay"):
            if getattr(self, name) <= settlement and (name == "unbonding_period" or self.withdrawal_delay):
                raise InvalidParameter(
                    f"{name} ({getattr(self, name)}s) must exceed an epoch plus its windows ({settlement}s)"
                )

    @property
    def settlement_delay(self) -> int:
        """Seconds from an epoch's end until its rewards can be claimed."""
        return self.commit_work_window + self.commit_scores_window + self.reveal_window + self.finalize_window

    @property
    def client_withdrawal_delay(self) -> int:
        """The withdrawal delay Payments is deployed with."""
        return self.withdrawal_delay or self.unbonding_period

    def to_dict(self) -> dict[str, int]:
        return asdict(self)
