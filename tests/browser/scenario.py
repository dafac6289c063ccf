"""A small but complete protocol history on a real chain, made with direct contract calls: servers register
(one on a short tail span, so that slashing it leaves layers uncovered), clients fund epochs, servers commit
work, two verifiers commit and reveal seed shares (epoch 0) and accuracies, epochs are finalized (one server is
slashed), servers and a verifier claim (verifiers are paid a tenth of each pool), servers top up and start
unbonding. Clients pay too (issue 14): three servers announce prices (in gwei, in wei, free), a client deposits,
starts and completes a withdrawal of part of it, and two servers redeem its signed receipts for epoch 2 (one
withdraws its fees); the client challenges two server-signed answers: one honest (its server answers with the
Merkle proof), one the late server signed but never committed (the challenge is upheld and the server slashed).
Time moves with ``warp_to`` to the window each step needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from web3 import Web3

from efedllm import merkle
from efedllm.chain.anvil import warp_to
from efedllm.chain.compile import compile_contracts
from efedllm.chain.connection import Signer
from efedllm.chain.deploy import deploy
from efedllm.chain.deployment import Deployment
from efedllm.chain.params import ETHER, ONE
from efedllm.chain.protocol import Phase, Protocol
from efedllm.chain.transactions import ErrorDecoder, Transactor
from efedllm.receipts import UNPAID, Answer, Receipt, typed_signer
from efedllm.tasks import TaskRecord
from efedllm.verifier.stake import stake_node_verifiers
from tests.support.params import TEST_PARAMS

PARAMS = replace(TEST_PARAMS, verifier_share=ONE // 10)  # so that the page's shares must leave the verifiers' pot out

# account index -> (endpoint, first layer, layer count, stake in ETH, weight w_i)
SERVERS = {
    1: ("http://gpu-a.example:8080", 0, 12, 2, 2 * ONE),
    2: ("http://gpu-b.example:8080", 12, 12, 2, 2 * ONE),
    3: ("http://gpu-c.example:8080", 0, 24, 3, ONE),
    4: ("http://gpu-d.example:8080", 24, 6, 2, 4 * ONE),
}
LATE_SERVER = (5, ("http://gpu-e.example:9000", 0, 20, 1, ONE))
VERIFIERS = (8, 9)
CLIENT = 7
BAD = 4  # passes epoch 0, fails (and is slashed) in epoch 1
GWEI = 10**9
PRICES = {1: 2 * GWEI, 2: 1_500, 3: 0}  # wei per token-layer (Payments.announcePrice); 4 and 5 announce none
SERVING = {2: (1, 0), 3: (0, 1)}  # declared configurations (ComputeDtype, WeightFormat): bfloat16; int8/float32
RECEIPT_TOKENS = {1: 50, 2: 80}  # tokens the client was served in epoch 2, by server; each server's whole span
HONEST_CHALLENGED = 1  # its answer of epoch 2 is challenged and proven
EQUIVOCATOR = LATE_SERVER[0]  # signs an answer of epoch 3 it never commits: the challenge is upheld


@dataclass
class Scenario:
    w3: Web3
    deployment: Deployment
    accounts: list[str]
    protocols: dict[int, Protocol] = field(default_factory=dict)

    def as_(self, index: int) -> Protocol:
        if index not in self.protocols:
            self.protocols[index] = Protocol(self.w3, self.deployment, Signer(self.accounts[index]))
        return self.protocols[index]

    @property
    def gov(self) -> Protocol:
        return self.as_(0)

    def at(self, epoch: int, phase: Phase) -> None:
        warp_to(self.w3, self.gov.window_start(epoch, phase))

    def register(self, index: int, endpoint: str, first: int, count: int, stake_eth: float, weight: int) -> None:
        p = self.as_(index)
        p.tx.send(p.registry.functions.register(endpoint, first, count), value=int(stake_eth * ETHER))
        if weight != ONE:
            self.gov.tx.send(self.gov.registry.functions.setWeight(self.accounts[index], weight))

    def fund(self, epoch: int, eth: float) -> None:
        p = self.as_(CLIENT)
        p.tx.send(p.pool.functions.fundEpoch(epoch), value=int(eth * ETHER))

    def commit_work(
        self, epoch: int, work: dict[int, int], *, seed_shares: bool = False, roots: dict[int, bytes] | None = None
    ) -> None:
        self.at(epoch, Phase.COMMIT_WORK)
        for index, units in work.items():
            p = self.as_(index)
            root = (roots or {}).get(index) or Web3.keccak(text=f"work:{index}:{epoch}")
            p.tx.send(p.ledger.functions.commitWork(epoch, root, units))
        if seed_shares:  # before commitments close, as verifier daemons do
            for verifier in VERIFIERS:
                p = self.as_(verifier)
                salt = Web3.keccak(text=f"seed:{verifier}:{epoch}")
                commitment = p.scoring.functions.seedShareHash(self.accounts[verifier], epoch, salt).call()
                p.tx.send(p.scoring.functions.commitSeed(epoch, commitment))

    def draw_seed(self, epoch: int) -> None:
        """The verifiers reveal their seed shares, and the last one draws the seed (CommitScores window)."""
        self.at(epoch, Phase.COMMIT_SCORES)
        for verifier in VERIFIERS:
            p = self.as_(verifier)
            p.tx.send(p.scoring.functions.revealSeed(epoch, Web3.keccak(text=f"seed:{verifier}:{epoch}")))
        p.tx.send(p.scoring.functions.drawSeed(epoch))

    def score(self, epoch: int, accuracies: list[dict[int, int]]) -> None:
        """Each verifier commits, then reveals, its accuracies (account index -> acc, 18 decimals)."""
        self.at(epoch, Phase.COMMIT_SCORES)
        reveals = []
        for verifier, accs in zip(VERIFIERS, accuracies, strict=True):
            servers = sorted((self.accounts[i] for i in accs), key=lambda a: int(a, 16))
            by_address = {self.accounts[i]: a for i, a in accs.items()}
            values = [by_address[s] for s in servers]
            salt = Web3.keccak(text=f"salt:{verifier}:{epoch}")
            p = self.as_(verifier)
            commitment = p.scoring.functions.scoresHash(self.accounts[verifier], epoch, servers, values, salt).call()
            p.tx.send(p.scoring.functions.commitScores(epoch, commitment))
            reveals.append((p, servers, values, salt))
        self.at(epoch, Phase.REVEAL_SCORES)
        for p, servers, values, salt in reveals:
            p.tx.send(p.scoring.functions.revealScores(epoch, servers, values, salt))

    def finalize(self, epoch: int, indices) -> None:
        self.at(epoch, Phase.FINALIZE)
        self.gov.tx.send(self.gov.scoring.functions.finalize(epoch, [self.accounts[i] for i in indices]))

    def claim(self, index: int, epochs: list[int]) -> None:
        p = self.as_(index)
        p.tx.send(p.pool.functions.claimRewards(epochs))

    def sign(self, index: int, data: dict) -> bytes:
        return typed_signer(self.w3, Signer(self.accounts[index]))(data)

    def redeem(self, epoch: int, tokens: dict[int, int]) -> None:
        """The client's latest receipt for ``epoch`` to each server (price x tokens x the server's layers), redeemed
        by the server once the epoch's work period is over."""
        client = self.as_(CLIENT)
        for index, count in tokens.items():
            layers = SERVERS[index][2]
            receipt = Receipt(
                client=self.accounts[CLIENT],
                server=self.accounts[index],
                epoch=epoch,
                amount=PRICES[index] * count * layers,
            )
            signature = self.sign(CLIENT, client.receipt_domain.data(receipt))
            p = self.as_(index)
            p.tx.send(p.payments.functions.redeem(receipt.as_tuple(), signature))

    def challenge(self, index: int, record: TaskRecord):
        """The client challenges ``record`` as server ``index`` signed it for it; returns the Challenged event's
        args (id, deadline, ...)."""
        client = self.as_(CLIENT)
        answer = Answer.of(record)
        signature = self.sign(index, client.answer_domain.data(answer))
        bond = client.challenges.functions.BOND().call()
        receipt = client.tx.send(client.challenges.functions.challenge(answer.as_tuple(), signature), value=bond)
        return client.challenges.events.Challenged().process_receipt(receipt)[0]["args"]


