"""Python bindings of the deployed protocol, built from the deployment file alone.

``Protocol`` is what servers, verifiers, clients and the command line hold: the six contracts as web3
contract objects, typed views of what the dashboard and the router need, and a transactor for the signer.
Structs come back as the dataclasses of ``views.py``, decoded by the ABI's names; read them through the
methods here (``score_of``, ``commitment_of`` ...) rather than indexing what web3 returns.
"""

from __future__ import annotations

from functools import cached_property

from web3 import Web3

from efedllm.chain.connection import Signer
from efedllm.chain.deployment import Deployment
from efedllm.chain.enums import ChallengeState, Outcome, Phase, Status
from efedllm.chain.transactions import ErrorDecoder, Transactor
from efedllm.chain.views import (
    Challenge,
    ClientAccount,
    Commitment,
    EpochPool,
    Score,
    ServerRecord,
    Serving,
    StructDecoder,
    VerifierStake,
    Windows,
)
from efedllm.errors import EfedError
from efedllm.receipts import AnswerDomain, ReceiptDomain

__all__ = [
    "Challenge",
    "ChallengeState",
    "Commitment",
    "EpochPool",
    "Outcome",
    "Phase",
    "Protocol",
    "Score",
    "ServerRecord",
    "Status",
    "VerifierStake",
    "Windows",
]


