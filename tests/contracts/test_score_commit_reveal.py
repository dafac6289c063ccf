"""TrustScoring.commitScores / revealScores: the verifiers' commit and reveal."""

import pytest
from brownie import accounts
from conftest import ONE, ZERO_BYTES32, Phase, Reveal, plain, reverts, role, scores_hash, sort_addresses


@pytest.fixture
def registered(servers, protocol):
    for s in servers[:3]:
        protocol.register(s)
    return servers[:3]


@pytest.fixture
def reveal(registered, verifiers, protocol):
    """Verifier 0's reveal for epoch 0 over three servers, not yet committed."""
    return protocol.reveal_for(verifiers[0], 0, {s: ONE * (i + 7) // 10 for i, s in enumerate(registered)})


def test_scores_hash_matches_the_off_chain_encoding(scoring, reveal):
    on_chain = scoring.scoresHash(reveal.verifier, 0, reveal.servers, reveal.accuracies, reveal.salt)
    assert on_chain == reveal.commitment
    assert scores_hash(reveal.verifier, 1, reveal.servers, reveal.accuracies, reveal.salt) != on_chain


def test_commit_scores(scoring, reveal, protocol, clock):
    clock.to_phase(0, Phase.COMMIT_SCORES)
    tx = protocol.commit_scores(reveal)
    assert tx.events["ScoresCommitted"] == {"epoch": 0, "verifier": reveal.verifier, "commitment": reveal.commitment}
    assert tuple(scoring.commitmentOf(0, reveal.verifier)) == (reveal.commitment, False)


def test_commit_scores_window_boundaries(reveal, protocol, clock):
    clock.goto(clock.start(0, Phase.COMMIT_SCORES) - 1)
    with reverts("WrongPhase", 0, Phase.COMMIT_SCORES, Phase.COMMIT_WORK):
        protocol.commit_scores(reveal)
    clock.goto(clock.end(0, Phase.COMMIT_SCORES))
    with reverts("WrongPhase", 0, Phase.COMMIT_SCORES, Phase.REVEAL_SCORES):
        protocol.commit_scores(reveal)


def test_commit_scores_at_the_last_second(reveal, protocol, clock):
    clock.goto(clock.end(0, Phase.COMMIT_SCORES) - 1)
    protocol.commit_scores(reveal)


def test_commit_scores_needs_the_verifier_role(scoring, stranger, clock):
    clock.to_phase(0, Phase.COMMIT_SCORES)
    with reverts("AccessControlUnauthorizedAccount", stranger, role("VERIFIER_ROLE")):
        scoring.commitScores(0, "0x" + "11" * 32, {"from": stranger})


def test_commit_scores_twice_reverts(scoring, reveal, protocol, clock):
    clock.to_phase(0, Phase.COMMIT_SCORES)
    protocol.commit_scores(reveal)
    with reverts("ScoresAlreadyCommitted", 0, reveal.verifier):
        scoring.commitScores(0, "0x" + "22" * 32, {"from": reveal.verifier})


def test_a_zero_commitment_cannot_be_repeated(scoring, verifiers, clock):
    """A zero hash must still use the verifier's one commitment: otherwise a single verifier could commit
    again and again and take every one of the MAX_VERIFIERS slots."""
    clock.to_phase(0, Phase.COMMIT_SCORES)
    scoring.commitScores(0, ZERO_BYTES32, {"from": verifiers[0]})
    with reverts("ScoresAlreadyCommitted", 0, verifiers[0]):
        scoring.commitScores(0, ZERO_BYTES32, {"from": verifiers[0]})
    scoring.commitScores(0, "0x" + "33" * 32, {"from": verifiers[1]})


def test_at_most_max_verifiers_commit_per_epoch(scoring, stakes, params, gov, verifiers, clock):
    limit = scoring.MAX_VERIFIERS()
    extra = [accounts.add() for _ in range(limit + 1 - len(verifiers))]  # gas price is 0: only their stake is funded
    everyone = list(verifiers) + extra
    for v in extra:
        scoring.grantRole(role("VERIFIER_ROLE"), v, {"from": gov})
        gov.transfer(v, params.min_verifier_stake)
        stakes.stake({"from": v, "value": params.min_verifier_stake})
    clock.to_phase(0, Phase.COMMIT_SCORES)
    for i, v in enumerate(everyone[:limit]):
        scoring.commitScores(0, "0x" + f"{i + 1:064x}", {"from": v})
    with reverts("TooManyVerifiers", 0):
        scoring.commitScores(0, "0x" + "ff" * 32, {"from": everyone[limit]})
    # the limit is per epoch
    clock.to_phase(1, Phase.COMMIT_SCORES)
    scoring.commitScores(1, "0x" + "ff" * 32, {"from": everyone[limit]})


def test_reveal_scores(scoring, reveal, protocol, clock):
    clock.to_phase(0, Phase.COMMIT_SCORES)
    protocol.commit_scores(reveal)
    clock.to_phase(0, Phase.REVEAL_SCORES)
    tx = protocol.reveal_scores(reveal)
    event = plain(tx.events["ScoresRevealed"])
    assert event.pop("salt") == reveal.salt  # so that anyone can resubmit the reveal to penalizeDeviation
    assert event == {
        "epoch": 0,
        "verifier": reveal.verifier,
        "servers": reveal.servers,
        "accuracies": reveal.accuracies,
    }
    assert tuple(scoring.commitmentOf(0, reveal.verifier)) == (reveal.commitment, True)
    for server, acc in zip(reveal.servers, reveal.accuracies):
        assert list(scoring.revealedAccuracies(0, server)) == [acc]


def test_reveals_of_several_verifiers_accumulate(scoring, registered, protocol):
    accs = [{registered[0]: ONE // 10 * (k + 1)} for k in range(3)]
    protocol.score(0, accs)
    assert list(scoring.revealedAccuracies(0, registered[0])) == [ONE // 10, ONE // 5, ONE * 3 // 10]
    assert list(scoring.revealedAccuracies(0, registered[1])) == []


def test_reveal_window_boundaries(reveal, protocol, clock):
    clock.to_phase(0, Phase.COMMIT_SCORES)
    protocol.commit_scores(reveal)
    with reverts("WrongPhase", 0, Phase.REVEAL_SCORES, Phase.COMMIT_SCORES):
        protocol.reveal_scores(reveal)
    clock.goto(clock.end(0, Phase.REVEAL_SCORES))
    with reverts("WrongPhase", 0, Phase.REVEAL_SCORES, Phase.FINALIZE):
        protocol.reveal_scores(reveal)


def test_reveal_at_the_last_second(reveal, protocol, clock):
    clock.to_phase(0, Phase.COMMIT_SCORES)
    protocol.commit_scores(reveal)
    clock.goto(clock.end(0, Phase.REVEAL_SCORES) - 1)
    protocol.reveal_scores(reveal)


def test_reveal_without_commitment_reverts(reveal, protocol, clock):
    clock.to_phase(0, Phase.REVEAL_SCORES)
    with reverts("NoCommitment", 0, reveal.verifier):
        protocol.reveal_scores(reveal)


def test_reveal_twice_reverts(reveal, protocol, clock):
    clock.to_phase(0, Phase.COMMIT_SCORES)
    protocol.commit_scores(reveal)
    clock.to_phase(0, Phase.REVEAL_SCORES)
    protocol.reveal_scores(reveal)
    with reverts("ScoresAlreadyRevealed", 0, reveal.verifier):
        protocol.reveal_scores(reveal)


@pytest.mark.parametrize("change", ["salt", "accuracy", "server", "epoch-in-hash"])
def test_reveal_that_does_not_match_the_commitment_reverts(reveal, servers, protocol, clock, change):
    clock.to_phase(0, Phase.COMMIT_SCORES)
    if change == "epoch-in-hash":
        bad = Reveal(reveal.verifier, 1, reveal.servers, reveal.accuracies, reveal.salt)
        protocol.system.scoring.commitScores(0, bad.commitment, {"from": reveal.verifier})
    else:
        protocol.commit_scores(reveal)
    clock.to_phase(0, Phase.REVEAL_SCORES)
    if change == "salt":
        reveal.salt = "0x" + "00" * 31 + "01"
    elif change == "accuracy":
        reveal.accuracies[0] += 1
    elif change == "server":
        reveal.servers = sort_addresses([*reveal.servers[:2], str(servers[3])])
    with reverts("CommitmentMismatch", 0, reveal.verifier):
        protocol.reveal_scores(reveal)


def test_a_verifier_cannot_reveal_another_verifiers_commitment(scoring, reveal, verifiers, protocol, clock):
    clock.to_phase(0, Phase.COMMIT_SCORES)
    protocol.commit_scores(reveal)
    scoring.commitScores(0, reveal.commitment, {"from": verifiers[1]})  # copies verifier 0's hash
    clock.to_phase(0, Phase.REVEAL_SCORES)
    with reverts("CommitmentMismatch", 0, verifiers[1]):
        scoring.revealScores(0, reveal.servers, reveal.accuracies, reveal.salt, {"from": verifiers[1]})


def _commit_then_reveal(protocol, clock, reveal):
    clock.to_phase(0, Phase.COMMIT_SCORES)
    protocol.commit_scores(reveal)
    clock.to_phase(0, Phase.REVEAL_SCORES)
    return protocol.reveal_scores(reveal)


def test_reveal_length_mismatch_reverts(reveal, protocol, clock):
    reveal.accuracies = reveal.accuracies[:2]
    with reverts("LengthMismatch", 3, 2):
        _commit_then_reveal(protocol, clock, reveal)


def test_empty_reveal_reverts(reveal, protocol, clock):
    reveal.servers, reveal.accuracies = [], []
    with reverts("EmptyReveal"):
        _commit_then_reveal(protocol, clock, reveal)


def test_accuracy_above_one_reverts(reveal, protocol, clock):
    reveal.accuracies[1] = ONE + 1
    with reverts("AccuracyOutOfRange", reveal.servers[1], ONE + 1):
        _commit_then_reveal(protocol, clock, reveal)


def test_accuracy_of_exactly_one_is_accepted(scoring, reveal, protocol, clock):
    reveal.accuracies = [ONE, 0, ONE]
    _commit_then_reveal(protocol, clock, reveal)
    assert list(scoring.revealedAccuracies(0, reveal.servers[1])) == [0]


@pytest.mark.parametrize("order", ["descending", "duplicate"])
def test_servers_must_be_strictly_ascending(reveal, protocol, clock, order):
    if order == "descending":
        reveal.servers = reveal.servers[::-1]
    else:
        reveal.servers[2] = reveal.servers[1]
    with reverts("ServersNotSorted", 1 if order == "descending" else 2):
        _commit_then_reveal(protocol, clock, reveal)


def test_a_revoked_verifier_cannot_reveal(scoring, reveal, gov, protocol, clock):
    clock.to_phase(0, Phase.COMMIT_SCORES)
    protocol.commit_scores(reveal)
    scoring.revokeRole(role("VERIFIER_ROLE"), reveal.verifier, {"from": gov})
    clock.to_phase(0, Phase.REVEAL_SCORES)
    with reverts("AccessControlUnauthorizedAccount", reveal.verifier, role("VERIFIER_ROLE")):
        protocol.reveal_scores(reveal)
