"""Challenges of server-signed answers (issue 14), end to end through the ABI, signed in Python exactly as a server
signs an answer for its client (efedllm/receipts.py) and committed as efedllm/merkle.py builds the tree.

The attack: "serve wrong, record right". The server signs for the client an answer whose output differs from what
it records and commits. Its openings pass (the committed leaf is honest), but the client holds the signed answer:
its leaf is not in the committed root at its index, so the server cannot respond and is slashed.
"""

import pytest
from brownie import web3
from conftest import ETHER, ZERO_BYTES32, Phase, balance, reverts
from eth_utils import keccak

from efedllm import merkle
from efedllm.chain.connection import Signer
from efedllm.receipts import UNPAID, Answer, AnswerDomain, signer_of, typed_signer
from efedllm.tasks import TaskRecord

State = type("State", (), {"NONE": 0, "OPEN": 1, "ANSWERED": 2, "UPHELD": 3})


def record(epoch: int, index: int, output: bytes = b"right") -> TaskRecord:
    """Task ``index``: odd ones paid by a client's receipt (its digest), even ones unpaid."""
    return TaskRecord(
        epoch=epoch,
        index=index,
        session=f"session-{index // 3}",
        step=index % 3,
        start=0,
        end=30,
        past=index % 3,
        prefix_hash=keccak(text=f"prefix{index}"),
        input_hash=keccak(text=f"input{index}"),
        output_hash=keccak(output + bytes([index])),
        receipt=keccak(text=f"receipt{index}") if index % 2 else UNPAID,
    )


class Served:
    """A server's epoch: the records it committed, the tree, and answers it signed."""

    def __init__(self, server, epoch: int, count: int, challenges):
        self.server, self.epoch, self.challenges = server, epoch, challenges
        self.records = [record(epoch, i) for i in range(count)]
        self.tree = merkle.levels([r.leaf(str(server)) for r in self.records])
        self.root = merkle.root([r.leaf(str(server)) for r in self.records])

    def signed(self, rec: TaskRecord) -> tuple[tuple, bytes]:
        answer = Answer.of(rec)
        data = AnswerDomain(chain_id=web3.eth.chain_id, contract=str(self.challenges)).data(answer)
        signature = typed_signer(web3, Signer(str(self.server), None))(data)  # as a server on a node account signs
        assert signer_of(data, signature) == self.server  # and as its client checks it
        return answer.as_tuple(), signature

    def proof(self, index: int) -> list[bytes]:
        return merkle.proof(self.tree, index)


@pytest.fixture
def served(servers, protocol, ledger, challenges, clock):
    """servers[0] served and committed 7 steps in epoch 0; the seed is drawn."""
    s = servers[0]
    protocol.register(s)
    epoch = Served(s, 0, 7, challenges)
    clock.to_phase(0, Phase.COMMIT_WORK)
    ledger.commitWork(0, epoch.root, len(epoch.records), {"from": s})
    clock.to_phase(0, Phase.COMMIT_SCORES)
    protocol.system.scoring.drawSeed(0, {"from": s})
    return epoch


def test_the_signature_matches_the_off_chain_format(served, challenges):
    answer, signature = served.signed(served.records[3])
    assert challenges.signerOf(answer, signature) == served.server


