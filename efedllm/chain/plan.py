"""How the contracts are deployed and wired: the order, each constructor's arguments, and the role grants.

Both deployers run this plan: ``efedllm deploy`` through web3.py (``deploy.py``) and ``brownie run
scripts/deploy.py`` (and the brownie test fixtures), so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from efedllm.chain.params import ProtocolParams

Addresses = Mapping[str, str]


@dataclass(frozen=True)
class Step:
    """Deploy ``contract`` with the arguments ``args`` computes from the addresses deployed so far."""

    contract: str
    args: Callable[[Addresses], list]


@dataclass(frozen=True)
class Grant:
    """On ``contract``, grant ``role`` to the deployed contract ``grantee``."""

    contract: str
    role: str
    grantee: str


CONTRACTS = (
    "EpochSchedule",
    "RewardPool",
    "ServerRegistry",
    "VerifierStakes",
    "WorkLedger",
    "TrustScoring",
    "ServingChallenges",
    "Payments",
)

GRANTS = (
    Grant("RewardPool", "DEPOSITOR_ROLE", "ServerRegistry"),
    Grant("RewardPool", "DEPOSITOR_ROLE", "VerifierStakes"),
    Grant("RewardPool", "SCORER_ROLE", "TrustScoring"),
    Grant("ServerRegistry", "SLASHER_ROLE", "TrustScoring"),
    Grant("VerifierStakes", "SLASHER_ROLE", "TrustScoring"),
    Grant("WorkLedger", "SEEDER_ROLE", "TrustScoring"),
    Grant("ServerRegistry", "SLASHER_ROLE", "ServingChallenges"),
)

VERIFIER_ROLE_HOLDER = "TrustScoring"
"""The contract on which verifiers hold VERIFIER_ROLE (servers check openings against it)."""


def steps(params: ProtocolParams, governor: str) -> list[Step]:
    """The deployment steps, in order, for ``params`` with ``governor`` as admin of every contract."""
    p = params
    return [
        Step(
            "EpochSchedule",
            lambda a: [
                p.genesis,
                p.epoch_length,
                p.commit_work_window,
                p.commit_scores_window,
                p.reveal_window,
                p.finalize_window,
            ],
        ),
        Step("RewardPool", lambda a: [governor, a["EpochSchedule"], p.claim_period, p.verifier_share]),
        Step(
            "ServerRegistry",
            lambda a: [
                governor,
                a["EpochSchedule"],
                a["RewardPool"],
                p.num_layers,
                p.min_stake,
                p.unbonding_period,
                p.slash_fraction,
            ],
        ),
        Step("VerifierStakes", lambda a: [governor, a["EpochSchedule"], a["ServerRegistry"], a["RewardPool"]]),
        Step("WorkLedger", lambda a: [governor, a["EpochSchedule"], a["ServerRegistry"]]),
        Step(
            "TrustScoring",
            lambda a: [
                governor,
                a["EpochSchedule"],
                a["ServerRegistry"],
                a["WorkLedger"],
                a["RewardPool"],
                a["VerifierStakes"],
                p.theta,
                p.min_verifiers,
                p.immunity_epochs,
                (p.slashing_rule, p.reward_rule),  # ITrustScoring.Rules
                (p.min_verifier_stake, p.verifier_slash_fraction, p.kappa),  # ITrustScoring.VerifierRules
            ],
        ),
        Step(
            "ServingChallenges",
            lambda a: [
                governor,
                a["EpochSchedule"],
                a["ServerRegistry"],
                a["WorkLedger"],
                p.challenge_bond,
                p.response_window,
            ],
        ),
        Step("Payments", lambda a: [governor, a["EpochSchedule"], a["ServerRegistry"], p.client_withdrawal_delay]),
    ]
