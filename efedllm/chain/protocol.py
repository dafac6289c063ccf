"""Python bindings of the deployed protocol, built from the deployment file alone.

``Protocol`` is what servers, verifiers, clients and the command line hold: the five contracts as web3
contract objects, typed views of what the dashboard and the router need, and a transactor for the signer.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from functools import cached_property

from web3 import Web3

from efedllm.chain.connection import Signer
from efedllm.chain.deployment import Deployment
from efedllm.chain.transactions import ErrorDecoder, Transactor
from efedllm.errors import EfedError


class Status(IntEnum):
    NONE = 0
    ACTIVE = 1
    INACTIVE = 2
    DEACTIVATED = 3


class Outcome(IntEnum):
    """What finalizing an epoch did to a server (ITrustScoring.Outcome)."""

    NONE = 0
    PASSED = 1
    SLASHED = 2
    IMMUNE = 3
    FAILED = 4
    NO_QUORUM = 5

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", " ")


class Phase(IntEnum):
    FUTURE = 0
    WORK = 1
    COMMIT_WORK = 2
    COMMIT_SCORES = 3
    REVEAL_SCORES = 4
    FINALIZE = 5
    SETTLED = 6


@dataclass(frozen=True)
class ServerRecord:
    address: str
    endpoint: str
    first_layer: int
    num_layers: int
    status: Status
    registered_epoch: int
    active_since: int
    times_slashed: int
    unlock_time: int
    stake: int
    unbonding: int
    total_slashed: int
    weight: int

    @property
    def layers(self) -> range:
        return range(self.first_layer, self.first_layer + self.num_layers)

    @classmethod
    def from_tuple(cls, address: str, t: tuple) -> ServerRecord:
        return cls(address, t[0], t[1], t[2], Status(t[3]), *t[4:])


class Protocol:
    def __init__(self, w3: Web3, deployment: Deployment, signer: Signer | None = None):
        chain_id = w3.eth.chain_id
        if chain_id != deployment.chain_id:
            raise EfedError(f"wrong network: the deployment is for chain {deployment.chain_id}, the RPC serves {chain_id}")
        self.w3, self.deployment, self.signer = w3, deployment, signer
        self.decoder = ErrorDecoder(record.abi for record in deployment.contracts.values())
        for name, record in deployment.contracts.items():  # a stale file (a dev chain restarted) fails here, by name
            if not w3.eth.get_code(record.address):
                raise EfedError(f"no contract at {record.address} ({name}) on chain {chain_id}: the deployment file "
                                f"does not match this chain; deploy again or use the file of this deployment")

    def contract(self, name: str):
        record = self.deployment.contracts[name]
        return self.w3.eth.contract(address=record.address, abi=record.abi)

    @cached_property
    def schedule(self):
        return self.contract("EpochSchedule")

    @cached_property
    def registry(self):
        return self.contract("ServerRegistry")

    @cached_property
    def ledger(self):
        return self.contract("WorkLedger")

    @cached_property
    def scoring(self):
        return self.contract("TrustScoring")

    @cached_property
    def pool(self):
        return self.contract("RewardPool")

    @cached_property
    def tx(self) -> Transactor:
        if self.signer is None:
            raise EfedError("this command sends transactions: give a key ($EFEDLLM_PRIVATE_KEY or --keystore)")
        return Transactor(self.w3, self.signer, self.decoder)

    # ------------------------------------------------------------------ views

    def current_epoch(self) -> int:
        return self.schedule.functions.currentEpoch().call()

    def phase(self, epoch: int) -> Phase:
        return Phase(self.schedule.functions.phase(epoch).call())

    def servers(self, *, page: int = 200) -> list[ServerRecord]:
        count = self.registry.functions.serverCount().call()
        records: list[ServerRecord] = []
        for offset in range(0, count, page):
            addrs, tuples = self.registry.functions.getServers(offset, page).call()
            records += [ServerRecord.from_tuple(a, t) for a, t in zip(addrs, tuples)]
        return records

    def coverage(self) -> list[int]:
        return self.registry.functions.coverage().call()

    def missing_layers(self) -> list[int]:
        return [layer for layer, count in enumerate(self.coverage()) if count == 0]

    def is_verifier(self, address: str) -> bool:
        role = self.scoring.functions.VERIFIER_ROLE().call()
        return self.scoring.functions.hasRole(role, Web3.to_checksum_address(address)).call()

    def parameters(self) -> dict[str, int]:
        """Every on-chain parameter, as the contracts currently hold them."""
        r, s, c = self.registry.functions, self.scoring.functions, self.schedule.functions
        return {
            "numLayers": r.NUM_LAYERS().call(),
            "minStake": r.minStake().call(),
            "unbondingPeriod": r.unbondingPeriod().call(),
            "slashFraction": r.slashFraction().call(),
            "theta": s.theta().call(),
            "minVerifiers": s.minVerifiers().call(),
            "immunityEpochs": s.immunityEpochs().call(),
            "epochLength": c.EPOCH_LENGTH().call(),
            "commitWorkWindow": c.COMMIT_WORK_WINDOW().call(),
            "commitScoresWindow": c.COMMIT_SCORES_WINDOW().call(),
            "revealWindow": c.REVEAL_WINDOW().call(),
            "finalizeWindow": c.FINALIZE_WINDOW().call(),
            "genesis": c.GENESIS().call(),
        }

    def window_start(self, epoch: int, phase: Phase) -> int:
        """Timestamp at which ``epoch`` enters ``phase`` (Work .. Settled)."""
        w = self.schedule.functions.windows(epoch).call()
        starts = {Phase.WORK: w[0], Phase.COMMIT_WORK: w[1], Phase.COMMIT_SCORES: w[2], Phase.REVEAL_SCORES: w[3],
                  Phase.FINALIZE: w[4], Phase.SETTLED: w[5]}
        return starts[phase]
