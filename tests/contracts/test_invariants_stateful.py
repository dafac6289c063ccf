"""Random sequences of staking, span moves, work, verification, finalization, funding and claims against a Python
model.

The machine walks the epoch cycle forward: ``rule_advance`` moves to the start of the next windows and, in each,
does what the window is for with random choices (servers commit work or not; verifiers are honest, random or absent,
reveal or not; servers are finalized in random orders and batches, or a window passes idle), ``rule_settle_epoch``
runs the rest of the current epoch. ``rule_wait`` moves the clock within the current window, often to its last
second (for the window in a work period: the last second of that epoch's work), while the moves of ``rule_advance``
into a CommitWork window land on the first second of the next epoch: changes around both sides of an epoch boundary.
The other rules register, move spans (``updateServer``), stake, unstake (also below minStake, and all of it and
straight back in), withdraw, fund, finalize more batches, claim and roll over at any time. Each example deploys with
a slashing rule drawn for it (accuracy or the paper's trust score). The model predicts every outcome, reverts
included.

The model keeps the live state of every server and, as the clock passes the first second of an epoch, the facts of
that epoch's work period: each server's span and whether it was active at the start (after every call of that
second), max(l) at the start, and who left the active set during the epoch. After every step the invariants check:

(a) the ETH held by ServerRegistry and RewardPool equals bonded + unbonding stake + unclaimed pools
    (sum over epochs of poolSize - claimed, 0 for a rolled-out pool), and the registry holds exactly the stake;
(b) the registry's facts of every epoch that has begun (``scoringFacts``, ``maxSpanOf``) are the model's;
(c) every finalized score is eq. 3 from those facts (l = the span at the epoch's start, max(l) at its start), its
    outcome follows the deployment's slashing rule, and its reward weight is S_i * work units exactly when it passed,
    was active all through the epoch and committed work (so no such server is left without a weight); a server
    without a span in the epoch is not scored;
(d) no server has a reward weight, or was paid, for an epoch in which it was not active all along, and after
    settlement each weighted server's pending reward is its share until it claims it or the pool is rolled over;
(e) total paid <= total funded + total slashed.
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

from efedllm.chain.enums import SlashingRule

# the shortest unbonding period allowed (an epoch and its windows, plus one second), so withdrawals happen; a claim
# period that ends within the window after settlement (at its 15th second), so pools are rolled over before and after
PARAMS = replace(TEST_PARAMS, min_verifiers=2, immunity_epochs=1, unbonding_period=181, claim_period=15)
RULES = (int(SlashingRule.ACCURACY), int(SlashingRule.TRUST_SCORE))
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
NO_SCORE = (0, 0, 0, 0, 0, Outcome.NONE)


@dataclass
class Server:
    status: int
    stake: int
    first: int
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

    def __init__(cls, systems, servers, verifiers, client):
        cls.systems = systems
        cls.clocks = {rule: Clock(system.schedule) for rule, system in systems.items()}
        cls.clock = cls.clocks[RULES[0]]
        assert len({c.genesis for c in cls.clocks.values()}) == 1, "the deployments share one genesis"
        assert cls.clock.now() == cls.clock.genesis, "the initial servers registered at the first second of epoch 0"
        cls.server_accounts = list(servers)
        cls.verifier_accounts = list(verifiers)
        cls.client = client

    def setup(self):
        self.rule, self.system = None, None  # drawn by initialize_first_epoch
        self.servers: dict[str, Server] = {
            str(self.server_accounts[i]): Server(Status.ACTIVE, stake, first, n, 0, 0)
            for i, first, n, stake in INITIAL_SERVERS
        }
        self.pools: dict[int, Pool] = {0: Pool(funded=INITIAL_FUNDING)}
        # epoch -> ({server: (active, first layer, layers)}, max(l)) at the start of its work period, taken as the
        # clock leaves that second; epochs not in here have not begun (or begin at this second): their facts are live
        self.starts: dict[int, tuple[dict, int]] = {}
        self.left_during: dict[int, set] = {}  # epoch -> servers that left the active set during its work period
        self.registered_during: dict[int, dict] = {}  # epoch -> server -> (first, l) registered after its start
        self.commitments: dict[int, dict] = {}  # epoch -> server -> (work units, span)
        self.truth: dict[int, dict] = {}  # epoch -> server -> the accuracy an honest verifier reports
        self.pending_reveals: dict = {}
        self.reveals: dict[int, dict] = {}  # epoch -> server -> revealed accuracies
        self.finalized: dict[int, set] = {}  # epoch -> servers scored (outcome other than None)
        self.attempted: dict[int, set] = {}  # epoch -> servers named in a finalize call
        self.outcomes: dict[tuple, int] = {}  # (epoch, server) -> outcome
        self.funded, self.paid, self.slashed = INITIAL_FUNDING, 0, 0
        self.bonded = sum(s.stake for s in self.servers.values())
        self.unbonding = 0
        self.epoch, self.stage = 0, 0
        self.revert_checks = REVERT_CHECKS
        self.now = self.clock.now()

    # ------------------------------------------------------------------------------------------ model helpers

    def _epoch_at(self, timestamp: int) -> int:
        return max(0, timestamp - self.clock.genesis) // self.clock.epoch_length

    def _current_epoch(self) -> int:
        return self._epoch_at(self.now)

    def _next_full_epoch(self) -> int:
        """EpochSchedule.nextFullEpoch: the epoch from which a change made now counts."""
        elapsed = self.now - self.clock.genesis
        if elapsed <= 0:
            return 0
        return elapsed // self.clock.epoch_length + (elapsed % self.clock.epoch_length != 0)

    def _epoch_start(self, epoch: int) -> int:
        return self.clock.start(epoch, Phase.WORK)

    def _pool(self, epoch: int) -> Pool:
        return self.pools.setdefault(epoch, Pool())

    def _live_facts(self) -> tuple[dict, int]:
        return {a: (s.status == Status.ACTIVE, s.first, s.n) for a, s in self.servers.items()}, self._max_active_span()

    def _move(self, timestamp: int) -> None:
        """Move the clock forward; every epoch whose first second it leaves behind gets its facts fixed."""
        assert timestamp > self.now
        for epoch in range(self._current_epoch(), self._epoch_at(timestamp) + 1):
            if self.now <= self._epoch_start(epoch) < timestamp and epoch not in self.starts:
                self.starts[epoch] = self._live_facts()
        # a block at `timestamp`, not only the next one's time: views see the new time, and replays of a failing
        # example while shrinking no longer hit brownie's "Tx dropped" (they did with evm_setNextBlockTimestamp alone)
        self.clock.goto(timestamp)
        self.now = timestamp

    def _facts(self, epoch: int, addr: str) -> tuple[bool, int, int]:
        """(active all through the work period, first layer, l) of ``addr`` in ``epoch``; l = 0: no span in it."""
        at_start, _ = self.starts.get(epoch) or self._live_facts()
        if addr not in at_start and addr in self.registered_during.get(epoch, {}):
            return False, *self.registered_during[epoch][addr]  # scored (and slashable) with that span, unpaid
        active, first, n = at_start.get(addr, (False, 0, 0))
        return active and addr not in self.left_during.get(epoch, ()), first, n

    def _max_span_of(self, epoch: int) -> int:
        return (self.starts.get(epoch) or self._live_facts())[1]

    def _set_status(self, addr: str, status: int) -> None:
        s = self.servers[addr]
        if s.status == Status.ACTIVE and status != Status.ACTIVE:
            current = self._current_epoch()
            if self.now != self._epoch_start(current):  # leaving at an epoch's first second loses nothing of it
                self.left_during.setdefault(current, set()).add(addr)
        s.status = status

    def _max_active_span(self) -> int:
        return max((s.n for s in self.servers.values() if s.status == Status.ACTIVE), default=0)

    def _settled(self) -> list[int]:
        return [e for e in range(self._current_epoch()) if self.now >= self.clock.start(e, Phase.SETTLED)]

    def _claim_deadline(self, epoch: int) -> int:
        return self.clock.end(epoch, Phase.FINALIZE) + PARAMS.claim_period

    def _window_end(self) -> int:
        """First second after the window the machine is in (stage 0: the rest of an epoch's work period)."""
        if self.stage == 0:
            return self._epoch_start(self.epoch + 1)
        return self.clock.end(self.epoch, STAGES[self.stage])

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
            current = self._current_epoch()
            if self.now > self._epoch_start(current):
                self.registered_during.setdefault(current, {})[addr] = (first_layer, n)
            self.servers[addr] = Server(
                Status.ACTIVE, stake, first_layer, n, self._current_epoch(), self._next_full_epoch()
            )
            self.bonded += stake

    def rule_update_server(self, server_index, first_layer, span, data):
        """Move a span, at any time: it counts for scoring from the next epoch that starts after the move."""
        movable = self._servers_where(lambda s: s.status != Status.DEACTIVATED)
        account = self._pick(data, movable, server_index, "move registered")
        s = self.servers.get(str(account))
        n = min(span, PARAMS.num_layers - first_layer)

        def update():
            return self.system.registry.updateServer("http://moved", first_layer, n, {"from": account})

        if s is None:
            self._expect_revert("NotRegistered", update, account)
        elif s.status == Status.DEACTIVATED:
            self._expect_revert("ServerIsDeactivated", update, account)
        else:
            update()
            s.first, s.n = first_layer, n

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
                s.active_since = self._next_full_epoch()
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
        """Unstake everything and stake again at once: inactive for a moment, so unpaid for this epoch (unless
        this is its first second)."""
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
            return [
                e
                for e in settled
                if self._pool(e).share(addr) and addr not in self._pool(e).claimed_by and not self._pool(e).rolled_out
            ]

        account = self._pick(data, [a for a in self.server_accounts if owed(str(a))], server_index, "claim owed")
        addr = str(account)
        if owed(addr) and not data.draw(st.booleans(), label="claim what is owed"):
            epochs = owed(addr)
        else:
            epochs = data.draw(st.lists(st.sampled_from(settled), min_size=1, max_size=3, unique=True), label="epochs")

        def claim():
            return self.system.pool.claimRewards(epochs, {"from": account})

        error, shares = None, {}
        for e in epochs:  # the contract's checks, epoch by epoch
            if addr in self._pool(e).claimed_by:
                error = ("AlreadyClaimed", e, addr)
                break
            if self._pool(e).rolled_out:
                error = ("ClaimPeriodOver", e)
                break
            shares[e] = self._pool(e).share(addr)
        total = sum(shares.values())
        if error is not None:
            self._expect_revert(*error[:1], claim, *error[1:])
        elif total == 0:
            self._expect_revert("NothingToClaim", claim)
        else:
            before = balance(account)
            tx = claim()
            assert balance(account) == before + total
            claimed = {e["epoch"]: e["amount"] for e in tx.events["RewardsClaimed"]}
            assert claimed == {e: v for e, v in shares.items() if v}
            for e in claimed:
                assert self._facts(e, addr)[0], f"{addr} paid for epoch {e}, which it did not serve in full"
                self._pool(e).claimed += shares[e]
                self._pool(e).claimed_by.add(addr)
            self.paid += total

    def _roll_amount(self, epoch: int) -> int:
        p = self._pool(epoch)
        if p.rolled_out:
            return 0
        if p.total_weight == 0:
            return p.size
        return p.size - p.claimed if self.now >= self._claim_deadline(epoch) else 0

    def rule_roll_over(self, data):
        settled = self._settled()
        if not settled:
            return
        rollable = [e for e in settled if self._roll_amount(e)]
        if rollable and data.draw(st.booleans(), label="roll a rollable pool"):
            epoch = data.draw(st.sampled_from(rollable), label="rollable epoch")
        else:
            epoch = data.draw(st.sampled_from(settled), label="roll over")
        amount = self._roll_amount(epoch)

        def roll_over():
            return self.system.pool.rollOver(epoch, {"from": self.client})

        if amount == 0:
            self._expect_revert("NotRollable", roll_over, epoch)
        else:
            tx = roll_over()
            assert tx.events["PoolRolledOver"]["amount"] == amount
            self._pool(epoch).rolled_out = True
            self._pool(self._current_epoch()).rolled_in += amount

    # ------------------------------------------------------------------------------------------ the epoch cycle

    def initialize_first_epoch(self, data):
        """Draw the slashing rule of this example's deployment. Hypothesis starts with many one-step examples: let
        even those run a whole epoch to settlement."""
        self.rule = data.draw(st.sampled_from(RULES), label="slashing rule")
        self.system = self.systems[self.rule]
        self.rule_settle_epoch(data)

    def rule_settle_epoch(self, data):
        """Run the remaining windows of the current epoch up to its settlement."""
        self.rule_advance(len(STAGES) - self.stage, data)

    def rule_wait(self, data):
        """Let time pass within the current window: mostly to its last second (in a work period, the last second
        of the epoch's work), else to any second of it."""
        last = self._window_end() - 1
        if last <= self.now:
            return
        if data.draw(st.integers(min_value=0, max_value=2), label="wait to the last second") < 2:
            self._move(last)
        else:
            self._move(data.draw(st.integers(min_value=self.now + 1, max_value=last), label="wait until"))

    def rule_churn_across_boundary(self, data):
        """Changes at the last second of an epoch's work period and at the first second of the next epoch (where
        the machine moves on into the CommitWork window of the first): registrations, exits below minStake,
        reactivations, span moves."""
        if self.stage != 0 or self.epoch > LAST_EPOCH:
            return
        if self._window_end() - 1 > self.now:
            self._move(self._window_end() - 1)
        self._change(data)
        self.rule_advance(1, data)
        self._change(data)

    def _change(self, data):
        draw = data.draw
        index = draw(self.server_index, label="server index")
        change = draw(st.sampled_from(["exit", "move", "return", "register", "dip"]), label="change")
        if change == "register":  # the unregistered server, if there is one
            unregistered = [i for i, a in enumerate(self.server_accounts) if str(a) not in self.servers]
            index = unregistered[0] if unregistered else index
            self.rule_register(index, ETHER, draw(self.first_layer), draw(self.span), None)
        elif change == "exit":
            self.rule_request_unstake(index, draw(st.sampled_from([1, 2]), label="unstake share"))
        elif change == "return":
            self.rule_add_stake(index, draw(self.amount, label="amount"), data)
        elif change == "move":
            self.rule_update_server(index, draw(self.first_layer), draw(self.span), data)
        else:
            self.rule_dip_below_min_stake(index, draw(self.amount, label="amount"))

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
            self._move(self.clock.start(self.epoch, phase))  # CommitWork of e: the first second of epoch e + 1
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
            if data.draw(st.integers(0, 3), label="commit") == 3:
                continue
            units = data.draw(st.integers(min_value=1, max_value=1000), label="work units")

            def commit(account=account, units=units, addr=addr):
                return self.system.ledger.commitWork(e, root_of(addr, e), units, {"from": account})

            _, first, n = self._facts(e, addr)
            if n == 0 or s.status == Status.DEACTIVATED:  # registered after e's work period, or deactivated
                self._expect_revert("ServerNotEligible", commit, addr)
                continue
            event = commit().events["WorkCommitted"]
            assert (event["firstLayer"], event["numLayers"]) == (first, n), "the span of the epoch's work period"
            commitments[addr] = (units, n)

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
        """At the start of the Finalize window: everyone, mostly; else some, the rest left to rule_finalize."""
        self._finalize_batches(data, everyone=data.draw(st.integers(0, 3), label="finalize some only") < 3)

    def rule_finalize(self, data):
        """More finalize calls, at any time of the Finalize window, between the other rules' calls."""
        if self.stage == len(STAGES) - 1 and self.epoch <= LAST_EPOCH:
            self._finalize_batches(data, everyone=False)

    def _finalize_batches(self, data, everyone: bool):
        """Servers in a random order, split into up to three batches; one may be named twice. Between batches,
        servers may move, exit, return or register: the epoch's scores must not change."""
        chosen = data.draw(st.permutations(list(self.servers)), label="finalize order")
        if not everyone:
            chosen = chosen[: data.draw(st.integers(min_value=0, max_value=len(chosen)), label="how many")]
        if chosen and data.draw(st.booleans(), label="repeat one"):
            chosen.append(chosen[data.draw(st.integers(0, len(chosen) - 1), label="repeated")])
        cuts = sorted(data.draw(st.lists(st.integers(0, len(chosen)), max_size=2), label="batch cuts"))
        for start, end in zip([0, *cuts], [*cuts, len(chosen)]):
            if chosen[start:end]:
                if start and data.draw(st.booleans(), label="change between batches"):
                    self._change(data)
                self._finalize_batch(self.epoch, chosen[start:end])

    def _finalize_batch(self, e, batch):
        done = self.finalized.setdefault(e, set())
        self.attempted.setdefault(e, set()).update(batch)
        expected = []
        for addr in batch:
            if addr not in done:
                result = self._predict_and_apply(e, addr)
                if result is not None:
                    done.add(addr)
                    expected.append(result)
        tx = self.system.scoring.finalize(e, batch, {"from": self.client})
        events = tx.events["ServerScored"] if "ServerScored" in tx.events else []  # noqa: SIM401 - brownie's EventDict has no get()
        assert [(str(ev["server"]), ev["outcome"], ev["score"], ev["rewardWeight"]) for ev in events] == expected
        for addr, _, _, weight in expected:
            if weight:
                assert self._facts(e, addr)[0], f"{addr} weighted in epoch {e}, which it did not serve in full"

    def _predict_and_apply(self, e, addr):
        """The outcome of finalizing ``addr`` for epoch ``e`` (eq. 3 and the slashing rule), applied to the model;
        None when it had no span in ``e`` (registered after ``e`` began): not scored."""
        s = self.servers[addr]
        active, _, span = self._facts(e, addr)
        if span == 0:
            return None
        accs = self.reveals.get(e, {}).get(addr, [])
        if len(accs) < PARAMS.min_verifiers:
            self.outcomes[(e, addr)] = Outcome.NO_QUORUM
            return (addr, Outcome.NO_QUORUM, 0, 0)
        acc = median(accs)
        score = score_eq3(acc, span, self._max_span_of(e))
        judged = score if self.rule == SlashingRule.TRUST_SCORE else acc
        units = self.commitments.get(e, {}).get(addr, (0, 0))[0]
        if judged >= PARAMS.theta:
            outcome, weight = Outcome.PASSED, score * units if active and units else 0
            if weight:
                self._pool(e).weights[addr] = weight
        elif s.status == Status.DEACTIVATED:
            outcome, weight = Outcome.FAILED, 0
        elif e < s.registered + PARAMS.immunity_epochs:
            outcome, weight = Outcome.IMMUNE, 0
        else:
            outcome, weight = Outcome.SLASHED, 0
            amount = (s.stake + s.unbonding) * PARAMS.slash_fraction // ONE
            from_stake = min(amount, s.stake)
            s.stake -= from_stake
            s.unbonding -= amount - from_stake
            self.bonded -= from_stake
            self.unbonding -= amount - from_stake
            self._pool(e).slashed += amount
            self.slashed += amount
            self._set_status(addr, Status.DEACTIVATED)
        self.outcomes[(e, addr)] = outcome
        return (addr, outcome, score, weight)

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
            unclaimed += 0 if p["rolledOut"] else size - p["claimed"]
            model = self.pools[e]
            assert (size, p["claimed"], p["totalWeight"], p["rolledOut"]) == (
                model.size,
                model.claimed,
                model.total_weight,
                model.rolled_out,
            ), f"pool of epoch {e}"
        assert (bonded, unbonding) == (self.bonded, self.unbonding)
        assert registry_balance == bonded + unbonding
        assert pool_balance == unclaimed == sum(p.unclaimed for p in self.pools.values())
        assert registry_balance + pool_balance == bonded + unbonding + unclaimed

    def invariant_epoch_facts(self):
        """What the registry says of every epoch that has begun (and the next) is the model's record of it."""
        registry = self.system.registry
        addrs = list(self.servers)
        epochs = range(self._next_full_epoch() + 1)
        values = read_batch(
            *[(registry.scoringFacts, a, e) for e in epochs for a in addrs], *[(registry.maxSpanOf, e) for e in epochs]
        )
        facts = iter(values)
        for e in epochs:
            for a in addrs:
                s = self.servers[a]
                active, first, n = self._facts(e, a)
                assert tuple(next(facts)) == (s.status, s.registered, active, first, n, ONE), f"facts of {a} in {e}"
        assert list(values[len(epochs) * len(addrs) :]) == [self._max_span_of(e) for e in epochs], "max(l)"

    def invariant_scores_and_weights(self):
        """Finalized scores are eq. 3 of the epoch's facts; weights go to exactly the servers that passed, served
        all of the epoch and committed work; pending rewards of settled epochs are the shares."""
        scoring, pool = self.system.scoring, self.system.pool
        pairs = [(e, a) for e in sorted(self.attempted) for a in self.servers]
        if not pairs:
            return
        settled = set(self._settled())
        values = read_batch(
            *[(scoring.scoreOf, e, a) for e, a in pairs],
            *[(pool.rewardWeight, e, a) for e, a in pairs],
            *[(pool.hasClaimed, e, a) for e, a in pairs],
            *[(pool.pendingRewards, a, [e]) for e, a in pairs],
        )
        k = len(pairs)
        for i, (e, a) in enumerate(pairs):
            chain_score, chain_weight, claimed, pending = (tuple(values[i]), *values[i + k :: k])
            active, _, n = self._facts(e, a)
            accs = self.reveals.get(e, {}).get(a, [])
            units = self.commitments.get(e, {}).get(a, (0, 0))[0]
            expected_weight = 0
            if a not in self.attempted[e] or n == 0:
                expected = NO_SCORE  # not finalized, or no span in e: not scored
            elif len(accs) < PARAMS.min_verifiers:
                expected = (0, 0, 0, 0, len(accs), Outcome.NO_QUORUM)
            else:
                acc, max_l = median(accs), max(self._max_span_of(e), n)
                score = score_eq3(acc, n, max_l)
                passed = (score if self.rule == SlashingRule.TRUST_SCORE else acc) >= PARAMS.theta
                outcome = self.outcomes[(e, a)]
                assert passed == (outcome == Outcome.PASSED), f"outcome of {a} in {e} against the slashing rule"
                expected = (acc, score, n, max_l, len(accs), outcome)
                if passed and active and units:
                    expected_weight = score * units
                    assert expected_weight > 0, f"{a} served all of epoch {e}, passed and worked, but has no weight"
            assert chain_score == expected, f"score of {a} in epoch {e}"
            assert chain_weight == expected_weight == self._pool(e).weights.get(a, 0), f"weight of {a} in {e}"
            assert claimed == (a in self._pool(e).claimed_by)
            assert not claimed or (active and chain_weight), f"{a} paid for {e}, which it did not serve in full"
            p = self._pool(e)
            owed = p.share(a) if e in settled and not claimed and not p.rolled_out else 0
            assert pending == owed, f"pending reward of {a} in epoch {e}"

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
            assert (record["firstLayer"], record["numLayers"]) == (s.first, s.n)
            if s.status == Status.ACTIVE:
                assert record["activeSince"] == s.active_since
        assert max_span == self._max_active_span()


@pytest.fixture
def stateful_systems(module_isolation, gov, servers, verifiers, client):
    """One deployment per slashing rule, at one timestamp (the clock is frozen): each example draws which to use."""
    systems = {}
    for rule in RULES:
        system = deploy_system(replace(PARAMS, slashing_rule=rule), gov, verifiers)
        for i, first, n, stake in INITIAL_SERVERS:
            system.registry.register("http://s", first, n, {"from": servers[i], "value": stake})
        system.pool.fundEpoch(0, {"from": client, "value": INITIAL_FUNDING})
        systems[rule] = system
    return systems


def test_protocol_invariants(state_machine, stateful_systems, servers, verifiers, client):
    state_machine(
        StateMachine,
        stateful_systems,
        servers,
        verifiers,
        client,
        settings=EXAMPLES,
    )
