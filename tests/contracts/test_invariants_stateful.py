"""Random sequences of staking, work, verification, finalization, funding and claims against a Python model.

The machine walks the epoch cycle forward: ``rule_advance`` moves through the next windows and, in each, does
what the window is for with random choices (servers commit work or not; verifiers are honest, random or absent,
reveal or not; servers are finalized in random batches, or a window passes idle), ``rule_settle_epoch`` runs the
rest of the current epoch. The other rules register, stake, unstake (also all of it and straight back in),
withdraw, fund, claim and roll over at any time. The model predicts every outcome, reverts included,
and after every step the invariants check:

(a) the ETH held by ServerRegistry and RewardPool equals bonded + unbonding stake + unclaimed pools
    (sum over epochs of poolSize - claimed - rolled out), and the registry holds exactly the stake;
(b) no server has a reward weight, or was paid, for an epoch in which it was not active all along;
(c) total paid <= total funded + total slashed.
"""

import os
from dataclasses import dataclass, field, replace

import pytest
from conftest import (
    ETHER,
    ONE,
    TEST_PARAMS,
    Clock,
    Outcome,
    Phase,
    Status,
    balance,
    deploy_system,
    median,
    read_batch,
    reverts,
    root_of,
    score_eq3,
    scores_hash,
    sort_addresses,
)
from hypothesis import strategies as st

