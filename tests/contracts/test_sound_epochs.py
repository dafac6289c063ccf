"""Sound epochs (issue #13): the audit's findings, each run end to end through the ABI as the attacker would.

Every test here failed on the contracts before the fix (the exploit went through) and passes now; the
slashing-rule tests at the end pin the new rule (some of their cases held before too).

1. max(l) was read from the registry by an epoch's first finalize call, so anyone could set it: register a
   full-span server in the Finalize window, call ``finalize(e, [])`` first, unstake. Honest short spans scored
   below θ and, under the paper's rule, lost stake. The reverse held too: the longest span leaving before the
   first finalize raised everyone else's score. max(l) is now the fact of e's work period (``maxSpanOf``).
2. l_i was the span snapshotted at commitWork (or the live span without a commitment), so a server chose its own
   l_i after the work period: move to a full span, commit (or just wait for finalize), move back.
3. A server registered seconds before an epoch ended was paid for all of it. It is now paid from the next full
   epoch; the work it did in its last seconds is still committed and scored (fraud there is slashed), unpaid, and
   its span does not count towards that epoch's max(l). One registered after the work period cannot commit for it.
4. Pay required the live status Active at finalize: a server that served all of e and unstaked after e's work
   period lost its share to the others. Pay now needs ``active`` all through the work period only.
5. Pause did not stop finalize from moving stake (slash, depositSlashed, recordWeight ignored it); a pool had no
   cap; an earned pool's unclaimed rest was locked for good; the 16-bit layer counters wrapped silently.

Plus the slashing rule: by default θ is compared with the median accuracy (a short honest span is never slashed
for its span); ``slashing_rule=1`` is the paper's eq. 4 (S_i < θ slashes). S_i is the reward weight either way.
"""

from dataclasses import replace

import pytest
from brownie import web3
from conftest import (
    ETHER,
    ONE,
    TEST_PARAMS,
    Clock,
    Outcome,
    Phase,
    Protocol,
    Status,
    balance,
    reverts,
    root_of,
    score_eq3,
)
from eth_abi import encode as abi_encode

PAPER_RULE = replace(TEST_PARAMS, slashing_rule=1)  # slashed iff S_i < θ (the paper's eq. 4)
CLAIM_PERIOD = 50
SHORT_CLAIMS = replace(TEST_PARAMS, claim_period=CLAIM_PERIOD)
MAX_POOL = 2**128 - 1
MAX_WORK_UNITS = 2**40


@pytest.fixture
def paper(deploy, verifiers):
    system = deploy(PAPER_RULE)
    return Protocol(system, Clock(system.schedule), verifiers)


@pytest.fixture
def short_claims(deploy, verifiers):
    system = deploy(SHORT_CLAIMS)
    return Protocol(system, Clock(system.schedule), verifiers)


def claim(pool, server, epoch: int) -> int:
    """Claim ``server``'s share of ``epoch``; returns the wei it received (gas is free on the test chain)."""
    before = balance(server)
    pool.claimRewards([epoch], {"from": server})
    return balance(server) - before


# ------------------------------------------------------------------------------------------------ 1. max(l)