def test_an_honest_answer_is_proven_and_the_bond_pays_the_server(served, challenges, client, params):
    """A paid step's answer (it names the client's receipt): the contract rebuilds the very leaf the server
    committed (TaskRecord.leaf, receipt included), and the server proves it."""
    assert served.records[5].receipt != UNPAID
    answer, signature = served.signed(served.records[5])
    tx = challenges.challenge(answer, signature, {"from": client, "value": params.challenge_bond})
    cid = tx.return_value
    assert tx.events["Challenged"]["server"] == served.server
    c = challenges.challengeOf(cid)
    assert (c["state"], c["index"], c["epoch"]) == (State.OPEN, 5, 0)
    assert c["leaf"] == "0x" + served.records[5].leaf(str(served.server)).hex()
    with reverts("NotInCommittedRoot", cid):
        challenges.respond(cid, served.proof(4), {"from": served.server})  # another leaf's proof
    tx = challenges.respond(cid, served.proof(5), {"from": served.server})
    assert tx.events["ChallengeAnswered"] == {"id": cid, "server": served.server, "bond": params.challenge_bond}
    assert challenges.challengeOf(cid)["state"] == State.ANSWERED
    with reverts("NoOpenChallenge", cid):
        challenges.enforce(cid, {"from": client})
    before = balance(served.server)
    challenges.withdrawBonds({"from": served.server})
    assert balance(served.server) == before + params.challenge_bond
    assert balance(challenges) == 0


def test_serve_wrong_record_right_is_slashed(served, challenges, registry, pool, client, params, clock):
    """The equivocating server signs for the client an output it did not record; nobody can prove that leaf."""
    honest = served.records[2]
    wrong = TaskRecord(**{**honest.__dict__, "output_hash": keccak(b"wrong")})
    answer, signature = served.signed(wrong)
    cid = challenges.challenge(answer, signature, {"from": client, "value": params.challenge_bond}).return_value
    for index in range(len(served.records)):  # no proof in its tree shows that leaf at index 2
        with reverts("NotInCommittedRoot", cid):
            challenges.respond(cid, served.proof(index), {"from": served.server})
    deadline = challenges.challengeOf(cid)["deadline"]
    clock.goto(deadline)
    with reverts("ResponseWindowOpen", cid, deadline):
        challenges.enforce(cid, {"from": client})
    clock.goto(deadline + 1)
    stake = registry.getServer(served.server)["stake"]
    current = clock.epoch()
    tx = challenges.enforce(cid, {"from": client})
    slashed = stake * params.slash_fraction // 10**18
    assert tx.events["ChallengeUpheld"] == {"id": cid, "server": served.server, "slashed": slashed}
    assert tx.events["SlashDeposited"]["epoch"] == current  # never into a pool that may have settled
    assert registry.getServer(served.server)["status"] == 3  # Deactivated
    assert challenges.bondsOf(client) == params.challenge_bond
    with reverts("NoOpenChallenge", cid):
        challenges.respond(cid, served.proof(2), {"from": served.server})


@pytest.mark.parametrize(
    ("index", "signed_receipt"),
    [(3, UNPAID), (3, keccak(text="another receipt")), (4, keccak(text="receipt4"))],
    ids=["paid-signed-as-unpaid", "paid-signed-with-another-receipt", "unpaid-signed-as-paid"],
)
def test_an_answer_naming_another_receipt_than_committed_is_slashed(
    served, challenges, registry, client, params, clock, index, signed_receipt
):
    """The server signed for the client the receipt it paid with, and committed the step under another receipt
    (or none): the answer is right in every other field, yet no proof shows its leaf, and the server is slashed."""
    committed = served.records[index]
    assert committed.receipt != signed_receipt
    answer, signature = served.signed(TaskRecord(**{**committed.__dict__, "receipt": signed_receipt}))
    cid = challenges.challenge(answer, signature, {"from": client, "value": params.challenge_bond}).return_value
    for proof_of in range(len(served.records)):
        with reverts("NotInCommittedRoot", cid):
            challenges.respond(cid, served.proof(proof_of), {"from": served.server})
    clock.goto(challenges.challengeOf(cid)["deadline"] + 1)
    stake = registry.getServer(served.server)["stake"]
    tx = challenges.enforce(cid, {"from": client})
    assert tx.events["ChallengeUpheld"]["slashed"] == stake * params.slash_fraction // 10**18 > 0
    assert registry.getServer(served.server)["status"] == 3  # Deactivated


