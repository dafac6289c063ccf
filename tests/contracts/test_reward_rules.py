"""Self-dealing does not pay (issue 14), end to end through the ABI.

The attack: an operator runs a server and a client. The client deposits, pays its own server for a flood of work
(a signed receipt, redeemed: the fee goes from one of its pockets to the other) and the server commits that work.
Under the paper's work-weighted rule (weight S_i x work units) the flood buys the operator a larger share of the
epoch's pool than the honest server beside it gets, for nothing: self-dealing pays. Under the stake-weighted rule
(weight S_i x the stake it held through the epoch, ``--reward-rule stake``, required on public chains) its share is
what its stake earns whatever work it claims, and its own fees only went round in a circle.
"""

from dataclasses import replace

import pytest
from brownie import web3
from conftest import ETHER, ONE, Clock, Protocol

from efedllm.chain.connection import Signer
from efedllm.receipts import Receipt, ReceiptDomain, typed_signer
from tests.support.params import TEST_PARAMS

POOL = 10 * ETHER


def network(deploy, verifiers, rule: int) -> Protocol:
    system = deploy(replace(TEST_PARAMS, reward_rule=rule))
    return Protocol(system, Clock(system.schedule), verifiers)


def self_dealing_epoch(p: Protocol, honest, dealer, dealer_client, client) -> dict:
    """Epoch 1: both servers staked 1 ETH and pass; the honest one served 10 steps for a client, the dealer
    claims 1000 steps it paid itself for. Returns each one's pool share."""
    p.register(honest)
    p.register(dealer)
    system = p.system
    system.pool.fundEpoch(1, {"from": client, "value": POOL})
    system.payments.deposit({"from": dealer_client, "value": ETHER})
    p.clock.to_epoch(1)
    receipt = Receipt(client=str(dealer_client), server=str(dealer), epoch=1, amount=ETHER)
    data = ReceiptDomain(chain_id=web3.eth.chain_id, contract=str(system.payments)).data(receipt)
    signature = typed_signer(web3, Signer(str(dealer_client), None))(data)
    p.commit_work(1, {honest: 10, dealer: 1000})
    assert system.payments.redeem(receipt.as_tuple(), signature, {"from": dealer}).return_value == ETHER
    others = [s for s in (str(a) for a in p.system.registry.getServers(0, 10)[0]) if s not in (honest, dealer)]
    p.score(1, {honest: ONE, dealer: ONE, **dict.fromkeys(others, ONE)})
    p.finalize(1, [honest, dealer, *others])
    p.settle(1)
    return {"honest": system.pool.shareOf(1, honest), "dealer": system.pool.shareOf(1, dealer)}


def test_under_the_work_rule_self_dealing_buys_a_larger_share(deploy, verifiers, servers, client, accounts):
    p = network(deploy, verifiers, rule=0)
    shares = self_dealing_epoch(p, servers[0], servers[1], accounts[9], client)
    assert shares["dealer"] == POOL * 1000 // 1010  # 99% of the pool for fees it paid itself
    assert shares["dealer"] > 9 * shares["honest"]


def test_under_the_stake_rule_claimed_work_buys_nothing(deploy, verifiers, servers, client, accounts):
    p = network(deploy, verifiers, rule=1)
    assert p.system.scoring.REWARD_RULE() == 1
    idle = servers[2]
    p.register(idle)  # staked and verified like the others, but no client routed to it
    shares = self_dealing_epoch(p, servers[0], servers[1], accounts[9], client)
    third = p.system.pool.shareOf(1, idle)
    assert shares["dealer"] == shares["honest"] == third == POOL // 3  # equal stakes and scores: equal shares


@pytest.fixture
def staked(deploy, verifiers):
    return network(deploy, verifiers, rule=1)


def test_epoch_stake_is_a_fact_of_the_work_period(staked, servers, params):
    """Stake added during an epoch counts from the next; stake removed counts at once; nothing after the epoch
    changes it."""
    s = servers[0]
    registry, clock = staked.system.registry, staked.clock
    staked.register(s, stake=2 * ETHER)
    assert registry.epochStake(s, 0) == 2 * ETHER  # registered at genesis: all of epoch 0
    clock.to_epoch(1, offset=10)
    registry.addStake({"from": s, "value": 3 * ETHER})
    assert registry.epochStake(s, 1) == 2 * ETHER
    assert registry.epochStake(s, 2) == 5 * ETHER
    clock.to_epoch(2, offset=10)
    registry.requestUnstake(ETHER, {"from": s})
    assert registry.epochStake(s, 2) == 4 * ETHER  # removed during epoch 2: counts for it
    clock.to_epoch(3, offset=10)
    registry.requestUnstake(2 * ETHER, {"from": s})  # after epoch 2: changes epoch 3, not 2
    assert (registry.epochStake(s, 2), registry.epochStake(s, 3)) == (4 * ETHER, 2 * ETHER)


def test_stake_weights_shares_and_late_stake_earns_nothing(staked, servers, client):
    a, b = servers[:2]
    system = staked.system
    staked.register(a, stake=ETHER)
    staked.register(b, stake=3 * ETHER)
    system.pool.fundEpoch(0, {"from": client, "value": 4 * ETHER})
    staked.commit_work(0, {a: 5, b: 5})
    system.registry.addStake({"from": a, "value": 9 * ETHER})  # after the work period: too late for epoch 0
    staked.score(0, {a: ONE, b: ONE})
    tx = staked.finalize(0, [a, b])
    weights = {e["server"]: e["rewardWeight"] for e in tx.events["ServerScored"]}
    assert weights == {a: ONE * ETHER, b: ONE * 3 * ETHER}
    staked.settle(0)
    assert (system.pool.shareOf(0, a), system.pool.shareOf(0, b)) == (ETHER, 3 * ETHER)
