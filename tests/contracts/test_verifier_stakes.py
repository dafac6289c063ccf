"""Verifiers answer for their scores (issue 13), end to end through the ABI: VerifierStakes (stake, unbonding,
withdraw, slash by TrustScoring only), the stake TrustScoring asks of a committing verifier, and the penalties of
a commit without reveal and of a reveal more than κ from the final median (slashed by finalize itself)."""

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


def test_a_verifier_announces_where_clients_hand_it_answers(stakes, verifiers, stranger, gov):
    """Issue 14: clients find verifiers' answer inboxes here (efedllm/client/reports.py)."""
    assert stakes.announcedVerifiers() == [] and stakes.endpointOf(verifiers[0]) == ""
    tx = stakes.announceEndpoint("http://10.0.0.7:8100", {"from": verifiers[0]})
    assert tx.events["VerifierEndpointAnnounced"] == {"verifier": verifiers[0], "endpoint": "http://10.0.0.7:8100"}
    stakes.announceEndpoint("http://stranger:1", {"from": stranger})
    stakes.announceEndpoint("https://v.example/", {"from": verifiers[0]})  # moved: listed once
    assert stakes.announcedVerifiers() == [verifiers[0], stranger]
    assert stakes.endpointOf(verifiers[0]) == "https://v.example/"
    stakes.announceEndpoint("", {"from": stranger})  # withdrawn, still listed (clients skip empty ones)
    assert stakes.endpointOf(stranger) == "" and len(stakes.announcedVerifiers()) == 2
    with reverts("EndpointTooLong", 257, 256):
        stakes.announceEndpoint("x" * 257, {"from": stranger})
    stakes.pause({"from": gov})
    with reverts("EnforcedPause"):
        stakes.announceEndpoint("http://a", {"from": stranger})


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
    """Each verifier reveals its accuracy for ``server`` in ``epoch``, which is finalized; returns the reveals and
    the finalize transaction (which penalizes the reveals more than κ from the median)."""
    reveals = protocol.score(epoch, [{server: a} for a in accuracies], protocol.verifiers[: len(accuracies)])
    return reveals, protocol.finalize(epoch, [server])


def test_deviation_up_to_kappa_is_not_penalized(scoring, pool, protocol, server, params):
    # median 0.9; the third is exactly κ = 0.5 below it
    reveals, tx = scored_epoch(protocol, server, 0, [9 * ONE // 10, 9 * ONE // 10, 4 * ONE // 10])
    assert scoring.scoreOf(0, server)["acc"] == 9 * ONE // 10
    assert scoring.kappa() == params.kappa == ONE // 2
    assert "DeviationPenalized" not in tx.events
    assert not any(scoring.isPenalized(0, r.verifier) for r in reveals)
    assert all(pool.isPaidVerifier(0, r.verifier) for r in reveals)
    assert pool.epochPool(0)["verifiers"] == 3


def test_deviation_beyond_kappa_is_slashed_by_finalize(scoring, stakes, pool, protocol, server, clock):
    accs = [9 * ONE // 10, 9 * ONE // 10, 4 * ONE // 10 - 1]  # κ + 1 wei below the median
    reveals, tx = scored_epoch(protocol, server, 0, accs)
    low = reveals[2]
    assert tx.events["DeviationPenalized"] == {
        "epoch": 0,
        "verifier": low.verifier,
        "server": server,
        "accuracy": accs[2],
        "median": 9 * ONE // 10,
        "amount": FEE,
    }
    assert tx.events["VerifierRemoved"] == {"epoch": 0, "verifier": low.verifier}
    assert tx.events["SlashDeposited"] == {"epoch": clock.epoch(), "server": low.verifier, "amount": FEE}
    assert stakes.bondedOf(low.verifier) == ETHER - FEE
    assert scoring.isPenalized(0, low.verifier)
    assert [pool.isPaidVerifier(0, r.verifier) for r in reveals] == [True, True, False]
    assert pool.epochPool(0)["verifiers"] == 2


def test_a_liar_is_penalized_once_per_epoch(scoring, stakes, protocol, servers, verifiers, stranger, clock):
    """It lies about two servers, finalized in two batches: one penalty. A missing reveal cannot add a second."""
    a, b = servers[:2]
    protocol.register(a)
    protocol.register(b)
    liar = verifiers[2]
    protocol.score(0, [{a: ONE, b: ONE}, {a: ONE, b: ONE}, {a: 0, b: 0}])
    first = protocol.finalize(0, [a])
    second = protocol.finalize(0, [b])
    assert first.events["DeviationPenalized"]["verifier"] == liar
    assert "DeviationPenalized" not in second.events
    assert stakes.stakeOf(liar)["timesSlashed"] == 1
    with reverts("AlreadyPenalized", 0, liar):
        scoring.penalizeNoReveal(0, liar, {"from": stranger})


def test_deviation_above_the_median_counts_too(protocol, server):
    # median 0.4; the liar says 1.0 (0.6 above)
    reveals, tx = scored_epoch(protocol, server, 0, [4 * ONE // 10, 4 * ONE // 10, ONE])
    assert tx.events["ServerScored"]["outcome"] == Outcome.SLASHED
    assert tx.events["DeviationPenalized"]["verifier"] == reveals[2].verifier
    assert tx.events["DeviationPenalized"]["median"] == 4 * ONE // 10


def test_an_even_number_of_reveals_takes_their_mean(scoring, pool, protocol, server, verifiers, clock):
    """Two of three reveal, 1.0 and 0: the median is their mean 0.5, exactly κ from each, and nobody is penalized
    (with κ = 0.5 one liar of two moves a score by at most 0.5; SECURITY.md says why public chains need 3)."""
    reveals = [protocol.reveal_for(v, 0, {server: a}) for v, a in zip(verifiers, [ONE, ONE, 0], strict=True)]
    clock.to_phase(0, Phase.COMMIT_SCORES)
    for r in reveals:
        protocol.commit_scores(r)
    clock.to_phase(0, Phase.REVEAL_SCORES)
    for r in reveals[1:]:
        protocol.reveal_scores(r)
    tx = protocol.finalize(0, [server])
    assert scoring.scoreOf(0, server)["acc"] == ONE // 2
    assert "DeviationPenalized" not in tx.events
    assert [pool.isPaidVerifier(0, r.verifier) for r in reveals] == [False, True, True]


def test_no_quorum_gives_nothing_to_deviate_from(scoring, protocol, server, verifiers):
    (liar,), tx = scored_epoch(protocol, server, 0, [0])  # one reveal, min_verifiers 2
    assert scoring.scoreOf(0, server)["outcome"] == Outcome.NO_QUORUM
    assert "DeviationPenalized" not in tx.events
    assert not scoring.isPenalized(0, liar.verifier)
