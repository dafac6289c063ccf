"""addStake, requestUnstake and withdraw; Active/Inactive by stake; coverage and max(l) bookkeeping."""

from conftest import ETHER, Status, balance, reverts


def test_add_stake(registry, servers, protocol, params):
    s = servers[0]
    protocol.register(s)
    tx = registry.addStake({"from": s, "value": 3 * ETHER})
    assert tx.events["StakeAdded"] == {"server": s, "amount": 3 * ETHER, "stake": params.min_stake + 3 * ETHER}
    assert "StatusChanged" not in tx.events
    assert registry.getServer(s)["stake"] == params.min_stake + 3 * ETHER
    assert registry.totalBonded() == params.min_stake + 3 * ETHER
    assert balance(registry) == params.min_stake + 3 * ETHER


def test_add_stake_reverts(registry, servers, stranger, protocol, gov_slasher):
    with reverts("NotRegistered", stranger):
        registry.addStake({"from": stranger, "value": ETHER})
    protocol.register(servers[0])
    with reverts("ZeroAmount"):
        registry.addStake({"from": servers[0], "value": 0})
    registry.slash(servers[0], 0, {"from": gov_slasher})
    with reverts("ServerIsDeactivated", servers[0]):
        registry.addStake({"from": servers[0], "value": ETHER})


def test_request_unstake_starts_unbonding(registry, servers, protocol, clock, params):
    s = servers[0]
    protocol.register(s, stake=3 * ETHER)
    clock.sleep(7)
    tx = registry.requestUnstake(ETHER, {"from": s})
    unlock = clock.now() + params.unbonding_period
    assert tx.events["UnstakeRequested"] == {"server": s, "amount": ETHER, "unbonding": ETHER, "unlockTime": unlock}
    record = registry.getServer(s)
    assert (record["stake"], record["unbonding"], record["unlockTime"]) == (2 * ETHER, ETHER, unlock)
    assert record["status"] == Status.ACTIVE
    assert (registry.totalBonded(), registry.totalUnbonding()) == (2 * ETHER, ETHER)
    assert balance(registry) == 3 * ETHER


def test_request_again_restarts_the_clock_for_the_whole_amount(registry, servers, protocol, clock, params):
    s = servers[0]
    protocol.register(s, stake=3 * ETHER)
    registry.requestUnstake(ETHER, {"from": s})
    clock.sleep(params.unbonding_period - 1)
    tx = registry.requestUnstake(ETHER, {"from": s})
    unlock = clock.now() + params.unbonding_period
    assert tx.events["UnstakeRequested"]["unbonding"] == 2 * ETHER
    assert registry.getServer(s)["unlockTime"] == unlock
    clock.sleep(1)
    with reverts("StillUnbonding", unlock):
        registry.withdraw({"from": s})


def test_request_unstake_reverts(registry, servers, stranger, protocol):
    with reverts("NotRegistered", stranger):
        registry.requestUnstake(1, {"from": stranger})
    protocol.register(servers[0], stake=2 * ETHER)
    with reverts("ZeroAmount"):
        registry.requestUnstake(0, {"from": servers[0]})
    with reverts("AmountExceedsStake", 2 * ETHER + 1, 2 * ETHER):
        registry.requestUnstake(2 * ETHER + 1, {"from": servers[0]})


def test_withdraw_after_exactly_the_unbonding_period(registry, servers, protocol, clock):
    s = servers[0]
    protocol.register(s, stake=3 * ETHER)
    registry.requestUnstake(2 * ETHER, {"from": s})
    unlock = registry.getServer(s)["unlockTime"]

    clock.goto(unlock - 1)
    with reverts("StillUnbonding", unlock):
        registry.withdraw({"from": s})

    clock.goto(unlock)
    before = balance(s)
    tx = registry.withdraw({"from": s})
    assert tx.events["Withdrawn"] == {"server": s, "amount": 2 * ETHER}
    assert balance(s) == before + 2 * ETHER  # gas price is 0 on the test chain
    assert registry.getServer(s)["unbonding"] == 0
    assert (registry.totalBonded(), registry.totalUnbonding()) == (ETHER, 0)
    assert balance(registry) == ETHER
    with reverts("NothingToWithdraw"):
        registry.withdraw({"from": s})