# the shortest unbonding period allowed (an epoch and its windows, plus one second), so withdrawals happen
PARAMS = replace(TEST_PARAMS, min_verifiers=2, immunity_epochs=1, unbonding_period=181)
STAGES = (Phase.WORK, Phase.COMMIT_WORK, Phase.COMMIT_SCORES, Phase.REVEAL_SCORES, Phase.FINALIZE)
# what an honest verifier finds, per server and epoch: mostly passing, including both sides of θ
ACCURACIES = (ONE, ONE * 9 // 10, ONE, ONE * 8 // 10, ONE, PARAMS.theta, PARAMS.theta - 1, ONE // 5, 0)
# (server index, first layer, layers, stake) registered before the machine starts; server 3 registers by rule
INITIAL_SERVERS = ((0, 0, 30, 2 * ETHER), (1, 0, 30, ETHER), (2, 10, 20, 3 * ETHER))
INITIAL_FUNDING = 5 * ETHER
# bounds on the work of one example, to keep the test's time in check; EFEDLLM_SLOW=1 (`make test-slow`) runs many
# more and longer examples, as a soak before a release
SLOW = os.environ.get("EFEDLLM_SLOW") == "1"
LAST_EPOCH = 4 if SLOW else 2
REVERT_CHECKS = 6
EXAMPLES = {"max_examples": 250, "stateful_step_count": 50} if SLOW else {"max_examples": 20, "stateful_step_count": 25}


@dataclass
class Server:
    status: int
    stake: int
    n: int
    registered: int
    active_since: int
    unbonding: int = 0
    unlock: int = 0


@dataclass
class Pool:
    funded: int = 0
    slashed: int = 0
    rolled_in: int = 0
    claimed: int = 0
    weights: dict = field(default_factory=dict)
    claimed_by: set = field(default_factory=set)
    rolled_out: bool = False

    @property
    def size(self) -> int:
        return self.funded + self.slashed + self.rolled_in

    @property
    def total_weight(self) -> int:
        return sum(self.weights.values())

    @property
    def unclaimed(self) -> int:
        return 0 if self.rolled_out else self.size - self.claimed

    def share(self, server: str) -> int:
        total = self.total_weight
        return self.size * self.weights.get(server, 0) // total if total else 0


class StateMachine:
    server_index = st.integers(min_value=0, max_value=3)
    stake = st.sampled_from([2 * ETHER, ETHER, ETHER - 1, ETHER // 2])
    first_layer = st.integers(min_value=0, max_value=29)
    span = st.integers(min_value=1, max_value=30)
    amount = st.sampled_from([ETHER, 1, ETHER // 4, 2 * ETHER])
    unstake_share = st.sampled_from([2, 1, 4, 10**6])  # the bonded stake is divided by this; 1 = everything
    fund_offset = st.integers(min_value=-1, max_value=2)
    stages = st.integers(min_value=1, max_value=5)
    data = st.data()

    def __init__(cls, system, servers, verifiers, client):
        cls.system = system
        cls.clock = Clock(system.schedule)
        cls.server_accounts = list(servers)
        cls.verifier_accounts = list(verifiers)
        cls.client = client

    def setup(self):
        self.servers: dict[str, Server] = {
            str(self.server_accounts[i]): Server(Status.ACTIVE, stake, n, 0, 0) for i, _, n, stake in INITIAL_SERVERS
        }
        self.pools: dict[int, Pool] = {0: Pool(funded=INITIAL_FUNDING)}
        self.inactive_in: dict[int, set] = {}  # epoch -> servers that were not active at some time during it
        self.commitments: dict[int, dict] = {}  # epoch -> server -> (work units, span)
        self.truth: dict[int, dict] = {}  # epoch -> server -> the accuracy an honest verifier reports
        self.pending_reveals: dict = {}
        self.reveals: dict[int, dict] = {}  # epoch -> server -> revealed accuracies
        self.finalized: dict[int, set] = {}
        self.max_span: dict[int, int] = {}  # epoch -> max(l) read by its first finalize call
        self.funded, self.paid, self.slashed = INITIAL_FUNDING, 0, 0
        self.bonded = sum(s.stake for s in self.servers.values())
        self.unbonding = 0
        self.epoch, self.stage = 0, 0
        self.revert_checks = REVERT_CHECKS
        self.now = self.clock.now()
        self.observed_epoch = -1
        self._observe()

    # ------------------------------------------------------------------------------------------ model helpers

    def _current_epoch(self) -> int:
        return (self.now - self.clock.genesis) // self.clock.epoch_length

    def _pool(self, epoch: int) -> Pool:
        return self.pools.setdefault(epoch, Pool())

    def _move(self, timestamp: int) -> None:
        self.clock.set_next(timestamp)  # no block needed: the next transaction lands at `timestamp`
        self.now = timestamp
        self._observe()

    def _observe(self) -> None:
        """Mark every server that is not active now as inactive in the current epoch, and in the epochs the clock
        has just moved through (nothing changed while it moved)."""
        current = self._current_epoch()
        for epoch in range(min(self.observed_epoch + 1, current), current + 1):
            bucket = self.inactive_in.setdefault(epoch, set())
            bucket.update(addr for addr, s in self.servers.items() if s.status != Status.ACTIVE)
        self.observed_epoch = current

    def _set_status(self, addr: str, status: int) -> None:
        self.servers[addr].status = status
        self._observe()

    def _max_active_span(self) -> int:
        return max((s.n for s in self.servers.values() if s.status == Status.ACTIVE), default=0)

    def _settled(self) -> list[int]:
        return [e for e in range(self._current_epoch()) if self.now >= self.clock.start(e, Phase.SETTLED)]

    def _expect_revert(self, error: str, call, *args) -> None:
        """Check a call the model predicts to revert with ``error(*args)``, up to REVERT_CHECKS times per example
        (each costs two transaction traces); past that the call is left out: the model knows its outcome."""
        if self.revert_checks:
            self.revert_checks -= 1
            with reverts(error, *args):
                call()

    def _pick(self, data, preferred: list, server_index: int, label: str):
        """A preferred server (one for which the action does something) unless the draw says otherwise."""
        if preferred and data is not None and not data.draw(st.booleans(), label=label):
            return data.draw(st.sampled_from(preferred), label=label + " server")
        return self.server_accounts[server_index]

    def _servers_where(self, condition) -> list:
        return [a for a in self.server_accounts if str(a) in self.servers and condition(self.servers[str(a)])]

    # ------------------------------------------------------------------------------------------ staking rules

    def rule_register(self, server_index, stake, first_layer, span, data):
        unregistered = [a for a in self.server_accounts if str(a) not in self.servers]
        account = self._pick(data, unregistered, server_index, "register new")
        addr = str(account)
        n = min(span, PARAMS.num_layers - first_layer)

        def register():
            return self.system.registry.register("http://s", first_layer, n, {"from": account, "value": stake})

        if addr in self.servers:
            self._expect_revert("AlreadyRegistered", register, addr)
        elif stake < PARAMS.min_stake:
            self._expect_revert("InsufficientStake", register, stake, PARAMS.min_stake)
        else:
            register()
            epoch = self._current_epoch()
            self.servers[addr] = Server(Status.ACTIVE, stake, n, epoch, epoch)
            self.bonded += stake

    def rule_add_stake(self, server_index, amount, data):
        inactive = self._servers_where(lambda s: s.status == Status.INACTIVE)
        account = self._pick(data, inactive, server_index, "top up inactive")
        s = self.servers.get(str(account))

        def add_stake():
            return self.system.registry.addStake({"from": account, "value": amount})

        if s is None:
            self._expect_revert("NotRegistered", add_stake, account)
        elif s.status == Status.DEACTIVATED:
            self._expect_revert("ServerIsDeactivated", add_stake, account)
        else:
            add_stake()
            s.stake += amount
            self.bonded += amount
            if s.status == Status.INACTIVE and s.stake >= PARAMS.min_stake:
                s.active_since = self._current_epoch() + 1
                self._set_status(str(account), Status.ACTIVE)

    def rule_request_unstake(self, server_index, unstake_share):
        account = self.server_accounts[server_index]
        s = self.servers.get(str(account))
        amount = s.stake // unstake_share if s else 1

        def request_unstake():
            return self.system.registry.requestUnstake(amount, {"from": account})

        if s is None:
            self._expect_revert("NotRegistered", request_unstake, account)
        elif amount == 0:
            self._expect_revert("ZeroAmount", request_unstake)
        else:
            request_unstake()
            s.stake -= amount
            s.unbonding += amount
            s.unlock = self.now + PARAMS.unbonding_period
            self.bonded -= amount
            self.unbonding += amount
            if s.status == Status.ACTIVE and s.stake < PARAMS.min_stake:
                self._set_status(str(account), Status.INACTIVE)

    def rule_dip_below_min_stake(self, server_index, amount):
        """Unstake everything and stake again at once: inactive for a moment, so unpaid for this epoch."""
        account = self.server_accounts[server_index]
        s = self.servers.get(str(account))
        if s is None or s.status != Status.ACTIVE:
            return
        self.rule_request_unstake(server_index, 1)  # everything: inactive
        self.rule_add_stake(server_index, PARAMS.min_stake + amount, None)

    def rule_withdraw(self, server_index, data):
        unlocked = self._servers_where(lambda s: s.unbonding and s.unlock <= self.now)
        account = self._pick(data, unlocked, server_index, "withdraw unlocked")
        s = self.servers.get(str(account))

        def withdraw():
            return self.system.registry.withdraw({"from": account})

        if s is None:
            self._expect_revert("NotRegistered", withdraw, account)
        elif s.unbonding == 0:
            self._expect_revert("NothingToWithdraw", withdraw)
        elif self.now < s.unlock:
            self._expect_revert("StillUnbonding", withdraw, s.unlock)
        else:
            before = balance(account)
            withdraw()
            assert balance(account) == before + s.unbonding
            self.unbonding -= s.unbonding
            s.unbonding = 0

    # ------------------------------------------------------------------------------------------ reward rules

    def rule_fund(self, amount, fund_offset):
        current = self._current_epoch()
        epoch = current + fund_offset
        if epoch < 0:
            return

        def fund():
            return self.system.pool.fundEpoch(epoch, {"from": self.client, "value": amount})

        if epoch < current:
            self._expect_revert("EpochClosed", fund, epoch, current)
        else:
            fund()
            self._pool(epoch).funded += amount
            self.funded += amount

    def rule_claim(self, server_index, data):
        settled = self._settled()
        if not settled:
            return

        def owed(addr: str) -> list[int]:
            return [e for e in settled if self._pool(e).share(addr) and addr not in self._pool(e).claimed_by]

        account = self._pick(data, [a for a in self.server_accounts if owed(str(a))], server_index, "claim owed")
        addr = str(account)
        if owed(addr) and not data.draw(st.booleans(), label="claim what is owed"):
            epochs = owed(addr)
        else:
            epochs = data.draw(st.lists(st.sampled_from(settled), min_size=1, max_size=3, unique=True), label="epochs")

        def claim():
            return self.system.pool.claimRewards(epochs, {"from": account})

        already = next((e for e in epochs if addr in self._pool(e).claimed_by), None)
        shares = {e: self._pool(e).share(addr) for e in epochs}
        total = sum(shares.values())
        if already is not None:
            self._expect_revert("AlreadyClaimed", claim, already, addr)
        elif total == 0:
            self._expect_revert("NothingToClaim", claim)
        else:
            before = balance(account)
            tx = claim()
            assert balance(account) == before + total
            claimed = {e["epoch"]: e["amount"] for e in tx.events["RewardsClaimed"]}
            assert claimed == {e: v for e, v in shares.items() if v}
            for e in claimed:
                assert addr not in self.inactive_in.get(e, set()), f"{addr} paid for epoch {e} while inactive"
                self._pool(e).claimed += shares[e]
                self._pool(e).claimed_by.add(addr)
            self.paid += total

    def rule_roll_over(self, data):
        settled = self._settled()
        if not settled:
            return
        epoch = data.draw(st.sampled_from(settled), label="roll over")
        p = self._pool(epoch)

        def roll_over():
            return self.system.pool.rollOver(epoch, {"from": self.client})

        if p.total_weight or p.rolled_out or p.size == 0:
            self._expect_revert("NotRollable", roll_over, epoch)
        else:
            roll_over()
            p.rolled_out = True
            self._pool(self._current_epoch()).rolled_in += p.size

    # ------------------------------------------------------------------------------------------ the epoch cycle

    def initialize_first_epoch(self, data):
        """Hypothesis starts with many one-step examples: let even those run a whole epoch to settlement."""
        self.rule_settle_epoch(data)

    def rule_settle_epoch(self, data):
        """Run the remaining windows of the current epoch up to its settlement."""
        self.rule_advance(len(STAGES) - self.stage, data)

    def rule_advance(self, stages, data):
        for _ in range(stages):
            if self.epoch > LAST_EPOCH:
                return
            if self.stage == len(STAGES) - 1:
                # after the finalize window of e: e is settled, and e + 1 is in its work period
                self._move(self.clock.start(self.epoch, Phase.SETTLED))
                self.epoch, self.stage = self.epoch + 1, 0
                continue
            self.stage += 1
            phase = STAGES[self.stage]
            self._move(self.clock.start(self.epoch, phase))
            if data.draw(st.integers(min_value=0, max_value=19), label="idle window") == 19:
                continue  # nobody acts in this window
            {
                Phase.COMMIT_WORK: self._commit_work,
                Phase.COMMIT_SCORES: self._commit_scores,
                Phase.REVEAL_SCORES: self._reveal_scores,
                Phase.FINALIZE: self._finalize,
            }[phase](data)

    def _commit_work(self, data):
        e = self.epoch
        commitments = self.commitments.setdefault(e, {})
        truth = self.truth.setdefault(e, {})
        for account in self.server_accounts:
            addr = str(account)
            s = self.servers.get(addr)
            if s is None:
                continue
            truth[addr] = data.draw(st.sampled_from(ACCURACIES), label="true accuracy")
            if s.status == Status.DEACTIVATED or data.draw(st.integers(0, 3), label="commit") == 3:
                continue
            units = data.draw(st.integers(min_value=1, max_value=1000), label="work units")
            self.system.ledger.commitWork(e, root_of(addr, e), units, {"from": account})
            commitments[addr] = (units, s.n)

    def _commit_scores(self, data):
        e = self.epoch
        if data.draw(st.booleans(), label="draw seed"):
            self.system.ledger.drawSeed(e, {"from": self.client})
        # verifiers score every server they know the truth about: committed leaves, or canary prompts alone
        truth = self.truth.get(e, {})
        checked = sort_addresses(truth)
        if not checked:
            return
        for verifier in self.verifier_accounts:
            mode = data.draw(st.sampled_from(["honest", "random", "honest", "honest", "absent"]), label="verifier")
            if mode == "absent":
                continue
            if mode == "honest":
                accs = [truth[s] for s in checked]
            else:
                accs = [data.draw(st.integers(min_value=0, max_value=ONE), label="random accuracy") for _ in checked]
            salt = "0x" + f"{e + 1:064x}"
            commitment = scores_hash(verifier, e, checked, accs, salt)
            self.system.scoring.commitScores(e, commitment, {"from": verifier})
            self.pending_reveals[(e, str(verifier))] = (verifier, checked, accs, salt)

    def _reveal_scores(self, data):
        e = self.epoch
        reveals = self.reveals.setdefault(e, {})
        for key in [k for k in self.pending_reveals if k[0] == e]:
            verifier, checked, accs, salt = self.pending_reveals.pop(key)
            if data.draw(st.integers(min_value=0, max_value=9), label="reveal") == 9:
                continue  # an unrevealed commitment counts for nothing
            self.system.scoring.revealScores(e, checked, accs, salt, {"from": verifier})
            for s, acc in zip(checked, accs):
                reveals.setdefault(s, []).append(acc)

    def _finalize(self, data):
        e = self.epoch
        chosen = data.draw(st.permutations(list(self.servers)), label="finalize order")
        if chosen and data.draw(st.booleans(), label="repeat one"):
            chosen.append(chosen[0])
        cut = data.draw(st.integers(min_value=0, max_value=len(chosen)), label="batch cut")
        for batch in (chosen[:cut], chosen[cut:]):
            if batch:
                self._finalize_batch(e, batch)

    def _finalize_batch(self, e, batch):
        self.max_span.setdefault(e, self._max_active_span())
        done = self.finalized.setdefault(e, set())
        expected = []
        for addr in batch:
            if addr not in done:
                done.add(addr)
                expected.append(self._predict_and_apply(e, addr))
        tx = self.system.scoring.finalize(e, batch, {"from": self.client})
        events = tx.events["ServerScored"] if "ServerScored" in tx.events else []  # noqa: SIM401 - brownie's EventDict has no get()
        assert [(str(ev["server"]), ev["outcome"], ev["score"], ev["rewardWeight"]) for ev in events] == expected
        for addr, _, _, weight in expected:
            if weight:
                assert addr not in self.inactive_in.get(e, set()), f"{addr} weighted in epoch {e} while inactive"

    def _predict_and_apply(self, e, addr):
        """The outcome of finalizing ``addr`` for epoch ``e`` (eq. 3 and 4), applied to the model."""
        s = self.servers[addr]
        accs = self.reveals.get(e, {}).get(addr, [])
        if len(accs) < PARAMS.min_verifiers:
            return (addr, Outcome.NO_QUORUM, 0, 0)
        units, span = self.commitments.get(e, {}).get(addr, (0, s.n))
        score = score_eq3(median(accs), span, self.max_span[e])
        if score >= PARAMS.theta:
            paid = s.status == Status.ACTIVE and s.active_since <= e and units > 0
            if paid:
                self._pool(e).weights[addr] = score * units
            return (addr, Outcome.PASSED, score, score * units if paid else 0)
        if s.status == Status.DEACTIVATED:
            return (addr, Outcome.FAILED, score, 0)
        if e < s.registered + PARAMS.immunity_epochs:
            return (addr, Outcome.IMMUNE, score, 0)
        amount = (s.stake + s.unbonding) * PARAMS.slash_fraction // ONE
        from_stake = min(amount, s.stake)
        s.stake -= from_stake
        s.unbonding -= amount - from_stake
        self.bonded -= from_stake
        self.unbonding -= amount - from_stake
        self._pool(e).slashed += amount
        self.slashed += amount
        self._set_status(addr, Status.DEACTIVATED)
        return (addr, Outcome.SLASHED, score, 0)

    # ------------------------------------------------------------------------------------------ invariants

    def invariant_balances(self):
        registry, pool, stakes = self.system.registry, self.system.pool, self.system.stakes
        epochs = sorted(self.pools)
        values = read_batch(
            (balance, registry),
            (balance, pool),
            (registry.totalBonded,),
            (registry.totalUnbonding,),
            (balance, stakes),
            (stakes.totalBonded,),
            (stakes.totalUnbonding,),
            *[(pool.epochPool, e) for e in epochs],
        )
        registry_balance, pool_balance, bonded, unbonding = values[:4]
        stakes_balance, verifiers_bonded, verifiers_unbonding = values[4:7]
        assert stakes_balance == verifiers_bonded + verifiers_unbonding  # verifier stakes: every wei accounted for
        unclaimed = 0
        for e, p in zip(epochs, values[7:]):
            size = p["funded"] + p["slashed"] + p["rolledIn"]
            unclaimed += size - p["claimed"] - (size if p["rolledOut"] else 0)
            model = self.pools[e]
            assert (size, p["claimed"], p["totalWeight"], p["rolledOut"]) == (
                model.size,
                model.claimed,
                model.total_weight,
                model.rolled_out,
            ), f"pool of epoch {e}"
        assert (bonded, unbonding) == (self.bonded, self.unbonding)
        assert registry_balance == bonded + unbonding
        assert pool_balance == unclaimed
        assert registry_balance + pool_balance == bonded + unbonding + unclaimed

    def invariant_never_paid_while_inactive(self):
        pairs = [(e, addr) for e, inactive in self.inactive_in.items() for addr in inactive]
        for e, addr in pairs:
            assert addr not in self._pool(e).weights and addr not in self._pool(e).claimed_by
        pool = self.system.pool
        weights = read_batch(*[(pool.rewardWeight, e, addr) for e, addr in pairs]) if pairs else []
        claimed = read_batch(*[(pool.hasClaimed, e, addr) for e, addr in pairs]) if pairs else []
        assert not any(weights), "a reward weight for an epoch in which the server was inactive"
        assert not any(claimed), "a claim for an epoch in which the server was inactive"

    def invariant_paid_within_funded_and_slashed(self):
        pool = self.system.pool
        paid, funded, slashed = read_batch((pool.totalPaid,), (pool.totalFunded,), (pool.totalSlashed,))
        assert (paid, funded, slashed) == (self.paid, self.funded, self.slashed)
        assert paid <= funded + slashed

    def invariant_servers(self):
        registry = self.system.registry
        addrs = list(self.servers)
        *records, max_span = read_batch(*[(registry.getServer, a) for a in addrs], (registry.maxActiveSpan,))
        for addr, record in zip(addrs, records):
            s = self.servers[addr]
            assert (record["status"], record["stake"], record["unbonding"]) == (s.status, s.stake, s.unbonding)
            if s.status == Status.ACTIVE:
                assert record["activeSince"] == s.active_since
        assert max_span == self._max_active_span()


@pytest.fixture
def stateful_system(module_isolation, gov, servers, verifiers, client):
    system = deploy_system(PARAMS, gov, verifiers)
    for i, first, n, stake in INITIAL_SERVERS:
        system.registry.register("http://s", first, n, {"from": servers[i], "value": stake})
    system.pool.fundEpoch(0, {"from": client, "value": INITIAL_FUNDING})
    return system


def test_protocol_invariants(state_machine, stateful_system, servers, verifiers, client):
    state_machine(
        StateMachine,
        stateful_system,
        servers,
        verifiers,
        client,
        settings=EXAMPLES,
    )
