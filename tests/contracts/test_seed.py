"""The sampling seed (issue 13, seed grinding), end to end through the ABI.

Before: ``WorkLedger.drawSeed`` hashed the previous block's hash and the current block's prevrandao, and anyone
could call it during the CommitScores window. Both inputs are known before the call's block, so a committed server
(or a block proposer) could wait for a block whose seed samples none of its bad leaves and draw it then.
Now staked verifiers commit hashes of salts before commitments close (``TrustScoring.commitSeed``), reveal them
after (``revealSeed``), and the seed is keccak(XOR of the revealed salts): it does not depend on who draws it, nor
when, nor on any block; a verifier that withholds its share is slashed (``penalizeSeedWithheld``) and not paid.
"""

import pytest
from brownie import chain, web3
from conftest import ETHER, ONE, ZERO_BYTES32, Phase, bytes32, reverts, role
from eth_abi import encode as abi_encode

FEE = ETHER // 10  # verifier_slash_fraction (10%) of the fixture's stake of 1 ETH


def salt_of(verifier, epoch: int) -> str:
    return bytes32(f"seed:{str(verifier)[2:12]}:{epoch}")


def expected_seed(salts, epoch: int, ledger) -> str:
    mix = 0
    for salt in salts:
        mix ^= int(salt, 16)
    encoded = abi_encode(["bytes32", "uint256", "address"], [mix.to_bytes(32, "big"), epoch, str(ledger)])
    return web3.to_hex(web3.keccak(encoded))


def commit_shares(scoring, verifiers, epoch: int) -> list[str]:
    salts = [salt_of(v, epoch) for v in verifiers]
    for v, salt in zip(verifiers, salts, strict=True):
        scoring.commitSeed(epoch, scoring.seedShareHash(v, epoch, salt), {"from": v})
    return salts


@pytest.fixture
def server(servers, protocol):
    protocol.register(servers[0])
    return servers[0]


def test_the_seed_is_the_verifiers_salts_whoever_draws_it_and_whenever(
    scoring, ledger, protocol, server, verifiers, stranger, clock
):
    """The grinding attack, as the committed server would run it: it tries to draw the seed at a block of its
    choice. It cannot draw before the verifiers' shares are in, and once they are, every block and every caller
    gives the same seed (on the old contract the seed changed with the block it was drawn in)."""
    salts = commit_shares(scoring, verifiers, 0)
    protocol.commit_work(0, {server: 10})
    clock.to_phase(0, Phase.COMMIT_SCORES)
    ready = scoring.seedReadyAt(0)
    with reverts("SeedNotReady", 0, 0, 3, ready):
        scoring.drawSeed(0, {"from": server})
    for v, salt in zip(verifiers, salts, strict=True):
        tx = scoring.revealSeed(0, salt, {"from": v})
        assert tx.events["SeedShareRevealed"] == {"epoch": 0, "verifier": v, "salt": salt}
    assert [int(n) for n in scoring.seedShares(0)] == [3, 3]

    drawn = [scoring.drawSeed.call(0, {"from": server})]  # what a draw in the next block would give
    for wait in (1, 7):  # the server waits for other blocks; a stranger draws in the end
        clock.sleep(wait)
        for _ in range(wait):
            chain.mine()
        drawn.append(scoring.drawSeed.call(0, {"from": server}))
    tx = scoring.drawSeed(0, {"from": stranger})
    assert tx.events["SeedDrawn"]["seed"] == tx.return_value == ledger.sampleSeed(0) == drawn[0]
    assert drawn[0] == drawn[1] == drawn[2] == expected_seed(salts, 0, ledger)


def test_a_seed_share_is_committed_before_commitments_close(scoring, protocol, server, verifiers, stranger, clock):
    v = verifiers[0]
    commitment = scoring.seedShareHash(v, 0, salt_of(v, 0))
    with reverts("AccessControlUnauthorizedAccount", stranger, role("VERIFIER_ROLE")):
        scoring.commitSeed(0, commitment, {"from": stranger})
    with reverts("WrongPhase", 1, Phase.COMMIT_WORK, Phase.FUTURE):  # not for an epoch that has not started
        scoring.commitSeed(1, commitment, {"from": v})
    tx = scoring.commitSeed(0, commitment, {"from": v})  # during the work period
    assert tx.events["SeedShareCommitted"] == {"epoch": 0, "verifier": v, "commitment": commitment}
    assert scoring.seedShareOf(0, v) == (commitment, False)
    with reverts("SeedShareAlreadyCommitted", 0, v):
        scoring.commitSeed(0, commitment, {"from": v})
    clock.to_phase(0, Phase.COMMIT_WORK, offset=19)  # the window's last second
    scoring.commitSeed(0, scoring.seedShareHash(verifiers[1], 0, salt_of(verifiers[1], 0)), {"from": verifiers[1]})
    clock.to_phase(0, Phase.COMMIT_SCORES)  # commitments are closed: too late
    with reverts("WrongPhase", 0, Phase.COMMIT_WORK, Phase.COMMIT_SCORES):
        scoring.commitSeed(0, commitment, {"from": verifiers[2]})


def test_an_unstaked_verifier_commits_no_share(scoring, stakes, verifiers):
    v = verifiers[0]
    stakes.requestUnstake(ETHER, {"from": v})
    with reverts("VerifierStakeTooLow", v, 0, scoring.minVerifierStake()):
        scoring.commitSeed(0, scoring.seedShareHash(v, 0, salt_of(v, 0)), {"from": v})


