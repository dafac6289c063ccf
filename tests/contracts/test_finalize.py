"""TrustScoring.finalize: eq. 3 (score) and eq. 4 (keep or slash), median, quorum, immunity, batches."""

from dataclasses import replace

import pytest
from conftest import (
    ONE,
    TEST_PARAMS,
    Clock,
    Outcome,
    Phase,
    Protocol,
    Status,
    plain,
    reverts,
    role,
    score_eq3,
)


def scored(tx, server):
    return next(plain(e) for e in tx.events["ServerScored"] if e["server"] == server)


def test_eq3_in_fixed_point(scoring, registry, pool, servers, gov, protocol):
    """S_i = acc * l_i / max(l) * w_i, with the contract's rounding (one division, last)."""
    a, b, c = servers[:3]
    protocol.register(a, 0, 30)
    protocol.register(b, 0, 7)
    protocol.register(c, 7, 23)
    registry.setWeight(b, 3 * ONE, {"from": gov})
    registry.setWeight(c, ONE * 4 // 3, {"from": gov})
    accs = {a: 777_777_777_777_777_777, b: 999_999_999_999_999_999, c: 555_555_555_555_555_555}
    work = {a: 11, b: 13, c: 17}

    tx = protocol.run_epoch(0, work, accs)

    weights = {a: ONE, b: 3 * ONE, c: ONE * 4 // 3}
    spans = {a: 30, b: 7, c: 23}
    for s in (a, b, c):
        expected = score_eq3(accs[s], spans[s], 30, weights[s])
        assert expected >= TEST_PARAMS.theta
        assert scoring.scoreOf(0, s).dict() == {
            "acc": accs[s],
            "score": expected,
            "numLayers": spans[s],
            "maxLayers": 30,
            "verifiers": 3,
            "outcome": Outcome.PASSED,
        }
        assert scored(tx, s) == {
            "epoch": 0,
            "server": s,
            "acc": accs[s],
            "score": expected,
            "numLayers": spans[s],
            "maxLayers": 30,
            "outcome": Outcome.PASSED,
            "rewardWeight": expected * work[s],
        }
        assert pool.rewardWeight(0, s) == expected * work[s]
    assert scoring.scoreOf(0, b)["score"] == 999_999_999_999_999_999 * 7 * 3 // 30
    assert pool.epochPool(0)["totalWeight"] == sum(pool.rewardWeight(0, s) for s in (a, b, c))


def test_score_is_capped_at_one(scoring, registry, servers, gov, protocol):
    s = servers[0]
    protocol.register(s)
    registry.setWeight(s, 3 * ONE, {"from": gov})
    protocol.run_epoch(0, {s: 1}, {s: ONE * 9 // 10})
    assert scoring.scoreOf(0, s)["score"] == ONE


def test_a_short_span_lowers_the_score_and_the_pay_not_the_outcome(scoring, pool, servers, protocol):
    """eq. 3 stays the reward weight; under the default rule (accuracy) a short span is not a reason to slash."""
    a, b = servers[:2]
    protocol.register(a, 0, 30)
    protocol.register(b, 0, 14)
    protocol.run_epoch(0, {a: 1, b: 1}, {a: ONE, b: ONE})
    assert scoring.scoreOf(0, b)["score"] == ONE * 14 // 30
    assert scoring.scoreOf(0, b)["outcome"] == Outcome.PASSED
    assert pool.rewardWeight(0, b) == ONE * 14 // 30


def test_under_the_papers_rule_a_short_span_is_slashed(deploy, verifiers):
    """The paper's eq. 4 (SlashingRule.TrustScore): an honest server with fewer than half of max(l) layers fails
    at acc = 1. Selectable, not the default."""
    system = deploy(replace(TEST_PARAMS, slashing_rule=1))
    protocol = Protocol(system, Clock(system.schedule), verifiers)
    a, b = system.governor, verifiers[0]  # any two funded accounts
    protocol.register(a, 0, 30)
    protocol.register(b, 0, 14)
    protocol.run_epoch(0, {a: 1, b: 1}, {a: ONE, b: ONE})
    assert system.scoring.scoreOf(0, b)["score"] == ONE * 14 // 30
    assert system.scoring.scoreOf(0, b)["outcome"] == Outcome.SLASHED


@pytest.mark.parametrize("below", [0, 1], ids=["exactly-theta", "one-unit-below"])
def test_theta_boundary(scoring, registry, pool, servers, protocol, params, below):
    s, other = servers[:2]
    protocol.register(s)
    protocol.register(other)
    acc = params.theta - below
    tx = protocol.run_epoch(0, {s: 5, other: 5}, {s: acc, other: ONE})
    score = scoring.scoreOf(0, s)
    assert score["score"] == acc
    record = registry.getServer(s)
    if below == 0:
        assert score["outcome"] == Outcome.PASSED
        assert record["status"] == Status.ACTIVE
        assert record["stake"] == params.min_stake
        assert pool.rewardWeight(0, s) == acc * 5
        assert "Slashed" not in tx.events
    else:
        assert score["outcome"] == Outcome.SLASHED
        assert record["status"] == Status.DEACTIVATED
        assert record["stake"] == params.min_stake // 2
        assert pool.rewardWeight(0, s) == 0
        assert plain(tx.events["Slashed"]) == {
            "server": s,
            "epoch": 0,
            "amount": params.min_stake // 2,
            "stakeLeft": params.min_stake // 2,
            "unbondingLeft": 0,
        }
        assert pool.epochPool(0)["slashed"] == params.min_stake // 2
        assert not registry.isActive(s)


def test_span_ratio_exactly_at_theta_passes(scoring, servers, protocol):
    a, b = servers[:2]
    protocol.register(a, 0, 30)
    protocol.register(b, 0, 15)
    protocol.run_epoch(0, {a: 1, b: 1}, {a: ONE, b: ONE})
    assert scoring.scoreOf(0, b)["score"] == ONE // 2
    assert scoring.scoreOf(0, b)["outcome"] == Outcome.PASSED


def test_a_weight_that_compensates_a_short_span_is_exact_at_theta(scoring, registry, servers, gov, protocol, params):
    """w = max(l)/l undoes eq. 3's span factor exactly: at acc = θ the server passes (Slither's divide-before-multiply
    finding: dividing by max(l) first scored it θ - 2 units and slashed it)."""
    a, b = servers[:2]
    protocol.register(a, 0, 30)
    protocol.register(b, 0, 10)
    registry.setWeight(b, 3 * ONE, {"from": gov})
    protocol.run_epoch(0, {a: 1, b: 1}, {a: ONE, b: params.theta})
    assert scoring.scoreOf(0, b)["score"] == params.theta
    assert scoring.scoreOf(0, b)["outcome"] == Outcome.PASSED


@pytest.fixture
def immune_protocol(deploy, verifiers):
    system = deploy(replace(TEST_PARAMS, immunity_epochs=2))
    return Protocol(system, Clock(system.schedule), verifiers)


def test_immune_server_is_scored_but_not_slashed(immune_protocol, servers):
    p = immune_protocol
    s, other = servers[:2]
    p.register(s)
    p.register(other)
    for epoch, outcome in [(0, Outcome.IMMUNE), (1, Outcome.IMMUNE), (2, Outcome.SLASHED)]:
        tx = p.run_epoch(epoch, {s: 3, other: 3}, {s: ONE // 10, other: ONE})
        assert p.system.scoring.scoreOf(epoch, s)["outcome"] == outcome
        assert p.system.scoring.scoreOf(epoch, s)["score"] == ONE // 10
        assert p.system.pool.rewardWeight(epoch, s) == 0
        if outcome == Outcome.IMMUNE:
            assert "Slashed" not in tx.events
            assert p.system.registry.getServer(s)["status"] == Status.ACTIVE
    assert p.system.registry.getServer(s)["status"] == Status.DEACTIVATED


def test_immune_server_with_a_passing_score_is_paid(immune_protocol, servers):
    p = immune_protocol
    s = servers[0]
    p.register(s)
    p.run_epoch(0, {s: 3}, {s: ONE})
    assert p.system.scoring.scoreOf(0, s)["outcome"] == Outcome.PASSED
    assert p.system.pool.rewardWeight(0, s) == 3 * ONE


def test_immunity_counts_from_registration(immune_protocol, servers):
    p = immune_protocol
    s = servers[0]
    p.clock.to_epoch(1)
    p.register(s)
    for epoch, outcome in [(1, Outcome.IMMUNE), (2, Outcome.IMMUNE), (3, Outcome.SLASHED)]:
        p.run_epoch(epoch, {s: 1}, {s: 0})
        assert p.system.scoring.scoreOf(epoch, s)["outcome"] == outcome


def test_no_quorum_is_neither_scored_slashed_nor_paid(scoring, registry, pool, servers, verifiers, protocol):
    s = servers[0]
    protocol.register(s)
    protocol.commit_work(0, {s: 4})
    protocol.score(0, [{s: 0}], verifiers=verifiers[:1])  # minVerifiers is 2
    tx = protocol.finalize(0, [s])
    assert scoring.scoreOf(0, s).dict() == {
        "acc": 0,
        "score": 0,
        "numLayers": 0,
        "maxLayers": 0,
        "verifiers": 1,
        "outcome": Outcome.NO_QUORUM,
    }
    assert scored(tx, s)["outcome"] == Outcome.NO_QUORUM
    assert registry.getServer(s)["status"] == Status.ACTIVE
    assert pool.rewardWeight(0, s) == 0
    assert scoring.lastScore(s)[0] == 0 and scoring.lastScore(s)[1]["outcome"] == Outcome.NONE
    # final: a later batch does not score it again
    tx = protocol.finalize(0, [s])
    assert "ServerScored" not in tx.events


def test_server_without_reveals_has_no_quorum(scoring, servers, protocol):
    a, b = servers[:2]
    protocol.register(a)
    protocol.register(b)
    protocol.score(0, {a: ONE})
    protocol.finalize(0, [a, b])
    assert scoring.scoreOf(0, b)["outcome"] == Outcome.NO_QUORUM
    assert scoring.scoreOf(0, b)["verifiers"] == 0


def test_median_of_three(scoring, servers, protocol):
    s = servers[0]
    protocol.register(s)
    protocol.score(0, [{s: ONE * 2 // 10}, {s: ONE * 9 // 10}, {s: ONE * 6 // 10}])
    protocol.finalize(0, [s])
    assert scoring.scoreOf(0, s)["acc"] == ONE * 6 // 10
    assert scoring.scoreOf(0, s)["verifiers"] == 3
    assert list(scoring.revealedAccuracies(0, s)) == [ONE * 2 // 10, ONE * 9 // 10, ONE * 6 // 10]


def test_median_of_an_even_count_is_the_mean_of_the_middle_two(
    scoring, stakes, servers, verifiers, stranger, gov, protocol
):
    s = servers[0]
    protocol.register(s)
    scoring.grantRole(role("VERIFIER_ROLE"), stranger, {"from": gov})
    stakes.stake({"from": stranger, "value": scoring.minVerifierStake()})
    accs = [ONE // 10, ONE * 7 // 10, ONE * 8 // 10 + 1, ONE]
    protocol.score(0, [{s: a} for a in accs], verifiers=[*verifiers, stranger])
    protocol.finalize(0, [s])
    assert scoring.scoreOf(0, s)["acc"] == (ONE * 7 // 10 + ONE * 8 // 10 + 1) // 2


def test_median_of_two(scoring, servers, verifiers, protocol):
    s = servers[0]
    protocol.register(s)
    protocol.score(0, [{s: ONE * 6 // 10}, {s: ONE * 9 // 10}], verifiers=verifiers[:2])
    protocol.finalize(0, [s])
    assert scoring.scoreOf(0, s)["acc"] == ONE * 75 // 100


@pytest.mark.parametrize("lie", [0, ONE], ids=["always-zero", "always-one"])
def test_a_lying_verifier_outside_the_median_does_not_move_the_result(scoring, registry, servers, protocol, lie):
    honest, cheat = servers[:2]
    protocol.register(honest)
    protocol.register(cheat)
    truth = {honest: ONE * 9 // 10, cheat: ONE // 10}
    liar = {honest: lie, cheat: lie}
    protocol.run_epoch(0, {honest: 1, cheat: 1}, [truth, liar, truth])
    assert scoring.scoreOf(0, honest)["acc"] == ONE * 9 // 10
    assert scoring.scoreOf(0, cheat)["acc"] == ONE // 10
    assert registry.getServer(honest)["status"] == Status.ACTIVE
    assert registry.getServer(cheat)["status"] == Status.DEACTIVATED


def test_already_finalized_servers_are_skipped(scoring, servers, stranger, protocol):
    a, b = servers[:2]
    protocol.register(a)
    protocol.register(b)
    protocol.commit_work(0, {a: 1, b: 1})
    protocol.score(0, {a: ONE, b: ONE // 4})
    tx = protocol.finalize(0, [a], sender=stranger)  # anyone may finalize
    assert [e["server"] for e in tx.events["ServerScored"]] == [a]
    tx = protocol.finalize(0, [b, a, b])
    assert [e["server"] for e in tx.events["ServerScored"]] == [b]
    assert len(tx.events["Slashed"]) == 1
    assert scoring.scoreOf(0, a)["outcome"] == Outcome.PASSED
    assert scoring.scoreOf(0, b)["outcome"] == Outcome.SLASHED


def test_scores_do_not_depend_on_the_order_of_batches(scoring, servers, protocol):
    """Slashing the longest span while finalizing lowers the registry's max(l); a later batch of the same
    epoch must still be scored against the max(l) of the epoch, whatever order the caller chose."""
    long, short = servers[:2]
    protocol.register(long, 0, 30)
    protocol.register(short, 0, 10)
    protocol.commit_work(0, {long: 1, short: 1})
    protocol.score(0, {long: 0, short: ONE})
    protocol.finalize(0, [long])  # slashed: the registry's max(l) drops to 10
    protocol.finalize(0, [short])
    assert scoring.scoreOf(0, short)["maxLayers"] == 30
    assert scoring.scoreOf(0, short)["score"] == ONE // 3
    assert scoring.scoreOf(0, short)["outcome"] == Outcome.PASSED


def test_finalize_reverts_for_unknown_servers(servers, stranger, protocol):
    protocol.register(servers[0])
    protocol.score(0, {servers[0]: ONE})
    with reverts("UnknownServer", stranger):
        protocol.finalize(0, [servers[0], stranger])


def test_finalize_window_boundaries(scoring, servers, clock, protocol):
    s = servers[0]
    protocol.register(s)
    protocol.score(0, {s: ONE})
    clock.goto(clock.end(0, Phase.REVEAL_SCORES) - 1)
    with reverts("WrongPhase", 0, Phase.FINALIZE, Phase.REVEAL_SCORES):
        scoring.finalize(0, [s], {"from": s})
    clock.goto(clock.end(0, Phase.FINALIZE))
    with reverts("WrongPhase", 0, Phase.FINALIZE, Phase.SETTLED):
        scoring.finalize(0, [s], {"from": s})


def test_finalize_at_the_last_second(scoring, servers, clock, protocol):
    s = servers[0]
    protocol.register(s)
    protocol.score(0, {s: ONE})
    clock.goto(clock.end(0, Phase.FINALIZE) - 1)
    scoring.finalize(0, [s], {"from": s})
    assert scoring.scoreOf(0, s)["outcome"] == Outcome.PASSED


def test_a_deactivated_server_fails_without_a_second_slash(scoring, registry, pool, servers, protocol):
    bad, good = servers[:2]
    protocol.register(bad)
    protocol.register(good)
    protocol.run_epoch(0, {bad: 1, good: 1}, {bad: 0, good: ONE})
    assert registry.getServer(bad)["timesSlashed"] == 1

    tx = protocol.run_epoch(1, {good: 1}, {bad: 0, good: ONE}, finalize=[bad, good])
    assert scoring.scoreOf(1, bad)["outcome"] == Outcome.FAILED
    assert "Slashed" not in tx.events
    assert registry.getServer(bad)["timesSlashed"] == 1

    protocol.run_epoch(2, {good: 1}, {bad: ONE, good: ONE}, finalize=[bad, good])
    assert scoring.scoreOf(2, bad)["outcome"] == Outcome.PASSED
    assert pool.rewardWeight(2, bad) == 0
    assert registry.getServer(bad)["status"] == Status.DEACTIVATED


def test_passing_servers_are_paid_only_for_committed_work(pool, servers, protocol):
    a, b = servers[:2]
    protocol.register(a)
    protocol.register(b)
    protocol.run_epoch(0, {a: 2}, {a: ONE, b: ONE}, finalize=[a, b])
    assert pool.rewardWeight(0, a) == 2 * ONE
    assert pool.rewardWeight(0, b) == 0


def test_passing_servers_are_paid_only_when_active_all_epoch(scoring, registry, pool, servers, clock, protocol, params):
    """Paid for epoch 0: active for all of its work period, whatever happened after it (``left`` unstakes before
    epoch 0 is finalized). Not paid: inactive during part of it (``back``, ``quit``)."""
    steady, left, back, quit = servers[:4]
    for s in (steady, left, back, quit):
        protocol.register(s)
    clock.to_epoch(0, 10)
    registry.requestUnstake(1, {"from": back})  # inactive during epoch 0...
    registry.addStake({"from": back, "value": 1})  # ...active again from epoch 1
    registry.requestUnstake(params.min_stake, {"from": quit})  # inactive for the rest of epoch 0
    protocol.commit_work(0, {steady: 1, left: 1, back: 1, quit: 1})
    registry.requestUnstake(params.min_stake, {"from": left})  # inactive when epoch 0 is finalized
    protocol.score(0, {steady: ONE, left: ONE, back: ONE, quit: ONE})
    protocol.finalize(0, [steady, left, back, quit])
    for s in (steady, left, back, quit):
        assert scoring.scoreOf(0, s)["outcome"] == Outcome.PASSED
    assert pool.rewardWeight(0, steady) == ONE
    assert pool.rewardWeight(0, left) == ONE
    assert pool.rewardWeight(0, back) == 0
    assert pool.rewardWeight(0, quit) == 0


def test_l_and_max_l_are_the_spans_of_the_work_period(scoring, registry, ledger, servers, protocol):
    """A move after the work period (before or after committing) changes neither l_i nor max(l) of the epoch."""
    s, big = servers[:2]
    protocol.register(s, 0, 10)
    protocol.register(big, 0, 20)
    protocol.commit_work(0, {s: 1, big: 1})
    registry.updateServer("http://s", 0, 30, {"from": s})  # after committing
    protocol.score(0, {s: ONE, big: ONE})
    protocol.finalize(0, [s, big])
    assert ledger.commitmentOf(0, s)["numLayers"] == 10
    assert scoring.scoreOf(0, s)["numLayers"] == 10
    assert scoring.scoreOf(0, s)["maxLayers"] == 20  # the longest span when epoch 0 began
    assert scoring.scoreOf(0, s)["score"] == ONE // 2
    assert registry.scoringFacts(s, 1)["numLayers"] == 30  # the move counts from the next epoch


def test_l_without_commitment_is_the_span_of_the_work_period(scoring, registry, servers, protocol):
    s, big = servers[:2]
    protocol.register(s, 0, 24)
    protocol.register(big, 0, 30)
    protocol.score(0, {s: ONE})
    registry.updateServer("http://s", 0, 30, {"from": s})  # before finalize
    protocol.finalize(0, [s])
    assert scoring.scoreOf(0, s)["numLayers"] == 24
    assert scoring.scoreOf(0, s)["score"] == ONE * 24 // 30


def test_last_score_is_the_latest_scored_epoch(scoring, servers, verifiers, protocol):
    s = servers[0]
    protocol.register(s)
    assert scoring.lastScore(s)[1]["outcome"] == Outcome.NONE
    protocol.run_epoch(0, {s: 1}, {s: ONE})
    protocol.run_epoch(1, {s: 1}, {s: ONE * 8 // 10})
    protocol.commit_work(2, {s: 1})
    protocol.score(2, [{s: 0}], verifiers=verifiers[:1])
    protocol.finalize(2, [s])  # no quorum: does not count
    epoch, score = scoring.lastScore(s)
    assert epoch == 1
    assert score["acc"] == ONE * 8 // 10
    assert score["outcome"] == Outcome.PASSED
