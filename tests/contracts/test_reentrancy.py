"""Re-entry through a server contract's receive(): the guard stops it and the outer payment reverts whole."""

import pytest
from brownie import ReentrancyAttacker
from conftest import ETHER, ONE, Phase, balance, reverts


@pytest.fixture
def attacker(system, gov):
    return ReentrancyAttacker.deploy(system.registry, system.pool, {"from": gov})


def _snapshot(system, attacker):
    record = system.registry.getServer(attacker)
    return {
        "attacker": balance(attacker),
        "registry": balance(system.registry),
        "pool": balance(system.pool),
        "stake": record["stake"],
        "unbonding": record["unbonding"],
        "totalBonded": system.registry.totalBonded(),
        "totalUnbonding": system.registry.totalUnbonding(),
        "totalPaid": system.pool.totalPaid(),
        "reentries": attacker.reentries(),
    }


def test_reentering_withdraw_fails_and_changes_nothing(system, attacker, servers, gov, protocol, clock):
    registry = system.registry
    attacker.register("http://attacker", 0, 30, {"from": gov, "value": 2 * ETHER})
    attacker.requestUnstake(ETHER, {"from": gov})
    honest = servers[0]
    protocol.register(honest, stake=2 * ETHER)
    registry.requestUnstake(ETHER, {"from": honest})
    clock.sleep(registry.unbondingPeriod())
    before = _snapshot(system, attacker)

    with reverts("TransferFailed") as seen:
        attacker.attackWithdraw({"from": gov})

    assert "ReentrancyGuardReentrantCall" in seen.nested
    assert _snapshot(system, attacker) == before

    honest_before = balance(honest)
    registry.withdraw({"from": honest})
    assert balance(honest) == honest_before + ETHER
    assert balance(registry) == before["registry"] - ETHER


def test_reentering_claim_fails_and_changes_nothing(system, attacker, servers, gov, client, protocol):
    pool = system.pool
    honest = servers[0]
    attacker.register("http://attacker", 0, 30, {"from": gov, "value": ETHER})
    protocol.register(honest)
    pool.fundEpoch(0, {"from": client, "value": 4 * ETHER})
    protocol.clock.to_phase(0, Phase.COMMIT_WORK)
    attacker.commitWork(system.ledger, 0, "0x" + "ab" * 32, 1, {"from": gov})
    protocol.run_epoch(0, {honest: 1}, {honest: ONE, attacker: ONE}, finalize=[honest, attacker])
    assert pool.rewardWeight(0, attacker) == ONE
    protocol.settle(0)
    before = _snapshot(system, attacker)

    with reverts("TransferFailed") as seen:
        attacker.attackClaim([0], {"from": gov})

    assert "ReentrancyGuardReentrantCall" in seen.nested
    assert _snapshot(system, attacker) == before
    assert not pool.hasClaimed(0, attacker)
    assert pool.pendingRewards(attacker, [0]) == 2 * ETHER

    honest_before = balance(honest)
    pool.claimRewards([0], {"from": honest})
    assert balance(honest) == honest_before + 2 * ETHER
    assert balance(pool) == 2 * ETHER
