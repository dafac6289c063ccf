"""Protocol parameters: the one place their defaults and units are written down.

Fractions are 18-decimal fixed point, as on chain (``ONE`` = 1.0); times are seconds; stakes are wei. The field
docstrings are also the help of ``efedllm deploy``'s flags (cli/flags.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from efedllm.errors import InvalidParameter

ONE = 10**18
ETHER = 10**18


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
    min_stake: int = 1 * ETHER
    """Least bonded stake of an active server, in wei."""
    unbonding_period: int = 300
    """Seconds unstaked ether stays slashable before it can be withdrawn.

    Must exceed epoch_length plus all windows, so that unbonding stake stays slashable."""
    slash_fraction: int = ONE // 2
    """Share of bonded plus unbonding stake slashed on deactivation, 1e18 = 100%."""
    theta: int = ONE // 2
    """θ (eq. 4): least trust score S_i that keeps a server active and paid, 1e18 = 1.0."""
    min_verifiers: int = 1
    """Revealed accuracies needed to score a server in an epoch."""
    immunity_epochs: int = 0
    """Epochs after registering in which a low score is not slashed."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InvalidParameter(f"parameter {f.name} must be a non-negative integer, got {value!r}")
        settlement = self.epoch_length + self.settlement_delay
        if self.unbonding_period <= settlement:
            raise InvalidParameter(
                f"unbonding_period ({self.unbonding_period}s) must exceed an epoch plus its windows ({settlement}s)"
            )

    @property
    def settlement_delay(self) -> int:
        """Seconds from an epoch's end until its rewards can be claimed."""
        return self.commit_work_window + self.commit_scores_window + self.reveal_window + self.finalize_window

    def to_dict(self) -> dict[str, int]:
        return asdict(self)