class Protocol:
    def __init__(self, w3: Web3, deployment: Deployment, signer: Signer | None = None):
        chain_id = w3.eth.chain_id
        if chain_id != deployment.chain_id:
            raise EfedError(
                f"wrong network: the deployment is for chain {deployment.chain_id}, the RPC serves {chain_id}"
            )
        self.w3, self.deployment, self.signer = w3, deployment, signer
        self._decoders: dict[tuple[str, str, int], StructDecoder] = {}
        self.decoder = ErrorDecoder(record.abi for record in deployment.contracts.values())
        for name, record in deployment.contracts.items():  # a stale file (a dev chain restarted) fails here, by name
            if not w3.eth.get_code(record.address):
                raise EfedError(
                    f"no contract at {record.address} ({name}) on chain {chain_id}: the deployment file "
                    f"does not match this chain; deploy again or use the file of this deployment"
                )

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
    def stakes(self):
        """VerifierStakes: the verifiers' bonded and unbonding stake."""
        return self.contract("VerifierStakes")

    @cached_property
    def challenges(self):
        """ServingChallenges: server-signed answers challenged against committed roots."""
        return self.contract("ServingChallenges")

    @cached_property
    def payments(self):
        """Payments: client deposits and receipts redeemed by servers."""
        return self.contract("Payments")

    @cached_property
    def answer_domain(self) -> AnswerDomain:
        """Where this deployment's answers are signed for (EIP-712 domain of ServingChallenges)."""
        return AnswerDomain(chain_id=self.deployment.chain_id, contract=self.deployment.address("ServingChallenges"))

    @cached_property
    def receipt_domain(self) -> ReceiptDomain:
        """Where this deployment's receipts are signed for (EIP-712 domain of Payments)."""
        return ReceiptDomain(chain_id=self.deployment.chain_id, contract=self.deployment.address("Payments"))

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

    def _decoder(self, cls: type, contract: str, function: str, *, output: int = 0) -> StructDecoder:
        key = (contract, function, output)
        if key not in self._decoders:
            self._decoders[key] = StructDecoder(cls, self.deployment.contracts[contract].abi, function, output=output)
        return self._decoders[key]

    def servers(self, *, page: int = 200) -> list[ServerRecord]:
        count = self.registry.functions.serverCount().call()
        decode = self._decoder(ServerRecord, "ServerRegistry", "getServers", output=1)
        records: list[ServerRecord] = []
        for offset in range(0, count, page):
            addrs, tuples = self.registry.functions.getServers(offset, page).call()
            records += [decode(t, address=a) for a, t in zip(addrs, tuples)]
        return records

    def server(self, address: str) -> ServerRecord:
        """The registry's record of ``address`` (status NONE when it never registered)."""
        address = Web3.to_checksum_address(address)
        value = self.registry.functions.getServer(address).call()
        return self._decoder(ServerRecord, "ServerRegistry", "getServer")(value, address=address)

    def serving_of(self, server: str, epoch: int) -> Serving:
        """The serving configuration ``server`` declared for ``epoch`` (float32, full weights when none)."""
        value = self.registry.functions.servingOf(Web3.to_checksum_address(server), epoch).call()
        return self._decoder(Serving, "ServerRegistry", "servingOf")(value)

    def commitment_of(self, epoch: int, server: str) -> Commitment:
        """The work ``server`` committed for ``epoch`` (``work_units`` 0: none)."""
        value = self.ledger.functions.commitmentOf(epoch, server).call()
        return self._decoder(Commitment, "WorkLedger", "commitmentOf")(value)

    def score_of(self, epoch: int, server: str) -> Score:
        value = self.scoring.functions.scoreOf(epoch, server).call()
        return self._decoder(Score, "TrustScoring", "scoreOf")(value)

    def last_score(self, server: str) -> tuple[int, Score]:
        """(epoch, score) of the last epoch that scored ``server`` (outcome NONE: never scored)."""
        epoch, value = self.scoring.functions.lastScore(server).call()
        return epoch, self._decoder(Score, "TrustScoring", "lastScore", output=1)(value)

    def verifier_stake(self, verifier: str) -> VerifierStake:
        """The stake of ``verifier`` in VerifierStakes (all zero when it never staked)."""
        value = self.stakes.functions.stakeOf(Web3.to_checksum_address(verifier)).call()
        return self._decoder(VerifierStake, "VerifierStakes", "stakeOf")(value)

    def client_account(self, client: str) -> ClientAccount:
        """What ``client`` deposited in Payments to pay servers with (all zero when it never deposited)."""
        value = self.payments.functions.accountOf(Web3.to_checksum_address(client)).call()
        return self._decoder(ClientAccount, "Payments", "accountOf")(value)

    def challenge(self, challenge_id: bytes) -> Challenge:
        """The challenge ``challenge_id`` in ServingChallenges (state NONE when there is no such challenge)."""
        value = self.challenges.functions.challengeOf(challenge_id).call()
        return self._decoder(Challenge, "ServingChallenges", "challengeOf")(value)

    def pool_of(self, epoch: int) -> EpochPool:
        value = self.pool.functions.epochPool(epoch).call()
        return self._decoder(EpochPool, "RewardPool", "epochPool")(value)

    def windows(self, epoch: int) -> Windows:
        """When each window of ``epoch`` ends, as EpochSchedule.windows computes it (the one clock)."""
        return self._decoder(Windows, "EpochSchedule", "windows")(self.schedule.functions.windows(epoch).call())

    def coverage(self) -> list[int]:
        return self.registry.functions.coverage().call()

    def missing_layers(self) -> list[int]:
        return [layer for layer, count in enumerate(self.coverage()) if count == 0]

    def verifier_endpoints(self) -> dict[str, str]:
        """Verifier address -> the endpoint it takes client-handed answers at (VerifierStakes.announceEndpoint), for
        the verifiers that hold the role, have at least minVerifierStake bonded and announced a non-empty one."""
        stakes, least = self.stakes.functions, self.scoring.functions.minVerifierStake().call()
        found = {}
        for address in stakes.announcedVerifiers().call():
            endpoint = stakes.endpointOf(address).call()
            if endpoint and stakes.bondedOf(address).call() >= least and self.is_verifier(address):
                found[address] = endpoint
        return found

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
            "slashingRule": s.SLASHING_RULE().call(),
            "minVerifierStake": s.minVerifierStake().call(),
            "verifierSlashFraction": s.verifierSlashFraction().call(),
            "kappa": s.kappa().call(),
            "verifierShare": self.pool.functions.VERIFIER_SHARE().call(),
            "claimPeriod": self.pool.functions.CLAIM_PERIOD().call(),
            "epochLength": c.EPOCH_LENGTH().call(),
            "commitWorkWindow": c.COMMIT_WORK_WINDOW().call(),
            "commitScoresWindow": c.COMMIT_SCORES_WINDOW().call(),
            "revealWindow": c.REVEAL_WINDOW().call(),
            "finalizeWindow": c.FINALIZE_WINDOW().call(),
            "genesis": c.GENESIS().call(),
        }

    def window_start(self, epoch: int, phase: Phase) -> int:
        """Timestamp at which ``epoch`` enters ``phase`` (Work .. Settled)."""
        return self.windows(epoch).start(phase)