def served_records(epoch: int, count: int) -> list[TaskRecord]:
    """``count`` task records of ``epoch``, as a server commits them (the leaves of its work root)."""
    return [
        TaskRecord(
            epoch=epoch,
            index=i,
            session=f"session-{i // 4}",
            step=i % 4,
            start=0,
            end=12,
            past=i % 4,
            prefix_hash=Web3.keccak(text=f"prefix:{epoch}:{i}"),
            input_hash=Web3.keccak(text=f"input:{epoch}:{i}"),
            output_hash=Web3.keccak(text=f"output:{epoch}:{i}"),
            receipt=UNPAID,
        )
        for i in range(count)
    ]


def deploy_protocol(w3: Web3) -> Deployment:
    artifacts = compile_contracts()
    governor = Signer(w3.eth.accounts[0])
    tx = Transactor(w3, governor, ErrorDecoder(a.abi for a in artifacts.values()))
    verifiers = [w3.eth.accounts[i] for i in VERIFIERS]
    # epoch 0 starts after the servers register, so that they serve it in full (a registration counts from the
    # next full epoch)
    genesis = w3.eth.get_block("latest")["timestamp"] + 600
    deployment = deploy(w3, tx, params=replace(PARAMS, genesis=genesis), artifacts=artifacts, verifiers=verifiers)
    stake_node_verifiers(w3, deployment, verifiers)
    return deployment