def test_an_answer_never_committed_is_slashed_too(servers, protocol, challenges, client, params, clock):
    """A server that signed answers and committed nothing for the epoch."""
    s = servers[1]
    protocol.register(s)
    epoch = Served(s, 0, 3, challenges)
    clock.to_phase(0, Phase.COMMIT_SCORES)
    protocol.system.scoring.drawSeed(0, {"from": client})
    answer, signature = epoch.signed(epoch.records[0])
    cid = challenges.challenge(answer, signature, {"from": client, "value": params.challenge_bond}).return_value
    with reverts("NotInCommittedRoot", cid):
        challenges.respond(cid, epoch.proof(0), {"from": s})
    clock.sleep(params.response_window + 1)
    assert challenges.enforce(cid, {"from": client}).events["ChallengeUpheld"]["slashed"] > 0


def test_when_a_challenge_may_be_made(servers, protocol, ledger, challenges, client, stranger, params, clock):
    s = servers[0]
    protocol.register(s)
    epoch = Served(s, 0, 4, challenges)
    answer, signature = epoch.signed(epoch.records[1])
    bond = params.challenge_bond
    with reverts("WrongBond", bond - 1, bond):
        challenges.challenge(answer, signature, {"from": client, "value": bond - 1})
    clock.to_phase(0, Phase.COMMIT_WORK)
    ledger.commitWork(0, epoch.root, 4, {"from": s})
    with reverts("SeedNotDrawn", 0):  # a loss may still be declared until the seed is drawn
        challenges.challenge(answer, signature, {"from": client, "value": bond})
    forged = list(answer)
    forged[9] = keccak(b"other")
    not_a_server = challenges.signerOf(forged, signature)
    clock.to_phase(0, Phase.COMMIT_SCORES)
    protocol.system.scoring.drawSeed(0, {"from": client})
    with reverts("NotAServer", not_a_server):  # a tampered answer recovers some other address
        challenges.challenge(forged, signature, {"from": client, "value": bond})
    cid = challenges.challenge(answer, signature, {"from": client, "value": bond}).return_value
    with reverts("AlreadyChallenged", cid):
        challenges.challenge(answer, signature, {"from": stranger, "value": bond})
    clock.to_phase(0, Phase.SETTLED)
    other, sig2 = epoch.signed(epoch.records[2])
    with reverts("EpochSettled", 0):
        challenges.challenge(other, sig2, {"from": client, "value": bond})
    clock.goto(challenges.challengeOf(cid)["deadline"] + 1)
    with reverts("ResponseWindowOver", cid, challenges.challengeOf(cid)["deadline"]):
        challenges.respond(cid, epoch.proof(1), {"from": s})


def test_a_declared_loss_cannot_be_challenged(servers, protocol, ledger, challenges, client, params, clock):
    s = servers[0]
    protocol.register(s)
    epoch = Served(s, 0, 2, challenges)
    clock.to_phase(0, Phase.COMMIT_WORK)
    ledger.commitWork(0, epoch.root, 2, {"from": s})
    ledger.declareLoss(0, {"from": s})
    clock.to_phase(0, Phase.COMMIT_SCORES)
    protocol.system.scoring.drawSeed(0, {"from": client})
    answer, signature = epoch.signed(epoch.records[0])
    with reverts("EpochForfeited", 0, s):
        challenges.challenge(answer, signature, {"from": client, "value": params.challenge_bond})


def test_a_signature_for_another_deployment_is_worthless(served, challenges, gov, client, params):
    from brownie import ServingChallenges

    twin = ServingChallenges.deploy(
        gov, challenges.schedule(), challenges.registry(), challenges.ledger(), params.challenge_bond, 60, {"from": gov}
    )
    answer, signature = Served(served.server, 0, 7, twin).signed(served.records[1])
    assert challenges.signerOf(answer, signature) != served.server
    assert ZERO_BYTES32 != challenges.answerDigest(answer) != twin.answerDigest(answer)
    assert ETHER  # (imported for symmetry with the other modules)
