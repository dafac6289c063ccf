"""Governance: bounded setters, roles, and pause."""

import pytest
from conftest import ETHER, ONE, Phase, bytes32, reverts, role, root_of

YEAR = 365 * 24 * 3600

# (contract fixture, setter, parameter name, getter, min, max); None as a bound is computed from the system
SETTERS = [
    ("registry", "setMinStake", "minStake", "minStake", 1, 2**128 - 1),
    ("registry", "setUnbondingPeriod", "unbondingPeriod", "unbondingPeriod", None, YEAR),
    ("registry", "setSlashFraction", "slashFraction", "slashFraction", 0, ONE),
    ("scoring", "setTheta", "theta", "theta", 0, ONE),
    ("scoring", "setMinVerifiers", "minVerifiers", "minVerifiers", 1, 32),
    ("scoring", "setImmunityEpochs", "immunityEpochs", "immunityEpochs", 0, 1000),
]


def _bounds(system, low, high):
    if low is None:  # an epoch plus its windows, plus one second
        low = system.schedule.EPOCH_LENGTH() + system.schedule.settlementDelay() + 1
    return low, high


@pytest.mark.parametrize("contract, setter, name, getter, low, high", SETTERS, ids=[s[1] for s in SETTERS])
def test_bounded_setter(system, gov, contract, setter, name, getter, low, high):
    target = getattr(system, contract)
    low, high = _bounds(system, low, high)
    for value in (low, high):
        tx = getattr(target, setter)(value, {"from": gov})
        assert tx.events["ParameterSet"] == {"name": bytes32(name), "value": value}
        assert getattr(target, getter)() == value
    if low > 0:
        with reverts("ParameterOutOfBounds", bytes32(name), low - 1, low, high):
            getattr(target, setter)(low - 1, {"from": gov})
    with reverts("ParameterOutOfBounds", bytes32(name), high + 1, low, high):
        getattr(target, setter)(high + 1, {"from": gov})
    assert getattr(target, getter)() == high


@pytest.mark.parametrize("contract, setter", [(s[0], s[1]) for s in SETTERS], ids=[s[1] for s in SETTERS])
def test_setters_are_for_the_governor_only(system, stranger, contract, setter):
    target = getattr(system, contract)
    with reverts("AccessControlUnauthorizedAccount", stranger, role("GOVERNOR_ROLE")):
        getattr(target, setter)(1, {"from": stranger})


def test_set_weight(registry, servers, gov, protocol):
    s = servers[0]
    protocol.register(s)
    for value in (1, 100 * ONE):
        tx = registry.setWeight(s, value, {"from": gov})
        assert tx.events["WeightSet"] == {"server": s, "weight": value}
        assert registry.getServer(s)["weight"] == value
    for value in (0, 100 * ONE + 1):
        with reverts("ParameterOutOfBounds", bytes32("weight"), value, 1, 100 * ONE):
            registry.setWeight(s, value, {"from": gov})


def test_set_weight_reverts(registry, servers, gov, stranger, protocol):
    with reverts("NotRegistered", stranger):
        registry.setWeight(stranger, ONE, {"from": gov})
    protocol.register(servers[0])
    with reverts("AccessControlUnauthorizedAccount", stranger, role("GOVERNOR_ROLE")):
        registry.setWeight(servers[0], ONE, {"from": stranger})


def test_a_raised_min_stake_applies_to_new_registrations(registry, servers, gov, protocol):
    protocol.register(servers[0])
    registry.setMinStake(2 * ETHER, {"from": gov})
    with reverts("InsufficientStake", ETHER, 2 * ETHER):
        protocol.register(servers[1], stake=ETHER)


def test_roles_are_granted_by_the_admin_only(scoring, gov, stranger, servers):
    verifier_role = role("VERIFIER_ROLE")
    with reverts("AccessControlUnauthorizedAccount", stranger, role("DEFAULT_ADMIN_ROLE")):
        scoring.grantRole(verifier_role, stranger, {"from": stranger})
    scoring.grantRole(verifier_role, stranger, {"from": gov})
    assert scoring.hasRole(verifier_role, stranger)
    with reverts("AccessControlBadConfirmation"):
        scoring.renounceRole(verifier_role, servers[0], {"from": stranger})
    scoring.renounceRole(verifier_role, stranger, {"from": stranger})
    assert not scoring.hasRole(verifier_role, stranger)


