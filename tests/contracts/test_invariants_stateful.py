"""Random sequences of staking, span moves, work, verification, verifier stakes and penalties, finalization,
funding and claims against a Python model.

The machine walks the epoch cycle forward: ``rule_advance`` moves to the start of the next windows and, in each,
does what the window is for with random choices (servers commit work or not and verifiers commit seed shares or
not; verifiers reveal their shares or withhold them, the seed is drawn at once, at the first second a withheld share
no longer blocks it, a second before that, or later; verifiers are honest, random, off by about kappa for one server
or absent, reveal or not; servers are finalized in random orders and batches, verifiers that did not reveal are
penalized or not, or a window passes idle), ``rule_settle_epoch`` runs the rest of the current epoch. ``rule_wait``
moves the clock within the current window, often to its last second (for the window in a work period: the last
second of that epoch's work), while the moves of ``rule_advance`` into a CommitWork window land on the first second
of the next epoch: changes around both sides of an epoch boundary. The other rules register, move spans
(``updateServer``), stake, unstake (also below minStake, and all of it and straight back in), withdraw, fund,
finalize more batches, claim (servers and verifiers) and roll over at any time; verifiers stake, unstake and
withdraw, commit seed shares for this epoch or the next, reveal them late, draw seeds and penalize (no reveal,
withheld share) at any time. Each example deploys with a slashing rule and a verifier share drawn for it. The model
predicts every outcome, reverts included.

The model keeps the live state of every server and verifier and, as the clock passes the first second of an epoch,
the facts of that epoch's work period: each server's span and whether it was active at the start (after every call
of that second), max(l) at the start, and who left the active set during the epoch. After every step the invariants
check:

(a) the ETH held by ServerRegistry, RewardPool and VerifierStakes equals bonded + unbonding stake (of servers and of
    verifiers, each verifier's as the model says) + unclaimed pools (sum over epochs of funded + slashed + rolled in
    - claimed by servers and verifiers, 0 for a rolled-out pool);
(b) the registry's facts of every epoch that has begun (``scoringFacts``, ``maxSpanOf``) are the model's;
(c) every finalized score is eq. 3 from those facts (l = the span at the epoch's start, max(l) at its start), its
    outcome follows the deployment's slashing rule, and its reward weight is S_i * work units exactly when it passed,
    was active all through the epoch and committed work (so no such server is left without a weight); a server
    without a span in the epoch is not scored;
(d) no server has a reward weight, or was paid, for an epoch in which it was not active all along, and after
    settlement each weighted server's and paid verifier's pending reward is its share (the verifiers split
    VERIFIER_SHARE of the pool) until it claims it or the pool is rolled over;
(e) total paid <= total funded + total slashed, and what the servers and verifiers of a settled epoch can claim
    never exceeds its pool;
(f) the paid verifiers of an epoch are exactly those that revealed scores, did not withhold a seed share and did not
    reveal an accuracy more than kappa from the median of a server finalized with quorum; every penalty has one of
    those three reasons (so no honest verifier is penalized), a verifier is penalized at most once per epoch, and
    each penalty is verifierSlashFraction x (bonded + unbonding) of the moment (checked as it happens);
(g) an epoch's seed is keccak(abi.encode(xor of the revealed shares, epoch, ledger)) when a share was revealed, and
    the shares committed and revealed are the model's.
"""

import os
from dataclasses import dataclass, field, replace

import pytest
from brownie import web3
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
from eth_abi import encode as abi_encode
from hypothesis import HealthCheck
from hypothesis import strategies as st

from efedllm.chain.enums import SlashingRule