def test_reveals_are_checked(scoring, protocol, server, verifiers, stranger, clock):
    a, b, c = verifiers
    salts = commit_shares(scoring, [a, b], 0)
    with reverts("WrongPhase", 0, Phase.COMMIT_SCORES, Phase.WORK):
        scoring.revealSeed(0, salts[0], {"from": a})
    clock.to_phase(0, Phase.COMMIT_SCORES)
    with reverts("CommitmentMismatch", 0, a):
        scoring.revealSeed(0, salts[1], {"from": a})  # another verifier's salt
    with reverts("NoSeedShare", 0, c):
        scoring.revealSeed(0, salts[0], {"from": c})
    scoring.revealSeed(0, salts[0], {"from": a})
    with reverts("SeedShareAlreadyRevealed", 0, a):
        scoring.revealSeed(0, salts[0], {"from": a})
    clock.goto(scoring.seedReadyAt(0))
    scoring.drawSeed(0, {"from": stranger})
    with reverts("SeedAlreadyDrawn", 0):  # too late: the seed no longer waits for it
        scoring.revealSeed(0, salts[1], {"from": b})
    with reverts("SeedAlreadyDrawn", 0):
        scoring.drawSeed(0, {"from": stranger})


def test_a_withheld_share_waits_until_ready_then_costs_the_verifier(
    scoring, ledger, stakes, pool, protocol, server, verifiers, stranger, clock
):
    honest, withholder = verifiers[0], verifiers[1]
    salts = commit_shares(scoring, [honest, withholder], 0)
    protocol.commit_work(0, {server: 4})
    clock.to_phase(0, Phase.COMMIT_SCORES)
    scoring.revealSeed(0, salts[0], {"from": honest})
    ready = scoring.seedReadyAt(0)
    assert ready == clock.start(0, Phase.COMMIT_SCORES) + 20 // 4
    with reverts("SeedNotDrawn", 0):
        scoring.penalizeSeedWithheld(0, withholder, {"from": stranger})
    clock.goto(ready - 1)
    with reverts("SeedNotReady", 0, 1, 2, ready):
        scoring.drawSeed(0, {"from": stranger})
    clock.goto(ready)
    seed = scoring.drawSeed(0, {"from": stranger}).return_value
    assert seed == expected_seed(salts[:1], 0, ledger)  # the shares revealed by then

    with reverts("SeedShareWasRevealed", 0, honest):
        scoring.penalizeSeedWithheld(0, honest, {"from": stranger})
    with reverts("NoSeedShare", 0, verifiers[2]):
        scoring.penalizeSeedWithheld(0, verifiers[2], {"from": stranger})
    tx = scoring.penalizeSeedWithheld(0, withholder, {"from": stranger})
    assert tx.return_value == FEE
    assert tx.events["SeedWithheldPenalized"] == {"epoch": 0, "verifier": withholder, "amount": FEE}
    assert stakes.bondedOf(withholder) == ETHER - FEE
    assert pool.epochPool(clock.epoch())["slashed"] == FEE
    with reverts("AlreadyPenalized", 0, withholder):
        scoring.penalizeSeedWithheld(0, withholder, {"from": stranger})

    # topped up, it may still commit and reveal scores, but its penalty stands and it is not paid for the epoch
    stakes.stake({"from": withholder, "value": FEE})
    reveals = protocol.score(0, {server: ONE}, [honest, withholder])
    assert [pool.isPaidVerifier(0, r.verifier) for r in reveals] == [True, False]
    clock.to_phase(0, Phase.FINALIZE)
    with reverts("AlreadyPenalized", 0, withholder):
        scoring.penalizeNoReveal(0, withholder, {"from": stranger})


def test_without_shares_the_seed_comes_from_the_block(scoring, ledger, stranger, clock):
    """No verifier committed a share (a dev chain's first epoch, verifiers started late): the seed is drawn at once
    from the block's randomness, as before, which SECURITY.md says the caller can wait for."""
    assert ledger.sampleSeed(0) == ZERO_BYTES32
    clock.to_phase(0, Phase.COMMIT_WORK, offset=19)
    with reverts("WrongPhase", 0, Phase.COMMIT_SCORES, Phase.COMMIT_WORK):
        scoring.drawSeed(0, {"from": stranger})
    clock.to_phase(0, Phase.COMMIT_SCORES)
    tx = scoring.drawSeed(0, {"from": stranger})
    first = tx.return_value
    assert first != ZERO_BYTES32
    assert tx.events["SeedDrawn"] == {"epoch": 0, "seed": first, "drawer": stranger}
    clock.to_phase(0, Phase.REVEAL_SCORES)
    assert ledger.sampleSeed(0) == first
    with reverts("WrongPhase", 0, Phase.COMMIT_SCORES, Phase.REVEAL_SCORES):
        scoring.drawSeed(0, {"from": stranger})
    clock.to_phase(1, Phase.COMMIT_SCORES)
    assert scoring.drawSeed(1, {"from": stranger}).return_value != first


def test_only_the_scorer_records_a_seed(ledger, scoring, stranger, clock):
    clock.to_phase(0, Phase.COMMIT_SCORES)
    with reverts("AccessControlUnauthorizedAccount", stranger, role("SEEDER_ROLE")):
        ledger.recordSeed(0, bytes32("chosen"), stranger, {"from": stranger})
    assert ledger.hasRole(role("SEEDER_ROLE"), scoring)
