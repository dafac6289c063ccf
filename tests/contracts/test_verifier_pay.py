"""Verifying is paid (issue 13): VERIFIER_SHARE of an epoch's pool goes in equal parts to the verifiers that revealed
their scores, did not withhold a seed share and were not found more than κ from a median; servers share the rest
by weight. Every wei is accounted for: what is claimed never exceeds the pool, and the rest rolls over."""

from dataclasses import replace

import pytest
from conftest import ETHER, ONE, Clock, Phase, Protocol, balance, reverts, role

from tests.support.params import TEST_PARAMS

SHARE = ONE // 20  # 5%, the default
POOL = 3 * ETHER + 1  # not divisible: leaves dust


@pytest.fixture(scope="module")
def paid(deploy, verifiers):
    system = deploy(replace(TEST_PARAMS, verifier_share=SHARE))
    return Protocol(system, Clock(system.schedule), verifiers)


@pytest.fixture
def server(paid, servers):
    paid.register(servers[0])
    return servers[0]


def settle(paid, epoch, work, accuracies, client):
    pool = paid.system.pool
    pool.fundEpoch(epoch, {"from": client, "value": POOL})
    paid.run_epoch(epoch, work, accuracies)
    paid.settle(epoch)
    return pool


def test_three_honest_verifiers_share_the_pot(paid, server, verifiers, client):
    pool = settle(paid, 0, {server: 10}, {server: ONE}, client)
    assert pool.VERIFIER_SHARE() == SHARE
    pot = POOL * SHARE // ONE
    assert pool.verifierPot(0) == pot
    assert pool.epochPool(0)["verifiers"] == 3
    assert pool.shareOf(0, server) == POOL - pot  # the only server: all of the rest

    paid_out = 0
    for v in verifiers:
        before = balance(v)
        tx = pool.claimRewards([0], {"from": v})
        assert tx.events["RewardsClaimed"] == {"server": v, "epoch": 0, "amount": pot // 3}
        assert balance(v) == before + pot // 3  # verifiers send no value, and gas is free on the test chain
        paid_out += pot // 3
    paid_out += pool.claimRewards([0], {"from": server}).return_value
    assert paid_out <= POOL
    assert pool.epochPool(0)["claimed"] == paid_out
    assert POOL - paid_out == pot % 3  # the dust, rolled over after the claim period


def test_a_deviating_or_silent_verifier_is_not_paid(paid, server, verifiers, client, stranger):
    honest, liar, silent = verifiers
    system = paid.system
    system.pool.fundEpoch(0, {"from": client, "value": POOL})
    paid.commit_work(0, {server: 10})
    reveals = [paid.reveal_for(v, 0, {server: a}) for v, a in zip(verifiers, [ONE, 0, ONE], strict=True)]
    paid.clock.to_phase(0, Phase.COMMIT_SCORES)
    for r in reveals:
        paid.commit_scores(r)
    paid.clock.to_phase(0, Phase.REVEAL_SCORES)
    for r in reveals[:2]:
        paid.reveal_scores(r)
    assert system.pool.epochPool(0)["verifiers"] == 2
    paid.finalize(0, [server])  # median of (1, 0) is 0.5: nobody deviates by more than κ yet...
    assert system.pool.epochPool(0)["verifiers"] == 2
    system.scoring.penalizeNoReveal(0, silent, {"from": stranger})
    paid.settle(0)
    pot = system.pool.verifierPot(0)
    assert system.pool.shareOf(0, honest) == system.pool.shareOf(0, liar) == pot // 2
    assert system.pool.shareOf(0, silent) == 0
    with reverts("NothingToClaim"):
        system.pool.claimRewards([0], {"from": silent})


def test_the_liar_loses_its_pay_to_the_others(paid, servers, verifiers, client):
    a = servers[0]
    paid.register(a)
    pool = settle(paid, 0, {a: 10}, [{a: ONE}, {a: ONE}, {a: 0}], client)
    pot = POOL * SHARE // ONE
    assert [pool.shareOf(0, v) for v in verifiers] == [pot // 2, pot // 2, 0]
    assert pool.isPaidVerifier(0, verifiers[0]) and not pool.isPaidVerifier(0, verifiers[2])


def test_an_epoch_nobody_earned_pays_no_verifier_and_rolls_over_whole(paid, server, verifiers, client):
    pool = settle(paid, 0, {server: 10}, {server: 0}, client)  # the server fails: no weight
    assert pool.epochPool(0)["verifiers"] == 3
    assert pool.verifierPot(0) == 0
    assert pool.shareOf(0, verifiers[0]) == 0
    current = paid.clock.epoch()
    before, whole = pool.poolSize(current), pool.poolSize(0)  # funded, plus the failed server's slashed stake
    assert whole > POOL
    pool.rollOver(0, {"from": client})
    assert pool.poolSize(current) == before + whole


def test_only_the_scorer_adds_and_removes_verifiers(paid, stranger):
    pool = paid.system.pool
    for call in (pool.addVerifier, pool.removeVerifier):
        with reverts("AccessControlUnauthorizedAccount", stranger, role("SCORER_ROLE")):
            call(0, stranger, {"from": stranger})


def test_the_share_is_bounded_at_deployment(paid, gov):
    from brownie import RewardPool

    schedule = paid.system.schedule
    with reverts("ParameterOutOfBounds"):
        RewardPool.deploy(gov, schedule, 100, ONE // 2 + 1, {"from": gov})
    assert RewardPool.deploy(gov, schedule, 100, ONE // 2, {"from": gov}).VERIFIER_SHARE() == ONE // 2
