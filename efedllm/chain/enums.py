"""The contracts' enums as Python IntEnums, built from ``schema.json`` (generated from the Solidity sources by
``schema.py``), so their members and values are never written out here. Member names are the Solidity names
in UPPER_SNAKE case (``CommitWork`` -> ``COMMIT_WORK``). This module imports nothing of the chain package, so
every other module (the bindings, the revert explanations) can use it without an import cycle.
"""

from __future__ import annotations

import json
import re
from enum import IntEnum
from pathlib import Path

SCHEMA = json.loads(Path(__file__).with_name("schema.json").read_text())


def upper_snake(name: str) -> str:
    """``CommitWork`` -> ``COMMIT_WORK``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).upper()


def _members(enum: str) -> dict[str, int]:
    return {upper_snake(name): value for value, name in enumerate(SCHEMA["enums"][enum])}


class _Labelled(IntEnum):
    @property
    def label(self) -> str:
        """How people read the member: ``NO_QUORUM`` -> ``no quorum``."""
        return self.name.lower().replace("_", " ")


Phase = IntEnum("Phase", _members("Phase"), module=__name__)
Phase.__doc__ = "IEpochSchedule.Phase: where an epoch is in its cycle."
Status = IntEnum("Status", _members("Status"), module=__name__)
Status.__doc__ = "IServerRegistry.Status of a server."
Outcome = _Labelled("Outcome", _members("Outcome"), module=__name__)
Outcome.__doc__ = "What finalizing an epoch did to a server (ITrustScoring.Outcome)."
SlashingRule = _Labelled("SlashingRule", _members("SlashingRule"), module=__name__)
SlashingRule.__doc__ = (
    "What a deployment's scorer slashes on (ITrustScoring.SlashingRule): accuracy, or the paper's S_i."
)
RewardRule = _Labelled("RewardRule", _members("RewardRule"), module=__name__)
RewardRule.__doc__ = "How a passing server's pool share is weighted (ITrustScoring.RewardRule): work units or stake."
ChallengeState = _Labelled("ChallengeState", _members("State"), module=__name__)
ChallengeState.__doc__ = "IServingChallenges.State: where a challenge of a signed answer stands."
ComputeDtype = IntEnum("ComputeDtype", _members("ComputeDtype"), module=__name__)
ComputeDtype.__doc__ = "IServerRegistry.ComputeDtype: the precision a server declares it computes in."
WeightFormat = IntEnum("WeightFormat", _members("WeightFormat"), module=__name__)
WeightFormat.__doc__ = "IServerRegistry.WeightFormat: full weights, or int8 weight-only (efedllm/model/quantize.py)."
