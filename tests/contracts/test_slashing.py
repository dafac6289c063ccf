"""ServerRegistry.slash (SLASHER_ROLE): how much is taken from bonded and unbonding stake, and where it goes."""

from conftest import ETHER, Status, balance, reverts, role


def test_slash_takes_a_fraction_of_bonded_plus_unbonding_stake(registry, pool, servers, protocol, gov_slasher):
    s = servers[0]
    protocol.register(s, stake=2 * ETHER)
    registry.requestUnstake(ETHER // 2, {"from": s})  # 1.5 bonded, 0.5 unbonding

    tx = registry.slash(s, 3, {"from": gov_slasher})

    # half of 2 ether, taken from bonded stake first
    assert tx.return_value == ETHER
    assert tx.events["Slashed"] == {
        "server": s,
        "epoch": 3,
        "amount": ETHER,
        "stakeLeft": ETHER // 2,
        "unbondingLeft": ETHER // 2,
    }
    assert tx.events["StatusChanged"] == {"server": s, "from": Status.ACTIVE, "to": Status.DEACTIVATED, "epoch": 3}
    assert tx.events["SlashDeposited"] == {"epoch": 3, "server": s, "amount": ETHER}
    record = registry.getServer(s)
    assert (record["status"], record["timesSlashed"], record["totalSlashed"]) == (Status.DEACTIVATED, 1, ETHER)
    assert (registry.totalBonded(), registry.totalUnbonding()) == (ETHER // 2, ETHER // 2)
    assert balance(registry) == ETHER
    assert balance(pool) == ETHER
    assert pool.epochPool(3)["slashed"] == ETHER
    assert pool.totalSlashed() == ETHER
    assert pool.poolSize(3) == ETHER


def test_slash_reaches_into_unbonding_stake(registry, servers, protocol, gov_slasher):
    s = servers[0]
    protocol.register(s, stake=2 * ETHER)
    registry.requestUnstake(ETHER * 3 // 2, {"from": s})  # 0.5 bonded, 1.5 unbonding
    tx = registry.slash(s, 0, {"from": gov_slasher})
    assert tx.events["Slashed"]["stakeLeft"] == 0
    assert tx.events["Slashed"]["unbondingLeft"] == ETHER
    assert (registry.totalBonded(), registry.totalUnbonding()) == (0, ETHER)


def test_slash_removes_the_span_of_an_active_server(registry, servers, protocol, gov_slasher):
    protocol.register(servers[0], 0, 20)
    protocol.register(servers[1], 20, 10)
    registry.slash(servers[0], 0, {"from": gov_slasher})
    assert list(registry.coverage()) == [0] * 20 + [1] * 10
    assert registry.maxActiveSpan() == 10


def test_slash_of_an_inactive_server_deactivates_it(registry, servers, protocol, gov_slasher, params):
    s = servers[0]
    protocol.register(s)
    registry.requestUnstake(params.min_stake, {"from": s})
    tx = registry.slash(s, 1, {"from": gov_slasher})
    assert tx.events["StatusChanged"]["from"] == Status.INACTIVE
    assert registry.getServer(s)["status"] == Status.DEACTIVATED


def test_slash_of_a_server_without_stake_moves_nothing(registry, pool, servers, protocol, clock, gov_slasher, params):
    s = servers[0]
    protocol.register(s)
    registry.requestUnstake(params.min_stake, {"from": s})
    clock.sleep(params.unbonding_period)
    registry.withdraw({"from": s})
    tx = registry.slash(s, 0, {"from": gov_slasher})
    assert tx.return_value == 0
    assert "SlashDeposited" not in tx.events
    assert pool.totalSlashed() == 0


def test_zero_slash_fraction_only_deactivates(registry, servers, protocol, gov, gov_slasher):
    registry.setSlashFraction(0, {"from": gov})
    protocol.register(servers[0])
    tx = registry.slash(servers[0], 0, {"from": gov_slasher})
    assert tx.return_value == 0
    assert registry.getServer(servers[0])["status"] == Status.DEACTIVATED


def test_a_deactivated_server_keeps_only_unbond_and_withdraw(registry, servers, protocol, clock, gov_slasher):
    s = servers[0]
    protocol.register(s, stake=2 * ETHER)
    registry.slash(s, 0, {"from": gov_slasher})
    with reverts("ServerIsDeactivated", s):
        registry.slash(s, 0, {"from": gov_slasher})
    with reverts("ServerIsDeactivated", s):
        registry.updateServer("http://new", 0, 30, {"from": s})
    registry.requestUnstake(ETHER, {"from": s})
    clock.sleep(registry.unbondingPeriod())
    before = balance(s)
    registry.withdraw({"from": s})
    assert balance(s) == before + ETHER
    assert registry.getServer(s)["status"] == Status.DEACTIVATED


def test_slash_reverts_for_unknown_servers_and_unauthorized_callers(registry, servers, stranger, protocol, gov_slasher):
    with reverts("NotRegistered", stranger):
        registry.slash(stranger, 0, {"from": gov_slasher})
    protocol.register(servers[0])
    with reverts("AccessControlUnauthorizedAccount", stranger, role("SLASHER_ROLE")):
        registry.slash(servers[0], 0, {"from": stranger})
