"""Verifiers answer for their scores (issue 13), end to end through the ABI: VerifierStakes (stake, unbonding,
withdraw, slash by TrustScoring only), the stake TrustScoring asks of a committing verifier, and the penalties of
a commit without reveal and of a reveal more than κ from the final median."""

import pytest
from conftest import ETHER, ONE, Outcome, Phase, balance, reverts, role

FEE = ETHER // 10  # verifier_slash_fraction (10%) of the fixture's stake of 1 ETH


@pytest.fixture(autouse=True)
def balance_invariant(stakes, pool):
    """After every test: every wei VerifierStakes holds is bonded or unbonding, and the pool got what was slashed."""
    yield
    assert balance(stakes) == stakes.totalBonded() + stakes.totalUnbonding()
    assert pool.totalSlashed() >= stakes.totalSlashed()


def stake_of(stakes, verifier) -> dict:
    return dict(stakes.stakeOf(verifier).dict())


# ---------------------------------------------------------------------------------------------- stake and unbonding


def test_fixture_verifiers_are_staked(stakes, scoring, params, verifiers):
    for v in verifiers:
        assert stakes.bondedOf(v) == params.min_verifier_stake == scoring.minVerifierStake()
    assert stakes.totalBonded() == len(verifiers) * params.min_verifier_stake