# the shortest unbonding period allowed (an epoch and its windows, plus one second), so withdrawals happen; a claim
# period that ends within the window after settlement (at its 15th second), so pools are rolled over before and after;
# kappa = 0.25, so that random reveals are often penalized (and honest ones, outvoted, sometimes)
PARAMS = replace(TEST_PARAMS, min_verifiers=2, immunity_epochs=1, unbonding_period=181, claim_period=15, kappa=ONE // 4)
RULES = (int(SlashingRule.ACCURACY), int(SlashingRule.TRUST_SCORE))
# the verifiers' share of a pool, drawn per example: a small one and one with rounding
VERIFIER_SHARES = (ONE // 20, ONE // 3)
# each verifier's bonded stake when the machine starts: the first has just minVerifierStake, so one penalty takes it
# below (its commits then revert until it stakes again)
VERIFIER_STAKES = (PARAMS.min_verifier_stake, 2 * ETHER, 3 * ETHER // 2)
# the seed shares verifiers draw from: equal ones cancel in the XOR, the zero salt changes nothing
SEED_SALTS = (*(web3.keccak(text=f"seed share {i}") for i in range(3)), bytes(32))
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
REVERT_CHECKS = 8
EXAMPLES = {"max_examples": 250, "stateful_step_count": 50} if SLOW else {"max_examples": 20, "stateful_step_count": 25}
# a step can run a whole epoch cycle, with a draw for every choice in it: some examples run out of hypothesis's
# buffer (they are discarded, as they should be), and now and then enough of the first ones to fail the health check
EXAMPLES["suppress_health_check"] = [HealthCheck.data_too_large]
NO_SCORE = (0, 0, 0, 0, 0, Outcome.NONE)
# how long to look for a transaction that is not found yet (see prompt_receipts): up to 2 s, in steps of 5 ms


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
class VerifierStake:
    bonded: int
    unbonding: int = 0
    unlock: int = 0
    slashed: int = 0
    times_slashed: int = 0


@dataclass
class Pool:
    verifier_share: int
    funded: int = 0
    slashed: int = 0
    rolled_in: int = 0
    claimed: int = 0
    weights: dict = field(default_factory=dict)
    verifiers: set = field(default_factory=set)  # paid verifiers
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

    @property
    def verifier_pot(self) -> int:
        return self.size * self.verifier_share // ONE if self.total_weight and self.verifiers else 0

    def share(self, account: str) -> int:
        """What ``account`` (a server or a verifier) can claim of the pool: servers split what the verifiers' pot
        leaves by weight, the paid verifiers split the pot equally."""
        total = self.total_weight
        if not total:
            return 0
        pot = self.verifier_pot
        share = (self.size - pot) * self.weights.get(account, 0) // total
        return share + (pot // len(self.verifiers) if pot and account in self.verifiers else 0)


def seed_share_hash(verifier, epoch: int, salt: bytes) -> bytes:
    """TrustScoring.seedShareHash: keccak256(abi.encode(verifier, epoch, salt))."""
    return web3.keccak(abi_encode(["address", "uint256", "bytes32"], [str(verifier), epoch, salt]))


def seed_of(mix: bytes, epoch: int, ledger) -> bytes:
    """The seed drawn from revealed shares: keccak256(abi.encode(xor of the salts, epoch, ledger))."""
    return web3.keccak(abi_encode(["bytes32", "uint256", "address"], [mix, epoch, str(ledger)]))


def xor(salts) -> bytes:
    mix = 0
    for salt in salts:
        mix ^= int.from_bytes(salt, "big")
    return mix.to_bytes(32, "big")


class StateMachine:
    server_index = st.integers(min_value=0, max_value=3)
    verifier_index = st.integers(min_value=0, max_value=2)
    account_index = st.integers(min_value=0, max_value=6)  # servers, then verifiers
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
        cls.clocks = {key: Clock(system.schedule) for key, system in systems.items()}
        cls.clock = next(iter(cls.clocks.values()))
        assert len({c.genesis for c in cls.clocks.values()}) == 1, "the deployments share one genesis"
        assert cls.clock.now() == cls.clock.genesis, "the initial servers registered at the first second of epoch 0"
        cls.server_accounts = list(servers)
        cls.verifier_accounts = list(verifiers)
        cls.client = client

    def setup(self):
        self.rule, self.system, self.verifier_share = None, None, 0  # drawn by initialize_first_epoch
        self.servers: dict[str, Server] = {
            str(self.server_accounts[i]): Server(Status.ACTIVE, stake, first, n, 0, 0)
            for i, first, n, stake in INITIAL_SERVERS
        }
        self.pools: dict[int, Pool] = {}  # the first, funded with INITIAL_FUNDING, once the share is drawn
        # epoch -> ({server: (active, first layer, layers)}, max(l)) at the start of its work period, taken as the
        # clock leaves that second; epochs not in here have not begun (or begin at this second): their facts are live
        self.starts: dict[int, tuple[dict, int]] = {}
        self.left_during: dict[int, set] = {}  # epoch -> servers that left the active set during its work period
        self.registered_during: dict[int, dict] = {}  # epoch -> server -> (first, l) registered after its start
        self.commitments: dict[int, dict] = {}  # epoch -> server -> (work units, span)
        self.truth: dict[int, dict] = {}  # epoch -> server -> the accuracy an honest verifier reports
        self.pending_reveals: dict = {}
        self.reveals: dict[int, dict] = {}  # epoch -> server -> [(verifier, accuracy)] in the order revealed
        self.verifier_stakes = {str(v): VerifierStake(b) for v, b in zip(self.verifier_accounts, VERIFIER_STAKES)}
        self.seed_commits: dict[int, dict] = {}  # epoch -> verifier -> the salt of its seed share
        self.seed_revealed: dict[int, set] = {}  # epoch -> verifiers that revealed their share
        self.seeds: dict[int, bytes] = {}  # epoch -> the seed drawn
        self.score_commits: dict[int, set] = {}  # epoch -> verifiers that committed scores
        self.revealed_scores: dict[int, set] = {}  # epoch -> verifiers that revealed them
        self.penalties: dict[int, dict] = {}  # epoch -> verifier -> (reason, amount)
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
        return self.pools.setdefault(epoch, Pool(self.verifier_share))

    def _phase(self, epoch: int) -> int:
        """EpochSchedule.phase(epoch) now."""
        if self.now < self._epoch_start(epoch):
            return Phase.FUTURE
        for phase in STAGES:
            if self.now < self.clock.end(epoch, phase):
                return phase
        return Phase.SETTLED

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

    def _pick_verifier(self, data, preferred: list, verifier_index: int, label: str):
        if preferred and not data.draw(st.booleans(), label=label):
            return data.draw(st.sampled_from(preferred), label=label + " verifier")
        return self.verifier_accounts[verifier_index]

    def _can_commit(self, verifier, call) -> bool:
        """Whether ``verifier`` has the bonded stake to commit (scores or a seed share); checks the revert if not."""
        bonded = self.verifier_stakes[str(verifier)].bonded
        if bonded >= PARAMS.min_verifier_stake:
            return True
        self._expect_revert("VerifierStakeTooLow", call, verifier, bonded, PARAMS.min_verifier_stake)
        return False

    def _slash_verifier(self, e: int, addr: str, reason: str) -> tuple:
        """A verifier penalty for epoch ``e``, applied to the model: verifierSlashFraction of its bonded plus
        unbonding stake now, bonded first, into the pool of the current epoch. Returns the VerifierSlashed event."""
        assert addr not in self.penalties.get(e, {}), f"{addr} penalized twice for epoch {e}"
        v = self.verifier_stakes[addr]
        amount = (v.bonded + v.unbonding) * PARAMS.verifier_slash_fraction // ONE
        from_bonded = min(amount, v.bonded)
        v.bonded -= from_bonded
        v.unbonding -= amount - from_bonded
        v.slashed += amount
        v.times_slashed += 1
        self.penalties.setdefault(e, {})[addr] = (reason, amount)
        if amount:
            self._pool(self._current_epoch()).slashed += amount
            self.slashed += amount
        return (addr, e, amount, v.bonded, v.unbonding)

    @staticmethod
    def _slashes_of(tx) -> list:
        events = tx.events["VerifierSlashed"] if "VerifierSlashed" in tx.events else []  # noqa: SIM401 - brownie's EventDict
        return sorted((str(ev["verifier"]), ev["epoch"], ev["amount"], ev["bonded"], ev["unbonding"]) for ev in events)

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

    # ------------------------------------------------------------------------------------------ verifier rules

    def rule_verifier_stake(self, verifier_index, amount):
        verifier = self.verifier_accounts[verifier_index]
        tx = self.system.stakes.stake({"from": verifier, "value": amount})
        v = self.verifier_stakes[str(verifier)]
        v.bonded += amount
        assert tx.events["VerifierStaked"]["bonded"] == v.bonded

    def rule_verifier_unstake(self, verifier_index, unstake_share, data):
        verifier = self.verifier_accounts[verifier_index]
        v = self.verifier_stakes[str(verifier)]
        amount = v.bonded // unstake_share
        if data.draw(st.integers(min_value=0, max_value=9), label="unstake more than bonded") == 9:
            amount = v.bonded + 1
        self._verifier_unstake(verifier, amount)

    def _verifier_unstake(self, verifier, amount: int) -> None:
        v = self.verifier_stakes[str(verifier)]

        def request_unstake():
            return self.system.stakes.requestUnstake(amount, {"from": verifier})

        if amount == 0:
            self._expect_revert("ZeroAmount", request_unstake)
        elif amount > v.bonded:
            self._expect_revert("AmountExceedsStake", request_unstake, amount, v.bonded)
        else:
            request_unstake()
            v.bonded -= amount
            v.unbonding += amount
            v.unlock = self.now + PARAMS.unbonding_period

    def rule_verifier_withdraw(self, verifier_index, data):
        unlocked = [a for a in self.verifier_accounts if self._verifier_withdrawable(str(a))]
        verifier = self._pick_verifier(data, unlocked, verifier_index, "withdraw unlocked")
        v = self.verifier_stakes[str(verifier)]

        def withdraw():
            return self.system.stakes.withdraw({"from": verifier})

        if v.unbonding == 0:
            self._expect_revert("NothingToWithdraw", withdraw)
        elif self.now < v.unlock:
            self._expect_revert("StillUnbonding", withdraw, v.unlock)
        else:
            before = balance(verifier)
            withdraw()
            assert balance(verifier) == before + v.unbonding
            v.unbonding = 0

    def _verifier_withdrawable(self, addr: str) -> bool:
        v = self.verifier_stakes[addr]
        return bool(v.unbonding) and v.unlock <= self.now

    def rule_commit_seed(self, verifier_index, data):
        """A seed share for this epoch or the next, at any time: accepted in the Work and CommitWork phases of the
        epoch it is for."""
        epoch = self.epoch + data.draw(st.integers(min_value=0, max_value=1), label="seed for the next epoch")
        self._commit_seed(epoch, self.verifier_accounts[verifier_index], data)

    def _commit_seed(self, epoch: int, verifier, data) -> None:
        addr = str(verifier)
        salt = data.draw(st.sampled_from(SEED_SALTS), label="seed share")

        def commit_seed():
            return self.system.scoring.commitSeed(epoch, seed_share_hash(verifier, epoch, salt), {"from": verifier})

        phase = self._phase(epoch)
        if phase not in (Phase.WORK, Phase.COMMIT_WORK):
            self._expect_revert("WrongPhase", commit_seed, epoch, Phase.COMMIT_WORK, phase)
        elif addr in self.seed_commits.get(epoch, {}):
            self._expect_revert("SeedShareAlreadyCommitted", commit_seed, epoch, verifier)
        elif self._can_commit(verifier, commit_seed):
            commit_seed()
            self.seed_commits.setdefault(epoch, {})[addr] = salt

    def rule_reveal_seed(self, verifier_index, data):
        """A seed share revealed late (or too late, or never committed), in the current epoch's cycle."""
        withheld = [v for v in self.verifier_accounts if self._withheld(self.epoch, str(v))]
        self._reveal_seed(self.epoch, self._pick_verifier(data, withheld, verifier_index, "reveal withheld"))

    def _withheld(self, epoch: int, addr: str) -> bool:
        return addr in self.seed_commits.get(epoch, {}) and addr not in self.seed_revealed.get(epoch, set())

    def _reveal_seed(self, epoch: int, verifier) -> None:
        addr = str(verifier)
        salt = self.seed_commits.get(epoch, {}).get(addr, SEED_SALTS[0])

        def reveal_seed():
            return self.system.scoring.revealSeed(epoch, salt, {"from": verifier})

        phase = self._phase(epoch)
        if phase != Phase.COMMIT_SCORES:
            self._expect_revert("WrongPhase", reveal_seed, epoch, Phase.COMMIT_SCORES, phase)
        elif epoch in self.seeds:
            self._expect_revert("SeedAlreadyDrawn", reveal_seed, epoch)
        elif addr not in self.seed_commits.get(epoch, {}):
            self._expect_revert("NoSeedShare", reveal_seed, epoch, verifier)
        elif addr in self.seed_revealed.get(epoch, set()):
            self._expect_revert("SeedShareAlreadyRevealed", reveal_seed, epoch, verifier)
        else:
            reveal_seed()
            self.seed_revealed.setdefault(epoch, set()).add(addr)

    def rule_draw_seed(self):
        self._draw_seed(self.epoch)

    def _seed_ready_at(self, epoch: int) -> int:
        start = self.clock.start(epoch, Phase.COMMIT_SCORES)
        return start + (self.clock.end(epoch, Phase.COMMIT_SCORES) - start) // 4

    def _draw_seed(self, epoch: int) -> None:
        def draw_seed():
            return self.system.scoring.drawSeed(epoch, {"from": self.client})

        phase = self._phase(epoch)
        committed = len(self.seed_commits.get(epoch, {}))
        revealed = self.seed_revealed.get(epoch, set())
        if phase != Phase.COMMIT_SCORES:
            self._expect_revert("WrongPhase", draw_seed, epoch, Phase.COMMIT_SCORES, phase)
        elif len(revealed) < committed and self.now < self._seed_ready_at(epoch):
            ready_at = self._seed_ready_at(epoch)
            self._expect_revert("SeedNotReady", draw_seed, epoch, len(revealed), committed, ready_at)
        elif epoch in self.seeds:
            self._expect_revert("SeedAlreadyDrawn", draw_seed, epoch)
        else:
            seed = bytes(draw_seed().events["SeedDrawn"]["seed"])
            salts = [self.seed_commits[epoch][v] for v in revealed]
            assert not revealed or seed == seed_of(xor(salts), epoch, self.system.ledger), f"seed of epoch {epoch}"
            assert seed != bytes(32)
            self.seeds[epoch] = seed

    def rule_penalize(self, verifier_index, data):
        """penalizeNoReveal or penalizeSeedWithheld, for any epoch so far, at any time; mostly one that slashes."""
        epochs = list(range(self.epoch + 2))
        due = [
            (e, v, reason)
            for e in epochs
            for v in self.verifier_accounts
            for reason in ("no reveal", "seed withheld")
            if self._penalty_due(e, str(v), reason) is None
        ]
        if due and data.draw(st.booleans(), label="penalize one due"):
            e, verifier, reason = data.draw(st.sampled_from(due), label="penalty due")
        else:
            e = data.draw(st.sampled_from(epochs), label="penalty epoch")
            verifier = self.verifier_accounts[verifier_index]
            reason = data.draw(st.sampled_from(["no reveal", "seed withheld"]), label="penalty reason")
        self._penalize(e, verifier, reason)

    def _penalty_due(self, e: int, addr: str, reason: str):
        """None if penalizing ``addr`` for ``e`` for ``reason`` slashes it now; else the revert (error, *args)."""
        if reason == "no reveal":
            phase = self._phase(e)
            if phase < Phase.FINALIZE:
                return ("WrongPhase", e, Phase.FINALIZE, phase)
            if addr not in self.score_commits.get(e, set()):
                return ("NoCommitment", e, addr)
            if addr in self.penalties.get(e, {}):
                return ("AlreadyPenalized", e, addr)
            if addr in self.revealed_scores.get(e, set()):
                return ("ScoresWereRevealed", e, addr)
            return None
        if e not in self.seeds:
            return ("SeedNotDrawn", e)
        if addr not in self.seed_commits.get(e, {}):
            return ("NoSeedShare", e, addr)
        if addr in self.seed_revealed.get(e, set()):
            return ("SeedShareWasRevealed", e, addr)
        if addr in self.penalties.get(e, {}):
            return ("AlreadyPenalized", e, addr)
        return None

    def _penalize(self, e: int, verifier, reason: str) -> None:
        addr = str(verifier)
        function = (
            self.system.scoring.penalizeNoReveal if reason == "no reveal" else self.system.scoring.penalizeSeedWithheld
        )

        def penalize():
            return function(e, verifier, {"from": self.client})

        error = self._penalty_due(e, addr, reason)
        if error is not None:
            self._expect_revert(error[0], penalize, *error[1:])
            return
        tx = penalize()
        expected = self._slash_verifier(e, addr, reason)
        event = tx.events["NoRevealPenalized" if reason == "no reveal" else "SeedWithheldPenalized"]
        assert (str(event["verifier"]), event["epoch"], event["amount"]) == (addr, e, expected[2])
        assert self._slashes_of(tx) == [expected], f"penalty of {addr} for epoch {e}"

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

    def rule_claim(self, account_index, data):
        """A server or a verifier claims: what it is owed, mostly, else any epochs."""
        settled = self._settled()
        if not settled:
            return
        accounts = self.server_accounts + self.verifier_accounts

        def owed(addr: str) -> list[int]:
            return [
                e
                for e in settled
                if self._pool(e).share(addr) and addr not in self._pool(e).claimed_by and not self._pool(e).rolled_out
            ]

        owing = [a for a in accounts if owed(str(a))]
        if owing and not data.draw(st.booleans(), label="claim owed"):
            account = data.draw(st.sampled_from(owing), label="claim owed account")
        else:
            account = accounts[account_index]
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
                if addr in self.servers:
                    assert self._facts(e, addr)[0], f"{addr} paid for epoch {e}, which it did not serve in full"
                else:
                    assert addr in self._pool(e).verifiers, f"{addr} paid for epoch {e}, not one of its verifiers"
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
        """Draw the slashing rule and verifier share of this example's deployment. Hypothesis starts with many
        one-step examples: let even those run a whole epoch to settlement."""
        self.rule = data.draw(st.sampled_from(RULES), label="slashing rule")
        self.verifier_share = data.draw(st.sampled_from(VERIFIER_SHARES), label="verifier share")
        self.system = self.systems[(self.rule, self.verifier_share)]
        self._pool(0).funded = INITIAL_FUNDING
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
        for verifier in self.verifier_accounts:  # the last seconds for seed shares of e
            if str(verifier) not in self.seed_commits.get(e, {}) and not data.draw(st.booleans(), label="no share"):
                self._commit_seed(e, verifier, data)
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
        for verifier in self.verifier_accounts:  # seed shares revealed, or withheld
            addr = str(verifier)
            if addr not in self.seed_commits.get(e, {}):
                continue
            if data.draw(st.integers(0, 3), label="withhold share") < 3:
                self._reveal_seed(e, verifier)
            elif not data.draw(st.booleans(), label="stays bonded"):  # withholds, and unstakes half (still slashable)
                self._verifier_unstake(verifier, self.verifier_stakes[addr].bonded // 2)
        # the seed: drawn at once (too soon while a share is withheld), at the first second a withheld share no
        # longer holds it up (tried a second before), or left to rule_draw_seed
        when = data.draw(st.sampled_from(["now", "ready", "edge", "later"]), label="draw seed")
        ready_at = self._seed_ready_at(e)
        if when == "edge" and self.now < ready_at - 1:
            self._move(ready_at - 1)
            self._draw_seed(e)
        if when in ("ready", "edge") and self.now < ready_at and e not in self.seeds:
            self._move(ready_at)
        if when != "later" and e not in self.seeds:
            self._draw_seed(e)
        for verifier in self.verifier_accounts:
            if e in self.seeds and self._withheld(e, str(verifier)) and not data.draw(st.booleans(), label="spare"):
                self._penalize(e, verifier, "seed withheld")
        # verifiers score every server they know the truth about: committed leaves, or canary prompts alone
        truth = self.truth.get(e, {})
        checked = sort_addresses(truth)
        if not checked:
            return
        for verifier in self.verifier_accounts:
            modes = ["honest", "random", "honest", "off", "honest", "absent"]
            mode = data.draw(st.sampled_from(modes), label="verifier")
            if mode == "absent":
                continue
            if mode == "random":
                accs = [data.draw(st.integers(0, 100), label="random accuracy") * ONE // 100 for _ in checked]
            else:
                accs = [truth[s] for s in checked]
            if mode == "off":  # honest but for one server, off by kappa (not penalized alone) or more
                i = data.draw(st.integers(min_value=0, max_value=len(checked) - 1), label="off server")
                off = PARAMS.kappa + data.draw(st.sampled_from([0, 1, ONE // 10]), label="off by kappa +")
                accs[i] = accs[i] + off if accs[i] + off <= ONE else accs[i] - off
            salt = "0x" + f"{e + 1:064x}"
            commitment = scores_hash(verifier, e, checked, accs, salt)

            def commit(verifier=verifier, commitment=commitment):
                return self.system.scoring.commitScores(e, commitment, {"from": verifier})

            if self._can_commit(verifier, commit):
                commit()
                self.score_commits.setdefault(e, set()).add(str(verifier))
                self.pending_reveals[(e, str(verifier))] = (verifier, checked, accs, salt)

    def _reveal_scores(self, data):
        e = self.epoch
        reveals = self.reveals.setdefault(e, {})
        for key in [k for k in self.pending_reveals if k[0] == e]:
            verifier, checked, accs, salt = self.pending_reveals.pop(key)
            if data.draw(st.integers(min_value=0, max_value=7), label="reveal") == 7:
                # an unrevealed commitment counts for nothing, and is penalized: also when the verifier has asked
                # for all its stake back (it is still unbonding)
                if not data.draw(st.booleans(), label="stays bonded"):
                    self._verifier_unstake(verifier, self.verifier_stakes[str(verifier)].bonded)
                continue
            tx = self.system.scoring.revealScores(e, checked, accs, salt, {"from": verifier})
            addr = str(verifier)
            for s, acc in zip(checked, accs):
                reveals.setdefault(s, []).append((addr, acc))
            self.revealed_scores.setdefault(e, set()).add(addr)
            paid = not self._withheld(e, addr)  # paid for verifying, unless it withheld its seed share
            if paid:
                self._pool(e).verifiers.add(addr)
            assert ("VerifierAdded" in tx.events) == paid, f"{addr} paid for epoch {e}"

    def _finalize(self, data):
        """At the start of the Finalize window: everyone, mostly; else some, the rest left to rule_finalize. Then
        verifiers that did not reveal are penalized, or left to rule_penalize."""
        self._finalize_batches(data, everyone=data.draw(st.integers(0, 3), label="finalize some only") < 3)
        for verifier in self.verifier_accounts:
            if self._penalty_due(self.epoch, str(verifier), "no reveal") is None and not data.draw(
                st.booleans(), label="spare"
            ):
                self._penalize(self.epoch, verifier, "no reveal")

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
        expected, deviations, slashes = [], [], []
        paid_before = set(self._pool(e).verifiers)
        for addr in batch:
            if addr not in done:
                result = self._predict_and_apply(e, addr, deviations, slashes)
                if result is not None:
                    done.add(addr)
                    expected.append(result)
        tx = self.system.scoring.finalize(e, batch, {"from": self.client})
        events = tx.events["ServerScored"] if "ServerScored" in tx.events else []  # noqa: SIM401 - brownie's EventDict has no get()
        assert [(str(ev["server"]), ev["outcome"], ev["score"], ev["rewardWeight"]) for ev in events] == expected
        events = tx.events["DeviationPenalized"] if "DeviationPenalized" in tx.events else []  # noqa: SIM401
        found = [(str(ev["verifier"]), str(ev["server"]), ev["accuracy"], ev["median"], ev["amount"]) for ev in events]
        assert sorted(found) == sorted(deviations), f"verifiers penalized for deviating in epoch {e}"
        assert self._slashes_of(tx) == sorted(slashes)
        removed = (
            {str(ev["verifier"]) for ev in tx.events["VerifierRemoved"]} if "VerifierRemoved" in tx.events else set()
        )
        assert removed == paid_before - self._pool(e).verifiers, "paid verifiers removed for deviating"
        for addr, _, _, weight in expected:
            if weight:
                assert self._facts(e, addr)[0], f"{addr} weighted in epoch {e}, which it did not serve in full"

    def _predict_and_apply(self, e, addr, deviations: list, slashes: list):
        """The outcome of finalizing ``addr`` for epoch ``e`` (eq. 3 and the slashing rule), applied to the model;
        None when it had no span in ``e`` (registered after ``e`` began): not scored. With a quorum, the verifiers
        that revealed an accuracy more than kappa from the median and were not penalized yet are (appended to
        ``deviations`` and ``slashes``)."""
        s = self.servers[addr]
        active, _, span = self._facts(e, addr)
        if span == 0:
            return None
        accs = [acc for _, acc in self.reveals.get(e, {}).get(addr, [])]
        if len(accs) < PARAMS.min_verifiers:
            self.outcomes[(e, addr)] = Outcome.NO_QUORUM
            return (addr, Outcome.NO_QUORUM, 0, 0)
        acc = median(accs)
        for verifier, revealed in self.reveals[e][addr]:
            if abs(revealed - acc) > PARAMS.kappa and verifier not in self.penalties.get(e, {}):
                self._pool(e).verifiers.discard(verifier)
                slashes.append(self._slash_verifier(e, verifier, "deviation"))
                deviations.append((verifier, addr, revealed, acc, slashes[-1][2]))
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
        verifiers = list(self.verifier_stakes)
        values = read_batch(
            (balance, registry),
            (balance, pool),
            (registry.totalBonded,),
            (registry.totalUnbonding,),
            (balance, stakes),
            (stakes.totalBonded,),
            (stakes.totalUnbonding,),
            (stakes.totalSlashed,),
            *[(stakes.stakeOf, v) for v in verifiers],
            *[(pool.epochPool, e) for e in epochs],
        )
        registry_balance, pool_balance, bonded, unbonding = values[:4]
        stakes_balance, verifiers_bonded, verifiers_unbonding, verifiers_slashed = values[4:8]
        for v, stake in zip(verifiers, values[8 : 8 + len(verifiers)]):
            m = self.verifier_stakes[v]
            assert tuple(stake) == (m.bonded, m.unbonding, m.slashed, m.unlock, m.times_slashed), f"stake of {v}"
        models = self.verifier_stakes.values()
        assert verifiers_bonded == sum(m.bonded for m in models)
        assert verifiers_unbonding == sum(m.unbonding for m in models)
        assert verifiers_slashed == sum(m.slashed for m in models)
        assert stakes_balance == verifiers_bonded + verifiers_unbonding  # verifier stakes: every wei accounted for
        unclaimed = 0
        for e, p in zip(epochs, values[8 + len(verifiers) :]):
            size = p["funded"] + p["slashed"] + p["rolledIn"]
            unclaimed += 0 if p["rolledOut"] else size - p["claimed"]
            model = self.pools[e]
            assert (size, p["claimed"], p["totalWeight"], p["verifiers"], p["rolledOut"]) == (
                model.size,
                model.claimed,
                model.total_weight,
                len(model.verifiers),
                model.rolled_out,
            ), f"pool of epoch {e}"
        assert (bonded, unbonding) == (self.bonded, self.unbonding)
        assert registry_balance == bonded + unbonding
        assert pool_balance == unclaimed == sum(p.unclaimed for p in self.pools.values())
        assert registry_balance + pool_balance + stakes_balance == (
            bonded + unbonding + unclaimed + verifiers_bonded + verifiers_unbonding
        )

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
                # (the epoch stake, the last field, is checked by tests/contracts/test_reward_rules.py)
                assert tuple(next(facts))[:6] == (s.status, s.registered, active, first, n, ONE), f"facts of {a} in {e}"
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
            accs = [acc for _, acc in self.reveals.get(e, {}).get(a, [])]
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

    def _deviators(self, e: int) -> set:
        """Verifiers that revealed, for a server of ``e`` finalized with a quorum, an accuracy more than kappa from
        its median."""
        found = set()
        for server in self.finalized.get(e, ()):
            if self.outcomes[(e, server)] == Outcome.NO_QUORUM:
                continue
            reveals = self.reveals[e][server]
            med = median([acc for _, acc in reveals])
            found |= {v for v, acc in reveals if abs(acc - med) > PARAMS.kappa}
        return found

    def invariant_verifiers(self):
        """Seed shares and seeds, penalties and pay of the verifiers of every epoch so far (and the next)."""
        scoring, pool, ledger = self.system.scoring, self.system.pool, self.system.ledger
        epochs = range(self._current_epoch() + 2)
        verifiers = list(self.verifier_stakes)
        accounts = list(self.servers) + verifiers
        settled = set(self._settled())
        per_epoch = [(scoring.seedShares, e) for e in epochs] + [(ledger.sampleSeed, e) for e in epochs]
        per_verifier = [
            read
            for e in epochs
            for v in verifiers
            for read in ((pool.isPaidVerifier, e, v), (scoring.isPenalized, e, v), (pool.pendingRewards, v, [e]))
        ]
        shares = [(pool.shareOf, e, a) for e in sorted(settled) for a in accounts]
        values = iter(read_batch(*per_epoch, *per_verifier, *shares))
        seed_shares = [next(values) for _ in epochs]
        seeds = [next(values) for _ in epochs]
        by_verifier = {(e, v): (next(values), next(values), next(values)) for e in epochs for v in verifiers}
        claimable = {e: [next(values) for _ in accounts] for e in sorted(settled)}
        for e, (committed, revealed), seed in zip(epochs, seed_shares, seeds):
            commits, opened = self.seed_commits.get(e, {}), self.seed_revealed.get(e, set())
            assert (committed, revealed) == (len(commits), len(opened)), f"seed shares of epoch {e}"
            assert bytes(seed) == self.seeds.get(e, bytes(32)), f"seed of epoch {e}"
            if e in self.seeds and opened:
                assert bytes(seed) == seed_of(xor(commits[v] for v in opened), e, ledger), f"seed formula, epoch {e}"
            withheld = set(commits) - opened
            revealed_scores = self.revealed_scores.get(e, set())
            deviators = self._deviators(e)
            honest = revealed_scores - withheld - deviators
            p = self._pool(e)
            assert p.verifiers == honest, f"paid verifiers of epoch {e}"
            penalties = self.penalties.get(e, {})
            for v, (reason, _) in penalties.items():
                assert v not in honest, f"honest verifier {v} penalized for epoch {e}"
                assert {
                    "no reveal": v in self.score_commits.get(e, set()) - revealed_scores,
                    "seed withheld": v in withheld,
                    "deviation": v in deviators,
                }[reason], f"{v} penalized for epoch {e} without reason ({reason})"
        for (e, v), (paid, penalized, pending) in by_verifier.items():
            p = self._pool(e)
            assert paid == (v in p.verifiers), f"{v} paid for epoch {e}"
            assert penalized == (v in self.penalties.get(e, {})), f"{v} penalized for epoch {e}"
            owed = p.share(v) if e in settled and v not in p.claimed_by and not p.rolled_out else 0
            assert pending == owed, f"pending pay of verifier {v} for epoch {e}"
        for e, amounts in claimable.items():
            p = self._pool(e)
            assert amounts == [p.share(a) for a in accounts], f"shares of epoch {e}"
            assert sum(amounts) <= p.size, f"what the servers and verifiers of epoch {e} can claim exceeds its pool"

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
    """One deployment per slashing rule and verifier share, at one timestamp (the clock is frozen): each example
    draws which to use."""
    systems = {}
    for rule in RULES:
        for share in VERIFIER_SHARES:
            system = deploy_system(replace(PARAMS, slashing_rule=rule, verifier_share=share), gov, verifiers)
            for verifier, bonded in zip(verifiers, VERIFIER_STAKES):
                if bonded > PARAMS.min_verifier_stake:  # deploy_system bonded min_verifier_stake
                    system.stakes.stake({"from": verifier, "value": bonded - PARAMS.min_verifier_stake})
            for i, first, n, stake in INITIAL_SERVERS:
                system.registry.register("http://s", first, n, {"from": servers[i], "value": stake})
            system.pool.fundEpoch(0, {"from": client, "value": INITIAL_FUNDING})
            systems[(rule, share)] = system
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
