"""RewardPool: funding, slashed stake, the split by S_i * workUnits_i, claims and roll-over."""

import pytest
from conftest import ETHER, ONE, Phase, balance, plain, reverts, role


def test_fund_epoch(pool, client, clock):
    clock.to_epoch(2, offset=99)
    tx = pool.fundEpoch(2, {"from": client, "value": 3 * ETHER})
    assert tx.events["EpochFunded"] == {"epoch": 2, "funder": client, "amount": 3 * ETHER}
    pool.fundEpoch(7, {"from": client, "value": ETHER})  # a later epoch
    assert pool.epochPool(2)["funded"] == 3 * ETHER
    assert pool.poolSize(2) == 3 * ETHER
    assert pool.poolSize(7) == ETHER
    assert pool.totalFunded() == 4 * ETHER
    assert balance(pool) == 4 * ETHER


def test_fund_epoch_reverts(pool, client, clock):
    clock.to_epoch(2)
    with reverts("EpochClosed", 1, 2):
        pool.fundEpoch(1, {"from": client, "value": ETHER})
    with reverts("ZeroAmount"):
        pool.fundEpoch(2, {"from": client, "value": 0})


@pytest.fixture
def paid_epoch(servers, client, protocol, pool):
    """Epoch 0 with a funded pool of 10 ether + 0.5 slashed, paid to three servers of different weights."""
    a, b, c, cheat = servers
    protocol.register(a, 0, 30)
    protocol.register(b, 0, 20)
    protocol.register(c, 10, 20)
    protocol.register(cheat, 0, 30)
    pool.fundEpoch(0, {"from": client, "value": 10 * ETHER})
    work = {a: 1000, b: 333, c: 77, cheat: 500}
    accs = {a: ONE * 95 // 100, b: ONE, c: ONE * 99 // 100, cheat: 0}
    protocol.run_epoch(0, work, accs)
    return {"servers": (a, b, c), "cheat": cheat, "work": work, "accs": accs}


def test_slashed_stake_funds_the_finalized_epoch(pool, paid_epoch, params):
    assert pool.epochPool(0)["slashed"] == params.min_stake // 2
    assert pool.poolSize(0) == 10 * ETHER + params.min_stake // 2
    assert pool.totalSlashed() == params.min_stake // 2


def test_rewards_are_split_by_score_times_work(pool, paid_epoch, protocol, scoring):
    a, b, c = paid_epoch["servers"]
    weights = {s: scoring.scoreOf(0, s)["score"] * paid_epoch["work"][s] for s in (a, b, c)}
    total = sum(weights.values())
    assert pool.epochPool(0)["totalWeight"] == total
    size = pool.poolSize(0)

    protocol.settle(0)
    paid = 0
    for s in (a, b, c):
        share = size * weights[s] // total
        assert pool.shareOf(0, s) == share
        assert pool.pendingRewards(s, [0]) == share
        before = balance(s)
        tx = pool.claimRewards([0], {"from": s})
        assert tx.return_value == share
        assert tx.events["RewardsClaimed"] == {"server": s, "epoch": 0, "amount": share}
        assert balance(s) == before + share
        assert pool.hasClaimed(0, s)
        assert pool.pendingRewards(s, [0]) == 0
        paid += share
    assert pool.epochPool(0)["claimed"] == paid == pool.totalPaid()
    dust = size - paid
    assert 0 <= dust < 3  # at most one wei per claimant
    assert balance(pool) == dust


def test_nothing_is_pending_before_settlement(pool, paid_epoch, clock):
    a = paid_epoch["servers"][0]
    assert pool.pendingRewards(a, [0]) == 0
    assert pool.shareOf(0, a) > 0
    clock.goto(clock.end(0, Phase.FINALIZE) - 1)
    with reverts("WrongPhase", 0, Phase.SETTLED, Phase.FINALIZE):
        pool.claimRewards([0], {"from": a})


def test_claim_twice_reverts(pool, paid_epoch, protocol):
    a = paid_epoch["servers"][0]
    protocol.settle(0)
    pool.claimRewards([0], {"from": a})
    with reverts("AlreadyClaimed", 0, a):
        pool.claimRewards([0], {"from": a})


def test_claim_the_same_epoch_twice_in_one_call_reverts(pool, paid_epoch, protocol):
    a = paid_epoch["servers"][0]
    protocol.settle(0)
    with reverts("AlreadyClaimed", 0, a):
        pool.claimRewards([0, 0], {"from": a})
    assert not pool.hasClaimed(0, a)


def test_nothing_to_claim(pool, paid_epoch, protocol, stranger):
    protocol.settle(0)
    with reverts("NothingToClaim"):
        pool.claimRewards([0], {"from": paid_epoch["cheat"]})  # slashed: no weight
    with reverts("NothingToClaim"):
        pool.claimRewards([0], {"from": stranger})
    with reverts("NothingToClaim"):
        pool.claimRewards([], {"from": paid_epoch["servers"][0]})


def test_claim_several_epochs_at_once(pool, servers, client, protocol):
    a, b = servers[:2]
    protocol.register(a)
    protocol.register(b)
    pool.fundEpoch(0, {"from": client, "value": 2 * ETHER})
    pool.fundEpoch(1, {"from": client, "value": 4 * ETHER})
    protocol.run_epoch(0, {a: 1, b: 1}, {a: ONE, b: ONE})
    protocol.run_epoch(1, {a: 3, b: 1}, {a: ONE, b: ONE})
    protocol.settle(1)
    assert pool.pendingRewards(a, [0, 1]) == ETHER + 3 * ETHER
    tx = pool.claimRewards([0, 1], {"from": a})
    assert tx.return_value == 4 * ETHER
    assert [plain(e) for e in tx.events["RewardsClaimed"]] == [
        {"server": a, "epoch": 0, "amount": ETHER},
        {"server": a, "epoch": 1, "amount": 3 * ETHER},
    ]
    # an epoch with a zero share is skipped rather than marked claimed
    pool.fundEpoch(2, {"from": client, "value": ETHER})
    protocol.run_epoch(2, {b: 1}, {b: ONE}, finalize=[a, b])
    protocol.settle(2)
    assert pool.claimRewards([1, 2], {"from": b}).return_value == ETHER + ETHER
    with reverts("AlreadyClaimed", 1, a):
        pool.claimRewards([2, 1], {"from": a})


def test_roll_over_an_unearned_pool(pool, servers, client, protocol, clock):
    s = servers[0]
    protocol.register(s)  # registered from the start, but it commits no work in epoch 0
    pool.fundEpoch(0, {"from": client, "value": 5 * ETHER})
    protocol.settle(0)  # nobody earned epoch 0
    current = clock.epoch()
    tx = pool.rollOver(0, {"from": client})
    assert tx.events["PoolRolledOver"] == {"fromEpoch": 0, "toEpoch": current, "amount": 5 * ETHER}
    assert pool.epochPool(0)["rolledOut"]
    assert pool.epochPool(current)["rolledIn"] == 5 * ETHER
    assert pool.poolSize(current) == 5 * ETHER
    with reverts("NotRollable", 0):
        pool.rollOver(0, {"from": client})

    # the rolled-in pool is paid out with the epoch it went to
    protocol.run_epoch(current, {s: 1}, {s: ONE})
    protocol.settle(current)
    before = balance(s)
    pool.claimRewards([current], {"from": s})
    assert balance(s) == before + 5 * ETHER
    assert balance(pool) == 0


def test_an_earned_pool_cannot_be_rolled_over(pool, paid_epoch, client, protocol):
    protocol.settle(0)
    with reverts("NotRollable", 0):
        pool.rollOver(0, {"from": client})


def test_roll_over_of_an_empty_or_unsettled_pool_reverts(pool, client, clock):
    clock.to_phase(0, Phase.SETTLED)
    with reverts("NotRollable", 0):
        pool.rollOver(0, {"from": client})
    pool.fundEpoch(1, {"from": client, "value": ETHER})
    with reverts("WrongPhase", 1, Phase.SETTLED, Phase.WORK):
        pool.rollOver(1, {"from": client})


def test_record_weight_is_for_the_scorer_only(pool, servers, stranger):
    with reverts("AccessControlUnauthorizedAccount", stranger, role("SCORER_ROLE")):
        pool.recordWeight(0, servers[0], 1, {"from": stranger})
    with reverts("AccessControlUnauthorizedAccount", stranger, role("DEPOSITOR_ROLE")):
        pool.depositSlashed(0, servers[0], {"from": stranger, "value": 1})


def test_record_weight_once_per_server_in_the_finalize_window(pool, servers, gov, clock):
    pool.grantRole(role("SCORER_ROLE"), gov, {"from": gov})
    with reverts("WrongPhase", 0, Phase.FINALIZE, Phase.WORK):
        pool.recordWeight(0, servers[0], 5, {"from": gov})
    clock.to_phase(0, Phase.FINALIZE)
    tx = pool.recordWeight(0, servers[0], 5, {"from": gov})
    assert tx.events["RewardWeightRecorded"] == {"epoch": 0, "server": servers[0], "weight": 5}
    with reverts("WeightAlreadyRecorded", 0, servers[0]):
        pool.recordWeight(0, servers[0], 7, {"from": gov})
    assert pool.epochPool(0)["totalWeight"] == 5


def test_deposit_slashed_by_the_depositor(pool, servers, gov):
    pool.grantRole(role("DEPOSITOR_ROLE"), gov, {"from": gov})
    tx = pool.depositSlashed(4, servers[0], {"from": gov, "value": 123})
    assert tx.events["SlashDeposited"] == {"epoch": 4, "server": servers[0], "amount": 123}
    assert pool.epochPool(4)["slashed"] == 123
    assert pool.totalSlashed() == 123