def test_withdraw_reverts_without_unbonding(registry, servers, stranger, protocol):
    with reverts("NotRegistered", stranger):
        registry.withdraw({"from": stranger})
    protocol.register(servers[0])
    with reverts("NothingToWithdraw"):
        registry.withdraw({"from": servers[0]})


def test_unstaking_below_min_stake_makes_the_server_inactive(registry, servers, protocol, clock):
    s = servers[0]
    protocol.register(s, first=0, n=20, stake=2 * ETHER)
    protocol.register(servers[1], first=20, n=10)
    clock.to_epoch(2)

    tx = registry.requestUnstake(ETHER, {"from": s})  # exactly minStake left: still active
    assert "StatusChanged" not in tx.events
    assert registry.isActive(s)

    tx = registry.requestUnstake(1, {"from": s})
    assert tx.events["StatusChanged"] == {"server": s, "from": Status.ACTIVE, "to": Status.INACTIVE, "epoch": 2}
    assert registry.getServer(s)["status"] == Status.INACTIVE
    assert not registry.isActive(s)
    assert list(registry.coverage()) == [0] * 20 + [1] * 10
    assert registry.maxActiveSpan() == 10


def test_an_inactive_server_can_still_unbond_and_withdraw(registry, servers, protocol, clock, params):
    s = servers[0]
    protocol.register(s)
    registry.requestUnstake(params.min_stake // 2, {"from": s})
    registry.requestUnstake(params.min_stake // 2, {"from": s})
    assert registry.getServer(s)["status"] == Status.INACTIVE
    clock.sleep(params.unbonding_period)
    registry.withdraw({"from": s})
    assert balance(registry) == 0
    assert registry.getServer(s)["status"] == Status.INACTIVE  # stays registered


def test_reactivation_pays_from_the_next_epoch(registry, servers, protocol, clock):
    s = servers[0]
    protocol.register(s, first=3, n=7)
    registry.requestUnstake(ETHER // 2, {"from": s})
    clock.to_epoch(4, offset=10)

    tx = registry.addStake({"from": s, "value": ETHER // 4})  # still below minStake
    assert "StatusChanged" not in tx.events
    assert registry.getServer(s)["status"] == Status.INACTIVE

    tx = registry.addStake({"from": s, "value": ETHER // 4})  # exactly minStake
    assert tx.events["StatusChanged"] == {"server": s, "from": Status.INACTIVE, "to": Status.ACTIVE, "epoch": 5}
    record = registry.getServer(s)
    assert (record["status"], record["activeSince"], record["registeredEpoch"]) == (Status.ACTIVE, 5, 0)
    assert list(registry.coverage()) == [0] * 3 + [1] * 7 + [0] * 20
    assert registry.maxActiveSpan() == 7


def test_coverage_and_max_span_follow_the_active_set(registry, servers, protocol, params):
    a, b, c, d = servers
    protocol.register(a, 0, 10)
    protocol.register(b, 5, 15)
    protocol.register(c, 15, 15)
    protocol.register(d, 20, 10)
    assert list(registry.coverage()) == [1] * 5 + [2] * 5 + [1] * 5 + [2] * 15
    assert registry.maxActiveSpan() == 15

    registry.requestUnstake(1, {"from": b})  # one of two spans of 15 leaves: max stays
    assert registry.maxActiveSpan() == 15
    registry.requestUnstake(1, {"from": c})  # the last span of 15 leaves: max drops to 10
    assert registry.maxActiveSpan() == 10
    assert list(registry.coverage()) == [1] * 10 + [0] * 10 + [1] * 10

    registry.addStake({"from": c, "value": 1})
    assert registry.maxActiveSpan() == 15
    for s in (a, c, d):
        registry.requestUnstake(params.min_stake, {"from": s})
    assert registry.maxActiveSpan() == 0
    assert list(registry.coverage()) == [0] * 30