@pytest.mark.parametrize("contract", ["pool", "registry", "ledger", "scoring"])
def test_pause_and_unpause_by_the_governor(system, gov, stranger, contract):
    target = getattr(system, contract)
    with reverts("AccessControlUnauthorizedAccount", stranger, role("GOVERNOR_ROLE")):
        target.pause({"from": stranger})
    with reverts("ExpectedPause"):
        target.unpause({"from": gov})
    tx = target.pause({"from": gov})
    assert tx.events["Paused"] == {"account": gov}
    assert target.paused()
    with reverts("EnforcedPause"):
        target.pause({"from": gov})
    with reverts("AccessControlUnauthorizedAccount", stranger, role("GOVERNOR_ROLE")):
        target.unpause({"from": stranger})
    tx = target.unpause({"from": gov})
    assert tx.events["Unpaused"] == {"account": gov}
    assert not target.paused()


@pytest.fixture
def staged(servers, client, pool, registry, protocol):
    """A server with unbonded stake ready to withdraw, and everything set up for each window of epoch 0."""
    s = servers[0]
    protocol.register(s, stake=2 * ETHER)
    protocol.register(servers[1])
    registry.requestUnstake(ETHER // 2, {"from": s})
    pool.fundEpoch(0, {"from": client, "value": ETHER})
    return s


def test_pause_blocks_every_entry_point(system, gov, staged, servers, verifiers, client, protocol, clock):
    """Each entry point is called in its own window: paused it reverts with EnforcedPause, unpaused it runs."""
    s = staged
    other = servers[2]
    pool, registry, ledger, scoring = system.pool, system.registry, system.ledger, system.scoring

    def check(contract, call):
        contract.pause({"from": gov})
        with reverts("EnforcedPause"):
            call()
        contract.unpause({"from": gov})
        return call()

    check(registry, lambda: protocol.register(other))
    check(registry, lambda: registry.addStake({"from": s, "value": 1}))
    check(registry, lambda: registry.updateServer("http://x", 0, 30, {"from": s}))
    check(registry, lambda: registry.requestUnstake(1, {"from": s}))
    check(pool, lambda: pool.fundEpoch(0, {"from": client, "value": 1}))

    salts = [bytes32(f"seed:{str(v)[2:12]}") for v in verifiers[:2]]
    for v, salt in zip(verifiers[:2], salts, strict=True):
        commitment = scoring.seedShareHash(v, 0, salt)
        if v == verifiers[0]:
            check(scoring, lambda: scoring.commitSeed(0, commitment, {"from": v}))  # noqa: B023
        else:
            scoring.commitSeed(0, commitment, {"from": v})
    clock.to_phase(0, Phase.COMMIT_WORK)
    check(ledger, lambda: ledger.commitWork(0, root_of(s, 0), 1, {"from": s}))

    clock.to_phase(0, Phase.COMMIT_SCORES)
    check(scoring, lambda: scoring.revealSeed(0, salts[0], {"from": verifiers[0]}))
    clock.goto(scoring.seedReadyAt(0))  # the other share is withheld: the seed waited for it until now
    ledger.pause({"from": gov})  # WorkLedger.recordSeed honours the ledger's pause too
    with reverts("EnforcedPause"):
        scoring.drawSeed(0, {"from": client})
    ledger.unpause({"from": gov})
    check(scoring, lambda: scoring.drawSeed(0, {"from": client}))
    reveals = [protocol.reveal_for(v, 0, {s: ONE}) for v in verifiers[:2]]
    check(scoring, lambda: protocol.commit_scores(reveals[0]))
    protocol.commit_scores(reveals[1])

    clock.to_phase(0, Phase.REVEAL_SCORES)
    check(scoring, lambda: protocol.reveal_scores(reveals[0]))
    protocol.reveal_scores(reveals[1])

    clock.to_phase(0, Phase.FINALIZE)
    check(scoring, lambda: scoring.finalize(0, [s], {"from": client}))
    check(scoring, lambda: scoring.penalizeSeedWithheld(0, verifiers[1], {"from": client}))

    clock.to_phase(0, Phase.SETTLED)
    check(pool, lambda: pool.claimRewards([0], {"from": s}))
    unearned = clock.epoch()
    pool.fundEpoch(unearned, {"from": client, "value": 1})
    clock.to_phase(unearned, Phase.SETTLED)
    check(pool, lambda: pool.rollOver(unearned, {"from": client}))

    clock.sleep(registry.unbondingPeriod())
    check(registry, lambda: registry.withdraw({"from": s}))


def test_pausing_one_contract_leaves_the_others_running(system, gov, servers, client, protocol):
    system.registry.pause({"from": gov})
    system.pool.fundEpoch(0, {"from": client, "value": 1})
    with reverts("EnforcedPause"):
        protocol.register(servers[0])