def acc(x: float) -> int:
    return round(x * ONE)


def run_history(w3: Web3, deployment: Deployment) -> Scenario:
    """Three epochs of history; returns with the chain in epoch 5 and epochs 0-2 settled."""
    s = Scenario(w3, deployment, [Web3.to_checksum_address(a) for a in w3.eth.accounts])
    for index, spec in SERVERS.items():
        s.register(index, *spec)
    for index, price in PRICES.items():
        s.as_(index).tx.send(s.as_(index).payments.functions.announcePrice(price))
    for index, serving in SERVING.items():
        s.as_(index).tx.send(s.as_(index).registry.functions.declareServing(serving))
    client = s.as_(CLIENT)
    client.tx.send(client.payments.functions.deposit(), value=ETHER)
    client.tx.send(client.payments.functions.requestWithdrawal(ETHER // 4))  # unlocks before epoch 1
    verifier = s.as_(VERIFIERS[0])  # where clients hand it their servers' signed answers
    verifier.tx.send(verifier.stakes.functions.announceEndpoint("http://verifier-a.example:8100"))
    s.fund(0, 3)
    s.fund(1, 2)

    s.commit_work(0, {1: 100, 2: 120, 3: 200, 4: 50}, seed_shares=True)
    s.draw_seed(0)
    s.score(
        0,
        [
            {1: acc(0.95), 2: acc(0.9), 3: acc(0.97), 4: acc(0.9)},
            {1: acc(0.93), 2: acc(0.92), 3: acc(0.99), 4: acc(0.8)},
        ],
    )
    s.finalize(0, [1, 2, 3, 4])
    client.tx.send(client.payments.functions.withdraw())

    s.commit_work(1, {1: 80, 2: 90, 3: 210, 4: 40})
    s.score(
        1,
        [
            {1: acc(0.96), 2: acc(0.91), 3: acc(0.95), 4: acc(0.2)},
            {1: acc(0.94), 2: acc(0.89), 3: acc(0.96), 4: acc(0.1)},
        ],
    )
    s.finalize(1, [1, 2, 3, 4])  # server 4 falls below θ: slashed, deactivated, layers 24-29 uncovered

    s.at(2, Phase.WORK)
    s.fund(2, 1.5)
    s.register(LATE_SERVER[0], *LATE_SERVER[1])
    honest = served_records(2, 60)
    root = merkle.root([r.leaf(s.accounts[HONEST_CHALLENGED]) for r in honest])
    s.commit_work(2, {1: 60, 2: 70, 3: 150}, roots={HONEST_CHALLENGED: root})
    s.redeem(2, RECEIPT_TOKENS)  # the work period is over: the servers redeem the client's receipts
    s.as_(1).tx.send(s.as_(1).payments.functions.withdrawFees())
    s.at(2, Phase.COMMIT_SCORES)
    client.tx.send(client.scoring.functions.drawSeed(2))
    answered = s.challenge(HONEST_CHALLENGED, honest[7])
    proof = merkle.proof(merkle.levels([r.leaf(s.accounts[HONEST_CHALLENGED]) for r in honest]), 7)
    s.as_(HONEST_CHALLENGED).tx.send(s.as_(HONEST_CHALLENGED).challenges.functions.respond(answered["id"], proof))
    s.as_(3).tx.send(s.as_(3).registry.functions.addStake(), value=ETHER)
    s.score(2, [{1: acc(0.9), 2: acc(0.88), 3: acc(0.93)}, {1: acc(0.92), 2: acc(0.86), 3: acc(0.9)}])
    s.finalize(2, [1, 2, 3])

    s.at(2, Phase.SETTLED)
    s.claim(3, [0, 1])
    s.claim(1, [0])
    s.claim(VERIFIERS[0], [0, 1])  # a verifier's pay
    s.as_(2).tx.send(s.as_(2).registry.functions.requestUnstake(ETHER // 2))

    # epoch 3: the late server signs its client an answer it never commits (serve wrong, record right)
    s.at(3, Phase.COMMIT_SCORES)
    client.tx.send(client.scoring.functions.drawSeed(3))
    wrong = s.challenge(EQUIVOCATOR, served_records(3, 1)[0])
    warp_to(w3, wrong["deadline"] + 1)
    client.tx.send(client.challenges.functions.enforce(wrong["id"]))  # unanswered: the server is slashed
    client.tx.send(client.challenges.functions.withdrawBonds())
    s.at(4, Phase.COMMIT_WORK)  # epoch 5's work period, where nothing is due: a quiet chain to look at
    return s