def test_max_span_cannot_be_inflated_after_the_work_period(paper, servers, stranger, client):
    """The audit's attack: two honest 16-layer servers at acc 0.9 under the paper's rule scored 0.9 * 16/30 = 0.48
    < θ and were slashed, because the attacker's 30-layer registration in the Finalize window was read as max(l)."""
    p, attacker = paper, stranger
    reg, scoring, pool = p.system.registry, p.system.scoring, p.system.pool
    h1, h2 = servers[:2]
    p.register(h1, 0, 16)
    p.register(h2, 14, 16)
    pool.fundEpoch(0, {"from": client, "value": 2 * ETHER})
    p.commit_work(0, {h1: 5, h2: 5})
    p.score(0, {h1: ONE * 9 // 10, h2: ONE * 9 // 10})

    p.clock.to_phase(0, Phase.FINALIZE)
    p.register(attacker, 0, 30)
    scoring.finalize(0, [], {"from": attacker})  # was: caches max(l) = 30 for epoch 0
    reg.requestUnstake(p.system.params.min_stake, {"from": attacker})
    tx = scoring.finalize(0, [h1, h2], {"from": attacker})

    assert "Slashed" not in tx.events
    for h in (h1, h2):
        score = scoring.scoreOf(0, h)
        assert score["maxLayers"] == 16
        assert score["score"] == ONE * 9 // 10
        assert score["outcome"] == Outcome.PASSED
        assert reg.getServer(h)["status"] == Status.ACTIVE
        assert reg.getServer(h)["stake"] == p.system.params.min_stake
        assert pool.rewardWeight(0, h) == ONE * 9 // 10 * 5
    assert reg.maxSpanOf(0) == 16
    p.settle(0)
    assert claim(pool, h1, 0) == ETHER
    assert claim(pool, h2, 0) == ETHER


def test_the_longest_span_leaving_before_finalize_does_not_raise_the_others_scores(
    registry, scoring, pool, servers, client, protocol, params
):
    """max(l) stays what it was at the start of the epoch's work period when the longest span exits after it."""
    long, b, c = servers[:3]
    protocol.register(long, 0, 30)
    protocol.register(b, 0, 16)
    protocol.register(c, 14, 16)
    pool.fundEpoch(0, {"from": client, "value": 10 * ETHER})
    protocol.commit_work(0, {long: 4, b: 4, c: 4})
    registry.requestUnstake(params.min_stake, {"from": long})  # before any finalize of epoch 0
    assert registry.maxActiveSpan() == 16
    protocol.score(0, {long: ONE, b: ONE, c: ONE})
    protocol.finalize(0, [b, c, long])

    for s in (b, c):
        score = scoring.scoreOf(0, s)
        assert score["maxLayers"] == 30
        assert score["score"] == ONE * 16 // 30
        assert pool.rewardWeight(0, s) == ONE * 16 // 30 * 4
    assert scoring.scoreOf(0, long)["score"] == ONE
    assert pool.rewardWeight(0, long) == 4 * ONE  # it served all of epoch 0 (finding 4)


# ------------------------------------------------------------------------------------------------ 2. l_i


def test_a_server_cannot_commit_with_a_longer_span_than_it_served(paper, servers):
    """8 layers during the work period, 30 while committing, 8 again before finalize: l_i is 8."""
    p = paper
    reg, ledger, scoring, pool = p.system.registry, p.system.ledger, p.system.scoring, p.system.pool
    cheat, other = servers[:2]
    p.register(cheat, 0, 8)
    p.register(other, 8, 22)
    p.clock.to_phase(0, Phase.COMMIT_WORK, 1)
    reg.updateServer("http://cheat.example", 0, 30, {"from": cheat})
    ledger.commitWork(0, root_of(cheat, 0), 3, {"from": cheat})
    reg.updateServer("http://cheat.example", 0, 8, {"from": cheat})
    p.commit_work(0, {other: 3})
    p.score(0, {cheat: ONE, other: ONE})
    tx = p.finalize(0, [cheat, other])

    assert ledger.commitmentOf(0, cheat)["numLayers"] == 8
    score = scoring.scoreOf(0, cheat)
    assert (score["numLayers"], score["maxLayers"]) == (8, 22)
    assert score["score"] == ONE * 8 // 22  # < θ: the paper's rule slashes it
    assert score["outcome"] == Outcome.SLASHED
    assert reg.getServer(cheat)["status"] == Status.DEACTIVATED
    assert pool.rewardWeight(0, cheat) == 0
    assert [e["server"] for e in tx.events["Slashed"]] == [cheat]
    assert scoring.scoreOf(0, other)["score"] == ONE
    assert scoring.scoreOf(0, other)["maxLayers"] == 22
    assert pool.rewardWeight(0, other) == 3 * ONE


def test_a_server_cannot_move_to_a_longer_span_before_finalize(paper, servers):
    """Without a commitment the live span was l_i: moving to 30 layers after the work period scored it 30/30."""
    p = paper
    reg, scoring = p.system.registry, p.system.scoring
    cheat, other = servers[:2]
    p.register(cheat, 0, 8)
    p.register(other, 8, 22)
    p.clock.to_phase(0, Phase.COMMIT_WORK, 1)
    reg.updateServer("http://cheat.example", 0, 30, {"from": cheat})
    p.score(0, {cheat: ONE, other: ONE})
    p.finalize(0, [cheat, other])

    score = scoring.scoreOf(0, cheat)
    assert (score["numLayers"], score["maxLayers"]) == (8, 22)
    assert score["score"] == ONE * 8 // 22
    assert score["outcome"] == Outcome.SLASHED
    assert reg.getServer(cheat)["status"] == Status.DEACTIVATED
    assert scoring.scoreOf(0, other)["maxLayers"] == 22
    assert scoring.scoreOf(0, other)["score"] == ONE
    assert reg.maxSpanOf(1) == 22  # the move was made after epoch 1's first second: it would count from epoch 2


# ------------------------------------------------------------------------------------------------ 3. late registration


def test_a_server_registered_10s_before_the_epoch_ends_is_not_paid_for_it(
    registry, ledger, scoring, pool, servers, client, clock, protocol
):
    """Registration pays from the next full epoch; at an epoch's exact first second that epoch is the next full one.
    The late server may commit what it served in its 10 s, and is scored for it, but takes no share of the pool;
    one registered after the work period has nothing to commit for it."""
    steady, late, on_time = servers[:3]
    protocol.register(steady)
    pool.fundEpoch(0, {"from": client, "value": ETHER})
    clock.goto(clock.end(0, Phase.WORK) - 10)
    protocol.register(late)
    clock.to_epoch(1)  # its first second, also the first second of epoch 0's CommitWork window
    protocol.register(on_time)

    protocol.commit_work(0, {steady: 1, late: 1})
    with reverts("ServerNotEligible", on_time):
        ledger.commitWork(0, root_of(on_time, 0), 1, {"from": on_time})
    protocol.score(0, {steady: ONE, late: ONE})
    protocol.finalize(0, [steady, late, on_time])
    assert scoring.scoreOf(0, late)["outcome"] == Outcome.PASSED
    assert scoring.scoreOf(0, on_time)["outcome"] == Outcome.NONE
    assert pool.rewardWeight(0, late) == 0
    protocol.settle(0)
    assert claim(pool, steady, 0) == ETHER

    protocol.run_epoch(1, {steady: 1, late: 1, on_time: 1}, {steady: ONE, late: ONE, on_time: ONE})
    for s in (steady, late, on_time):
        assert pool.rewardWeight(1, s) == ONE


def test_a_late_registration_is_scored_unpaid_and_slashable_for_the_epoch(
    registry, scoring, pool, servers, clock, protocol, params
):
    """A server that registers near an epoch's end and serves garbage for its last seconds is slashed for it (its
    work there is opened like anyone's); its span does not count towards that epoch's max(l)."""
    steady, late = servers[:2]
    protocol.register(steady, 0, 10)
    clock.goto(clock.end(0, Phase.WORK) - 10)
    protocol.register(late, 0, 30)
    protocol.commit_work(0, {steady: 1, late: 1})
    protocol.score(0, {steady: ONE, late: 0})
    tx = protocol.finalize(0, [steady, late])

    assert scoring.scoreOf(0, steady)["maxLayers"] == 10
    assert scoring.scoreOf(0, steady)["score"] == ONE
    assert scoring.scoreOf(0, late)["outcome"] == Outcome.SLASHED
    assert len(tx.events["Slashed"]) == 1
    assert registry.getServer(late)["status"] == Status.DEACTIVATED
    assert registry.getServer(late)["stake"] == params.min_stake // 2


# ------------------------------------------------------------------------------------------------ 4. unstaking after


def test_a_server_that_unstakes_after_the_work_period_keeps_its_pay(
    registry, scoring, pool, servers, client, protocol, clock, params
):
    leaver, steady, quitter = servers[:3]
    for s in (leaver, steady, quitter):
        protocol.register(s)
    pool.fundEpoch(0, {"from": client, "value": 10 * ETHER})
    clock.to_epoch(0, 50)
    registry.requestUnstake(params.min_stake, {"from": quitter})  # during the work period: not paid
    protocol.commit_work(0, {leaver: 5, steady: 5, quitter: 5})
    clock.to_phase(0, Phase.COMMIT_WORK, 5)
    registry.requestUnstake(params.min_stake, {"from": leaver})  # after it, before finalize: paid
    assert registry.getServer(leaver)["status"] == Status.INACTIVE
    protocol.score(0, {leaver: ONE, steady: ONE, quitter: ONE})
    protocol.finalize(0, [leaver, steady, quitter])

    for s in (leaver, steady, quitter):
        assert scoring.scoreOf(0, s)["outcome"] == Outcome.PASSED
    assert pool.rewardWeight(0, leaver) == 5 * ONE
    assert pool.rewardWeight(0, steady) == 5 * ONE
    assert pool.rewardWeight(0, quitter) == 0
    protocol.settle(0)
    assert claim(pool, leaver, 0) == 5 * ETHER
    assert claim(pool, steady, 0) == 5 * ETHER
    assert balance(pool) == 0


# ------------------------------------------------------------------------------------------------ 5. pause, pool limits


@pytest.mark.parametrize("paused", ["registry", "pool"])
def test_finalize_cannot_slash_while_paused(system, servers, stranger, gov, client, protocol, params, paused):
    reg, scoring, pool = system.registry, system.scoring, system.pool
    bad, good = servers[:2]
    protocol.register(bad)
    protocol.register(good)
    pool.fundEpoch(0, {"from": client, "value": ETHER})
    protocol.commit_work(0, {bad: 1, good: 1})
    protocol.score(0, {bad: 0, good: ONE})
    protocol.clock.to_phase(0, Phase.FINALIZE)
    target = getattr(system, paused)
    target.pause({"from": gov})
    before = (balance(reg), balance(pool), reg.getServer(bad)["stake"], reg.totalBonded(), pool.totalSlashed())

    with reverts("EnforcedPause"):
        scoring.finalize(0, [good, bad], {"from": stranger})

    assert (balance(reg), balance(pool), reg.getServer(bad)["stake"], reg.totalBonded(), pool.totalSlashed()) == before
    assert reg.getServer(bad)["status"] == Status.ACTIVE
    assert scoring.scoreOf(0, bad)["outcome"] == Outcome.NONE
    assert scoring.scoreOf(0, good)["outcome"] == Outcome.NONE

    target.unpause({"from": gov})  # still in the Finalize window
    scoring.finalize(0, [good, bad], {"from": stranger})
    assert scoring.scoreOf(0, bad)["outcome"] == Outcome.SLASHED
    assert pool.epochPool(0)["slashed"] == params.min_stake // 2


def test_finalize_cannot_record_pay_while_the_pool_is_paused(system, servers, stranger, gov, protocol):
    s = servers[0]
    protocol.register(s)
    protocol.commit_work(0, {s: 1})
    protocol.score(0, {s: ONE})
    protocol.clock.to_phase(0, Phase.FINALIZE)
    system.pool.pause({"from": gov})
    with reverts("EnforcedPause"):
        system.scoring.finalize(0, [s], {"from": stranger})
    assert system.pool.rewardWeight(0, s) == 0
    assert system.scoring.scoreOf(0, s)["outcome"] == Outcome.NONE


def test_a_pool_is_capped_and_pays_everyone_at_the_cap(pool, scoring, servers, client, clock, protocol):
    web3.provider.make_request("anvil_setBalance", [str(client), hex(4 * MAX_POOL)])
    with reverts("PoolTooLarge", 0, 0, MAX_POOL + 1, MAX_POOL):
        pool.fundEpoch(0, {"from": client, "value": MAX_POOL + 1})
    pool.fundEpoch(0, {"from": client, "value": MAX_POOL - 1})
    with reverts("PoolTooLarge", 0, MAX_POOL - 1, 2, MAX_POOL):
        pool.fundEpoch(0, {"from": client, "value": 2})
    pool.fundEpoch(0, {"from": client, "value": 1})
    assert pool.poolSize(0) == MAX_POOL == pool.MAX_POOL()

    a, b, c = servers[:3]
    for s in (a, b, c):
        protocol.register(s)
    work = {a: MAX_WORK_UNITS, b: 3, c: MAX_WORK_UNITS - 1}
    accs = {a: ONE, b: ONE * 2 // 3, c: ONE * 7 // 9}
    protocol.run_epoch(0, work, accs)
    weights = {s: scoring.scoreOf(0, s)["score"] * work[s] for s in (a, b, c)}
    total = sum(weights.values())
    protocol.settle(0)
    paid = 0
    for s in (a, b, c):
        share = MAX_POOL * weights[s] // total
        assert claim(pool, s, 0) == share > 0
        paid += share
    dust = MAX_POOL - paid
    assert 0 < dust == balance(pool)

    clock.goto(pool.claimDeadline(0))
    tx = pool.rollOver(0)
    assert tx.events["PoolRolledOver"]["amount"] == dust
    assert pool.epochPool(clock.epoch())["rolledIn"] == dust


def test_the_unclaimed_rest_rolls_over_after_the_claim_period(short_claims, servers, client):
    p = short_claims
    pool = p.system.pool
    a, b = servers[:2]
    p.register(a)
    p.register(b)
    pool.fundEpoch(0, {"from": client, "value": 3 * ETHER})
    p.run_epoch(0, {a: 1, b: 2}, {a: ONE, b: ONE})
    p.settle(0)
    assert claim(pool, a, 0) == ETHER

    deadline = p.clock.end(0, Phase.FINALIZE) + CLAIM_PERIOD
    p.clock.goto(deadline - 1)
    with reverts("NotRollable", 0):
        pool.rollOver(0)
    p.clock.goto(deadline)
    tx = pool.rollOver(0)
    current = p.clock.epoch()
    assert tx.events["PoolRolledOver"]["amount"] == 2 * ETHER == pool.poolSize(0) - pool.epochPool(0)["claimed"]
    assert tx.events["PoolRolledOver"]["toEpoch"] == current
    assert pool.epochPool(current)["rolledIn"] == 2 * ETHER
    with reverts("ClaimPeriodOver", 0):
        pool.claimRewards([0], {"from": b})
    with reverts("NotRollable", 0):
        pool.rollOver(0)
    assert pool.claimDeadline(0) == deadline
    assert pool.pendingRewards(b, [0]) == 0
    assert balance(pool) == 2 * ETHER


def _counts_slot(base: int, word: int) -> int:
    """Storage slot of ``words[word]`` of a LayerCounts.Counts (one mapping) at storage slot ``base``."""
    return int.from_bytes(web3.keccak(abi_encode(["uint256", "uint256"], [word, base])), "big")


def _read(registry, slot: int) -> int:
    return int.from_bytes(web3.eth.get_storage_at(str(registry), slot), "big")


def _counts_base(registry, word: int, expected: int) -> int:
    """The base slot of the LayerCounts whose ``words[word]`` now holds ``expected``, found by trying base slots,
    so that the test does not hard-code the registry's storage layout."""
    for base in range(64):
        if _read(registry, _counts_slot(base, word)) == expected:
            return base
    raise AssertionError(f"no LayerCounts word {word} holds {expected:#x}")


def _set_counter(registry, base: int, index: int, value: int) -> None:
    slot = _counts_slot(base, index // 16)
    lane = 16 * (index % 16)
    word = (_read(registry, slot) & ~(0xFFFF << lane)) | (value << lane)
    response = web3.provider.make_request("anvil_setStorageAt", [str(registry), hex(slot), f"0x{word:064x}"])
    assert "error" not in response, response


def test_a_layer_counter_stops_at_65535(registry, servers, protocol):
    """65535 servers on one layer are too many to register in a test: the counters are set near the limit in
    storage. Before, the 65536th server's count wrapped to 0 and carried into the next layer's counter."""
    first, second, third = servers[:3]
    protocol.register(first, 0, 30)
    coverage = _counts_base(registry, 1, sum(1 << (16 * i) for i in range(14)))  # layers 16..29 covered once
    spans = _counts_base(registry, 1, 1 << (16 * (30 - 16)))  # one span of length 30
    assert coverage != spans
    _set_counter(registry, coverage, 17, 0xFFFE)
    _set_counter(registry, spans, 5, 0xFFFF)

    protocol.register(second, 16, 14)  # layer 17 reaches 65535
    assert list(registry.coverage())[16:19] == [2, 0xFFFF, 2]
    with reverts("TooManyServers", 17):
        protocol.register(third, 17, 1)
    with reverts("TooManyServers", 5):
        protocol.register(third, 0, 5)  # a 65536th span of length 5
    protocol.register(third, 18, 12)
    with reverts("TooManyServers", 17):
        registry.updateServer("http://third.example", 10, 19, {"from": third})
    assert list(registry.coverage())[15:19] == [1, 2, 0xFFFF, 3]
    assert registry.getServer(third)["numLayers"] == 12


# ------------------------------------------------------------------------------------------------ the slashing rule


def test_the_deployment_chooses_the_rule(scoring, paper):
    assert scoring.SLASHING_RULE() == 0
    assert paper.system.scoring.SLASHING_RULE() == 1


@pytest.mark.parametrize("acc", [ONE, TEST_PARAMS.theta], ids=["acc-1", "acc-theta"])
def test_by_default_a_short_honest_span_passes_and_is_paid_its_score(
    registry, scoring, pool, servers, client, protocol, params, acc
):
    short, long = servers[:2]
    protocol.register(short, 0, 1)
    protocol.register(long, 1, 29)
    pool.fundEpoch(0, {"from": client, "value": ETHER})
    tx = protocol.run_epoch(0, {short: 7, long: 3}, {short: acc, long: ONE})

    score = scoring.scoreOf(0, short)
    assert score["score"] == score_eq3(acc, 1, 29) < params.theta
    assert score["outcome"] == Outcome.PASSED
    assert "Slashed" not in tx.events
    assert registry.getServer(short)["status"] == Status.ACTIVE
    assert registry.getServer(short)["stake"] == params.min_stake
    assert pool.rewardWeight(0, short) == score["score"] * 7
    assert pool.rewardWeight(0, long) == ONE * 3
    protocol.settle(0)
    assert claim(pool, short, 0) == ETHER * (score["score"] * 7) // (score["score"] * 7 + ONE * 3)


def test_by_default_an_accuracy_just_below_theta_is_slashed(registry, scoring, pool, servers, protocol, params):
    short, long = servers[:2]
    protocol.register(short, 0, 1)
    protocol.register(long, 1, 29)
    protocol.run_epoch(0, {short: 7, long: 3}, {short: params.theta - 1, long: ONE})
    assert scoring.scoreOf(0, short)["outcome"] == Outcome.SLASHED
    assert registry.getServer(short)["status"] == Status.DEACTIVATED
    assert registry.getServer(short)["stake"] == params.min_stake // 2
    assert pool.rewardWeight(0, short) == 0


def test_under_the_paper_rule_a_short_honest_span_is_slashed(paper, servers):
    p = paper
    short, long = servers[:2]
    p.register(short, 0, 1)
    p.register(long, 1, 29)
    p.run_epoch(0, {short: 7, long: 3}, {short: ONE, long: ONE})
    assert p.system.scoring.scoreOf(0, short)["score"] == ONE // 29
    assert p.system.scoring.scoreOf(0, short)["outcome"] == Outcome.SLASHED
    assert p.system.registry.getServer(short)["status"] == Status.DEACTIVATED
    assert p.system.pool.rewardWeight(0, short) == 0


@pytest.mark.parametrize("below", [0, 1], ids=["S-is-theta", "S-one-unit-below"])
def test_under_the_paper_rule_theta_bounds_the_score(paper, servers, below):
    """l = 15 beside max(l) = 30: S = acc / 2, so acc = 1.0 gives S = θ and acc = 1.0 - 1 wei gives θ - 1 wei."""
    p = paper
    half, full = servers[:2]
    p.register(half, 0, 15)
    p.register(full, 0, 30)
    p.run_epoch(0, {half: 2, full: 2}, {half: ONE - below, full: ONE})
    score = p.system.scoring.scoreOf(0, half)
    assert score["score"] == p.system.params.theta - below
    if below:
        assert score["outcome"] == Outcome.SLASHED
        assert p.system.registry.getServer(half)["status"] == Status.DEACTIVATED
        assert p.system.pool.rewardWeight(0, half) == 0
    else:
        assert score["outcome"] == Outcome.PASSED
        assert p.system.registry.getServer(half)["status"] == Status.ACTIVE
        assert p.system.pool.rewardWeight(0, half) == score["score"] * 2


# ------------------------------------------------------------------------------------------------ lost records


def test_a_declared_loss_forfeits_the_epoch_without_a_slash(registry, ledger, scoring, pool, servers, clock, protocol):
    """A server that lost its data directory after committing declares it before the seed is drawn: verifiers that
    still report 0 for it (every opening refused) cannot slash it; it is not paid for the epoch either."""
    lost, steady = servers[:2]
    for s in (lost, steady):
        protocol.register(s)
    protocol.commit_work(0, {lost: 3, steady: 3})
    tx = ledger.declareLoss(0, {"from": lost})
    assert tx.events["LossDeclared"] == {"epoch": 0, "server": lost}
    assert ledger.commitmentOf(0, lost)["lost"]
    protocol.score(0, {lost: 0, steady: ONE})
    tx = protocol.finalize(0, [lost, steady])

    assert scoring.scoreOf(0, lost)["outcome"] == Outcome.FORFEITED
    assert "Slashed" not in tx.events
    assert registry.getServer(lost)["status"] == Status.ACTIVE
    assert pool.rewardWeight(0, lost) == 0
    assert pool.rewardWeight(0, steady) == 3 * ONE


def test_a_loss_cannot_be_declared_once_the_sample_is_known(ledger, scoring, servers, verifiers, clock, protocol):
    """Declaring after the seed is drawn would let a cheater see which leaves are sampled and escape; before
    committing there is nothing to declare; during the work period it is too early."""
    s, idle = servers[:2]
    protocol.register(s)
    protocol.register(idle)
    with reverts("WrongPhase", 0, Phase.COMMIT_WORK, Phase.WORK):
        ledger.declareLoss(0, {"from": s})
    protocol.commit_work(0, {s: 1})
    with reverts("NothingToDeclare", 0, idle):
        ledger.declareLoss(0, {"from": idle})
    clock.to_phase(0, Phase.COMMIT_SCORES)
    scoring.drawSeed(0, {"from": verifiers[0]})
    with reverts("SeedAlreadyDrawn", 0):
        ledger.declareLoss(0, {"from": s})


def test_a_loss_is_declared_once(ledger, servers, protocol):
    s = servers[0]
    protocol.register(s)
    protocol.commit_work(0, {s: 1})
    ledger.declareLoss(0, {"from": s})
    with reverts("NothingToDeclare", 0, s):
        ledger.declareLoss(0, {"from": s})
