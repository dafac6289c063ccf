"""The settings ``efedllm analyze`` measures the model under, without torch: the command line generates its
flags from ``ImpactOptions`` (cli/flags.py) and impact.py takes the same defaults."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_ENERGIES = (0.90, 0.95, 0.99, 0.999)
DEFAULT_RATIOS = (0.5, 0.7, 0.9)
LINK_MBPS = 100.0


@dataclass(frozen=True, kw_only=True)
class ImpactOptions:
    energy: tuple[float, ...] = field(default=DEFAULT_ENERGIES, metadata={"metavar": "E"})
    """Retained energies for ptotal and model-impact."""
    ratio: tuple[float, ...] = field(default=DEFAULT_RATIOS, metadata={"metavar": "R"})
    """Compression ratios for model-impact."""
    link_mbps: float = LINK_MBPS
    """Link speed that transfer times are computed for, in Mbit/s."""
