"""Protocol parameters: the one place their defaults and units are written down.

Fractions are 18-decimal fixed point, as on chain (``ONE`` = 1.0); times are seconds; stakes are wei.
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
    """Transformer layers of the served model (SmolLM2-135M has 30)."""
    epoch_length: int = 60
    commit_work_window: int = 20
    commit_scores_window: int = 40
    reveal_window: int = 20
    finalize_window: int = 20
    genesis: int = 0
    """Start of epoch 0 (unix time); 0 means the deployment block."""
    min_stake: int = 1 * ETHER
    unbonding_period: int = 300
    """Must exceed epoch_length plus all windows, so that unbonding stake stays slashable."""
    slash_fraction: int = ONE // 2
    theta: int = ONE // 2
    """θ of eq. 4."""
    min_verifiers: int = 1
    immunity_epochs: int = 0

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