def test_stake_unstake_withdraw(stakes, params, stranger, clock):
    tx = stakes.stake({"from": stranger, "value": 2 * ETHER})
    assert tx.events["VerifierStaked"] == {"verifier": stranger, "amount": 2 * ETHER, "bonded": 2 * ETHER}
    before = balance(stranger)

    tx = stakes.requestUnstake(ETHER // 2, {"from": stranger})
    unlock = clock.now() + params.unbonding_period
    assert tx.events["VerifierUnstakeRequested"] == {
        "verifier": stranger,
        "amount": ETHER // 2,
        "unbonding": ETHER // 2,
        "unlockTime": unlock,
    }
    s = stake_of(stakes, stranger)
    assert (s["bonded"], s["unbonding"], s["unlockTime"]) == (3 * ETHER // 2, ETHER // 2, unlock)

    clock.goto(unlock - 1)
    with reverts("StillUnbonding", unlock):
        stakes.withdraw({"from": stranger})
    clock.goto(unlock)
    tx = stakes.withdraw({"from": stranger})
    assert tx.events["VerifierWithdrawn"] == {"verifier": stranger, "amount": ETHER // 2}
    assert balance(stranger) == before + ETHER // 2
    assert stakes.bondedOf(stranger) == 3 * ETHER // 2
    with reverts("NothingToWithdraw"):
        stakes.withdraw({"from": stranger})


def test_bad_amounts_are_refused(stakes, stranger):
    with reverts("ZeroAmount"):
        stakes.stake({"from": stranger, "value": 0})
    with reverts("ZeroAmount"):
        stakes.requestUnstake(0, {"from": stranger})
    stakes.stake({"from": stranger, "value": ETHER})
    with reverts("AmountExceedsStake", ETHER + 1, ETHER):
        stakes.requestUnstake(ETHER + 1, {"from": stranger})


def test_the_unbonding_period_is_the_servers(stakes, registry, gov):
    registry.setUnbondingPeriod(1000, {"from": gov})
    assert stakes.unbondingPeriod() == 1000


def test_only_the_slasher_slashes(stakes, scoring, verifiers, stranger):
    with reverts("AccessControlUnauthorizedAccount", stranger, role("SLASHER_ROLE")):
        stakes.slash(verifiers[0], 0, ONE, {"from": stranger})
    assert stakes.hasRole(role("SLASHER_ROLE"), scoring)


def test_pause_stops_staking(stakes, gov, stranger):
    stakes.stake({"from": stranger, "value": ETHER})
    stakes.requestUnstake(ETHER, {"from": stranger})
    stakes.pause({"from": gov})
    with reverts("EnforcedPause"):
        stakes.stake({"from": stranger, "value": ETHER})
    with reverts("EnforcedPause"):
        stakes.requestUnstake(1, {"from": stranger})
    with reverts("EnforcedPause"):
        stakes.withdraw({"from": stranger})


# ---------------------------------------------------------------------------------------------- committing needs stake


def test_commit_refused_without_stake(scoring, stakes, protocol, params, gov, stranger, clock):
    scoring.grantRole(role("VERIFIER_ROLE"), stranger, {"from": gov})
    clock.to_phase(0, Phase.COMMIT_SCORES)
    with reverts("VerifierStakeTooLow", stranger, 0, params.min_verifier_stake):
        scoring.commitScores(0, "0x" + "11" * 32, {"from": stranger})
    stakes.stake({"from": stranger, "value": params.min_verifier_stake - 1})
    with reverts("VerifierStakeTooLow", stranger, params.min_verifier_stake - 1, params.min_verifier_stake):
        scoring.commitScores(0, "0x" + "11" * 32, {"from": stranger})
    stakes.stake({"from": stranger, "value": 1})
    scoring.commitScores(0, "0x" + "11" * 32, {"from": stranger})


def test_unbonding_stake_does_not_count(scoring, stakes, verifiers, clock):
    v = verifiers[0]
    stakes.requestUnstake(1, {"from": v})
    clock.to_phase(0, Phase.COMMIT_SCORES)
    with reverts("VerifierStakeTooLow"):
        scoring.commitScores(0, "0x" + "11" * 32, {"from": v})


# ---------------------------------------------------------------------------------------------- no reveal


@pytest.fixture
def server(servers, protocol):
    protocol.register(servers[0])
    return servers[0]


def test_commit_without_reveal_is_penalized_once(scoring, stakes, pool, protocol, server, verifiers, stranger, clock):
    silent, *others = verifiers
    reveals = [protocol.reveal_for(v, 0, {server: ONE}) for v in verifiers]
    clock.to_phase(0, Phase.COMMIT_SCORES)
    for r in reveals:
        protocol.commit_scores(r)
    clock.to_phase(0, Phase.REVEAL_SCORES)
    for r in reveals[1:]:
        protocol.reveal_scores(r)
    with reverts("WrongPhase", 0, Phase.FINALIZE, Phase.REVEAL_SCORES):
        scoring.penalizeNoReveal(0, silent, {"from": stranger})

    clock.to_phase(0, Phase.FINALIZE)
    current = clock.epoch()
    tx = scoring.penalizeNoReveal(0, silent, {"from": stranger})
    assert tx.return_value == FEE
    assert tx.events["NoRevealPenalized"] == {"epoch": 0, "verifier": silent, "amount": FEE}
    assert tx.events["VerifierSlashed"] == {
        "verifier": silent,
        "epoch": 0,
        "amount": FEE,
        "bonded": ETHER - FEE,
        "unbonding": 0,
    }
    assert tx.events["SlashDeposited"] == {"epoch": current, "server": silent, "amount": FEE}
    assert pool.epochPool(current)["slashed"] == FEE
    assert scoring.isPenalized(0, silent)
    s = stake_of(stakes, silent)
    assert (s["bonded"], s["totalSlashed"], s["timesSlashed"]) == (ETHER - FEE, FEE, 1)

    with reverts("AlreadyPenalized", 0, silent):
        scoring.penalizeNoReveal(0, silent, {"from": stranger})
    with reverts("ScoresWereRevealed", 0, others[0]):
        scoring.penalizeNoReveal(0, others[0], {"from": stranger})
    with reverts("NoCommitment", 0, stranger):
        scoring.penalizeNoReveal(0, stranger, {"from": stranger})
    clock.to_phase(0, Phase.SETTLED)  # still penalizable once settled
    with reverts("AlreadyPenalized", 0, silent):
        scoring.penalizeNoReveal(0, silent, {"from": stranger})


def test_a_verifier_is_slashed_while_unbonding(scoring, stakes, protocol, server, verifiers, stranger, clock):
    silent = verifiers[0]
    clock.to_phase(0, Phase.COMMIT_SCORES)
    protocol.commit_scores(protocol.reveal_for(silent, 0, {server: ONE}))
    stakes.requestUnstake(ETHER, {"from": silent})  # commits, then runs
    unlock = stake_of(stakes, silent)["unlockTime"]
    clock.to_phase(0, Phase.FINALIZE, offset=19)
    assert clock.now() < unlock  # the unbonding period outlasts the epoch's windows
    tx = scoring.penalizeNoReveal(0, silent, {"from": stranger})
    assert tx.events["VerifierSlashed"]["unbonding"] == ETHER - FEE
    assert (stakes.totalBonded(), stakes.totalUnbonding()) == (2 * ETHER, ETHER - FEE)
    clock.goto(unlock)
    assert stakes.withdraw({"from": silent}).events["VerifierWithdrawn"]["amount"] == ETHER - FEE


def test_penalties_respect_pause(scoring, stakes, protocol, server, verifiers, gov, stranger, clock):
    silent = verifiers[0]
    clock.to_phase(0, Phase.COMMIT_SCORES)
    protocol.commit_scores(protocol.reveal_for(silent, 0, {server: ONE}))
    clock.to_phase(0, Phase.FINALIZE)
    stakes.pause({"from": gov})
    with reverts("EnforcedPause"):
        scoring.penalizeNoReveal(0, silent, {"from": stranger})
    stakes.unpause({"from": gov})
    scoring.pause({"from": gov})
    with reverts("EnforcedPause"):
        scoring.penalizeNoReveal(0, silent, {"from": stranger})
    scoring.unpause({"from": gov})
    scoring.penalizeNoReveal(0, silent, {"from": stranger})


# ---------------------------------------------------------------------------------------------- deviation from the median


def scored_epoch(protocol, server, epoch, accuracies):
    """Each verifier reveals its accuracy for ``server`` in ``epoch``, which is finalized; returns the reveals."""
    reveals = protocol.score(epoch, [{server: a} for a in accuracies], protocol.verifiers[: len(accuracies)])
    protocol.finalize(epoch, [server])
    return reveals


def penalize(scoring, r, sender):
    return scoring.penalizeDeviation(r.epoch, r.verifier, r.servers, r.accuracies, r.salt, {"from": sender})


def test_deviation_up_to_kappa_is_not_penalized(scoring, protocol, server, stranger, params):
    # median 0.9; the third is exactly κ = 0.5 below it
    *honest, low = scored_epoch(protocol, server, 0, [9 * ONE // 10, 9 * ONE // 10, 4 * ONE // 10])
    assert scoring.scoreOf(0, server)["acc"] == 9 * ONE // 10
    assert scoring.kappa() == params.kappa == ONE // 2
    with reverts("NoDeviation", 0, low.verifier):
        penalize(scoring, low, stranger)
    with reverts("NoDeviation", 0, honest[0].verifier):
        penalize(scoring, honest[0], stranger)


def test_deviation_beyond_kappa_is_penalized_once(scoring, stakes, protocol, server, stranger):
    accs = [9 * ONE // 10, 9 * ONE // 10, 4 * ONE // 10 - 1]  # κ + 1 wei below the median
    low = scored_epoch(protocol, server, 0, accs)[2]
    tx = penalize(scoring, low, stranger)
    assert tx.events["DeviationPenalized"] == {
        "epoch": 0,
        "verifier": low.verifier,
        "server": server,
        "accuracy": accs[2],
        "median": 9 * ONE // 10,
        "amount": FEE,
    }
    assert stakes.bondedOf(low.verifier) == ETHER - FEE
    with reverts("AlreadyPenalized", 0, low.verifier):
        penalize(scoring, low, stranger)


def test_deviation_above_the_median_counts_too(scoring, protocol, server, stranger):
    # median 0.4; the liar says 1.0 (0.6 above)
    liar = scored_epoch(protocol, server, 0, [4 * ONE // 10, 4 * ONE // 10, ONE])[2]
    assert scoring.scoreOf(0, server)["outcome"] == Outcome.SLASHED
    assert penalize(scoring, liar, stranger).events["DeviationPenalized"]["median"] == 4 * ONE // 10


def test_forged_arrays_are_refused(scoring, protocol, server, stranger):
    honest = scored_epoch(protocol, server, 0, [9 * ONE // 10, 9 * ONE // 10, 9 * ONE // 10])[0]
    with reverts("CommitmentMismatch", 0, honest.verifier):
        scoring.penalizeDeviation(0, honest.verifier, honest.servers, [0], honest.salt, {"from": stranger})
    with reverts("CommitmentMismatch", 0, honest.verifier):
        scoring.penalizeDeviation(0, honest.verifier, honest.servers, honest.accuracies, "0x" + "00" * 32)


def test_deviation_needs_a_finalized_score_and_a_reveal(scoring, protocol, server, verifiers, stranger, clock):
    reveals = [protocol.reveal_for(v, 0, {server: a}) for v, a in zip(verifiers, [ONE, ONE, 0])]
    clock.to_phase(0, Phase.COMMIT_SCORES)
    for r in reveals:
        protocol.commit_scores(r)
    clock.to_phase(0, Phase.REVEAL_SCORES)
    for r in reveals[1:]:
        protocol.reveal_scores(r)
    with reverts("WrongPhase", 0, Phase.FINALIZE, Phase.REVEAL_SCORES):
        penalize(scoring, reveals[2], stranger)
    clock.to_phase(0, Phase.FINALIZE)
    with reverts("NoDeviation", 0, reveals[2].verifier):  # not finalized yet: nothing to deviate from
        penalize(scoring, reveals[2], stranger)
    with reverts("ScoresNotRevealed", 0, reveals[0].verifier):
        penalize(scoring, reveals[0], stranger)
    protocol.finalize(0, [server])
    assert scoring.scoreOf(0, server)["acc"] == ONE // 2  # two reveals: their mean
    with reverts("NoDeviation", 0, reveals[2].verifier):  # 0.5 from the median: exactly κ
        penalize(scoring, reveals[2], stranger)


def test_no_quorum_gives_nothing_to_deviate_from(scoring, protocol, server, verifiers, stranger):
    liar = scored_epoch(protocol, server, 0, [0])  # one reveal, min_verifiers 2
    assert scoring.scoreOf(0, server)["outcome"] == Outcome.NO_QUORUM
    with reverts("NoDeviation", 0, verifiers[0]):
        penalize(scoring, liar[0], stranger)
