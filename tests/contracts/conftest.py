"""Fixtures and helpers of the contract tests (brownie on Anvil).

* ``system`` deploys every contract through ``efedllm.chain.plan`` (the plan both deployers run), so the tests
  exercise the deployed wiring rather than a hand-made copy of it.
* The chain clock is frozen (``anvil_setBlockTimestampInterval(0)``): time moves only when a test moves it with
  ``clock`` (``goto``, ``sleep``, ``to_phase``). Every transaction between two moves has the same timestamp, so
  window boundaries can be tested to the second and nothing depends on how fast the machine is.
  ``chain.sleep`` is a no-op while the clock is frozen; use ``clock.sleep``.
* ``reverts("ErrorName", *args)`` matches the 4-byte selector of the revert data against the custom errors
  declared in the project's ABIs (OpenZeppelin's included).
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pytest
from brownie import Wei, accounts, chain, project, rpc, web3
from brownie.exceptions import VirtualMachineError
from eth_abi import encode as abi_encode
from web3.exceptions import TransactionNotFound

from efedllm.chain import enums, plan
from efedllm.chain.params import ETHER as ETHER  # the test modules import it from here
from efedllm.chain.params import ONE, ProtocolParams
from efedllm.chain.transactions import ErrorDecoder
from tests.support.params import TEST_PARAMS

# ------------------------------------------------------------------------------------------------ brownie workarounds


def _unwrap_brownie_rpc_warnings() -> None:
    """brownie 1.22 wraps Rpc.sleep/mine/snapshot/revert in a check that calls ``inspect.stack()`` (reading the
    source of every frame) to warn about direct calls. brownie itself snapshots after every transaction, so
    under pytest and hypothesis that check costs most of the suite's time (minutes for the stateful test).
    Calling the wrapped methods directly changes nothing else."""
    rpc_module = sys.modules["brownie.network.rpc"]
    for name in ("sleep", "mine", "snapshot", "revert"):
        method = getattr(rpc_module.Rpc, name)
        inner = [c.cell_contents for c in (method.__closure__ or ()) if callable(c.cell_contents)]
        if method.__qualname__.startswith("internal.") and len(inner) == 1:
            setattr(rpc_module.Rpc, name, inner[0])


_unwrap_brownie_rpc_warnings()


def pytest_configure(config):
    # brownie's fixtures still warn about their own rpc.* calls (FutureWarning) on every snapshot and revert
    config.addinivalue_line("filterwarnings", "ignore::FutureWarning")


def _load_pure_python_stateful():
    """brownie's own ``brownie/test/stateful.py``, loaded from source.

    The mypyc-compiled build of that module in brownie 1.22.2 marks ``_BrownieStateMachine`` final, and the
    compiled ``__init__`` then rejects the subclass that ``state_machine`` itself generates ("TypeError:
    _BrownieStateMachine object expected"), so every stateful test fails. The source of the same module works.
    """
    import importlib.util

    import brownie.test

    path = Path(brownie.test.__file__).with_name("stateful.py")
    spec = importlib.util.spec_from_file_location("_brownie_stateful_source", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def state_machine():
    """brownie's ``state_machine`` (from its Python source, see ``_load_pure_python_stateful``)."""
    yield _load_pure_python_stateful().state_machine


# ------------------------------------------------------------------------------------------------ constants and helpers

ZERO_BYTES32 = "0x" + "00" * 32


def _plain(enum: type) -> type:
    """The members of one of efedllm.chain.enums (generated from the contracts) as plain ints: brownie's return
    values do not compare with IntEnum."""
    return type(enum.__name__, (), {"__doc__": enum.__doc__, **{m.name: int(m) for m in enum}})


Phase, Status, Outcome = _plain(enums.Phase), _plain(enums.Status), _plain(enums.Outcome)


def bytes32(text: str) -> str:
    """``bytes32`` text as Solidity writes a short string literal into bytes32 (left-aligned, zero padded)."""
    raw = text.encode()
    assert len(raw) <= 32
    return "0x" + raw.ljust(32, b"\0").hex()


def role(name: str) -> str:
    return ZERO_BYTES32 if name == "DEFAULT_ADMIN_ROLE" else web3.to_hex(web3.keccak(text=name))


def sort_addresses(addrs: Iterable) -> list[str]:
    """Ascending by numeric value, the order revealScores requires."""
    return sorted((str(a) for a in addrs), key=lambda a: int(a, 16))


def score_eq3(acc: int, span: int, max_span: int, weight: int = ONE) -> int:
    """eq. 3 in the contract's fixed point: acc * l * w / (max(l) * 1.0), one division, capped at 1.0."""
    max_span = max(max_span, span)
    return min(acc * span * weight // (max_span * ONE), ONE)


def median(values: list[int]) -> int:
    v = sorted(values)
    mid = len(v) // 2
    return v[mid] if len(v) % 2 else (v[mid - 1] + v[mid]) // 2


def scores_hash(verifier, epoch: int, servers: list[str], accuracies: list[int], salt: str) -> str:
    """keccak256(abi.encode(verifier, epoch, servers, accuracies, salt)), computed off chain."""
    data = abi_encode(
        ["address", "uint256", "address[]", "uint256[]", "bytes32"],
        [str(verifier), epoch, [str(s) for s in servers], accuracies, bytes.fromhex(salt[2:])],
    )
    return web3.to_hex(web3.keccak(data))


def root_of(server, epoch: int) -> str:
    """A stand-in Merkle root for a server's work of an epoch (any non-zero bytes32)."""
    return web3.to_hex(web3.keccak(text=f"work:{server}:{epoch}"))


# ------------------------------------------------------------------------------------------------ custom errors


@functools.cache
def error_decoder() -> ErrorDecoder:
    """efedllm's own decoder (what users' error messages come from) over every ABI of the project."""
    return ErrorDecoder(container.abi for container in project.get_loaded_projects()[0])


def error_selector(name: str) -> str:
    return "0x" + error_decoder().selector(name).hex()


def decode_error(data: str) -> tuple[str, tuple]:
    """(name, args) of custom-error revert data; ("<unknown 0x...>", ()) for data no ABI declares."""
    if not data or data == "0x":
        return "<no revert data>", ()
    found = error_decoder().error_of(data)
    if found is None:
        return f"<unknown {data[:10].lower()}>", ()
    name, args = found
    return name, tuple((args or {}).values())


def _trace(txid: str) -> dict:
    response = web3.provider.make_request("debug_traceTransaction", [txid, {"tracer": "callTracer"}])
    assert "result" in response, f"callTracer failed: {response}"
    return response["result"]


def _find_hex_data(obj, depth: int = 0):
    """Revert data of an eth_call failure, dug out of the RPC error that brownie wrapped."""
    if depth > 6 or obj is None:
        return None
    if isinstance(obj, str) and obj.startswith("0x") and len(obj) >= 10:
        return obj
    if isinstance(obj, Mapping):
        for key in ("data", "result", "output"):
            found = _find_hex_data(obj.get(key), depth + 1)
            if found:
                return found
        return None
    if isinstance(obj, BaseException):
        for arg in obj.args:
            found = _find_hex_data(arg, depth + 1)
            if found:
                return found
        return _find_hex_data(obj.__context__, depth + 1)
    if isinstance(obj, (list, tuple)):
        for item in obj:
            found = _find_hex_data(item, depth + 1)
            if found:
                return found
    return None


@dataclass
class Revert:
    """What a ``reverts`` block saw: the decoded error, and the errors of reverted inner calls (from the trace)."""

    name: str = ""
    args: tuple = ()
    data: str = ""
    nested: list[str] = field(default_factory=list)


def _nested_errors(frame: Mapping, out: list[str]) -> None:
    for call in frame.get("calls", []) or []:
        if call.get("error"):
            out.append(decode_error(call.get("output", "0x"))[0])
        _nested_errors(call, out)


@contextmanager
def reverts(name: str, *args):
    """Expect the block to revert with the custom error ``name`` (and ``args``, when given).

    The error is identified by the selector of the revert data, looked up among the custom errors of the
    project's ABIs; an unknown ``name`` is a mistake in the test and raises ValueError at once.
    """
    expected_selector = error_selector(name)
    seen = Revert()
    try:
        yield seen
    except VirtualMachineError as exc:
        if exc.txid:
            frame = _trace(exc.txid)
            data = frame.get("output") or "0x"
            _nested_errors(frame, seen.nested)
        else:
            data = _find_hex_data(exc) or "0x"
        seen.data = data
        seen.name, seen.args = decode_error(data)
        if data[:10].lower() != expected_selector:
            pytest.fail(f"expected revert {name}, got {seen.name}{seen.args or ''}", pytrace=False)
        if args and tuple(_normalize(a) for a in args) != tuple(_normalize(a) for a in seen.args):
            pytest.fail(f"expected {name}{args}, got {seen.name}{seen.args}", pytrace=False)
    else:
        pytest.fail(f"expected revert {name}, but the call succeeded", pytrace=False)


def _normalize(value):
    """Compare addresses case-insensitively and bytes32 as hex."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if hasattr(value, "address"):
        return str(value.address).lower()
    if isinstance(value, str):
        return value.lower()
    return value


# ------------------------------------------------------------------------------------------------ deployment


@dataclass
class System:
    """One deployment: the contracts, the parameters and the governor who deployed them."""

    params: ProtocolParams
    governor: object
    schedule: object
    pool: object
    registry: object
    ledger: object
    scoring: object
    stakes: object
    challenges: object
    payments: object

    @property
    def by_name(self) -> dict[str, object]:
        return {
            "EpochSchedule": self.schedule,
            "RewardPool": self.pool,
            "ServerRegistry": self.registry,
            "VerifierStakes": self.stakes,
            "WorkLedger": self.ledger,
            "TrustScoring": self.scoring,
            "ServingChallenges": self.challenges,
            "Payments": self.payments,
        }


def deploy_system(
    params: ProtocolParams = TEST_PARAMS, governor=None, verifiers: Iterable = (), *, stake: bool = True
) -> System:
    """Deploy through ``plan.steps`` and ``plan.GRANTS``, then grant VERIFIER_ROLE to ``verifiers`` and (unless
    ``stake`` is false) let each bond ``min_verifier_stake``, so that they may commit scores."""
    _freeze_clock()  # the whole deployment at one timestamp: GENESIS is the time every test starts from
    governor = governor or accounts[0]
    loaded = project.get_loaded_projects()[0]
    addresses: dict[str, str] = {}
    deployed: dict[str, object] = {}
    for step in plan.steps(params, governor.address):
        contract = loaded[step.contract].deploy(*step.args(addresses), {"from": governor})
        addresses[step.contract] = contract.address
        deployed[step.contract] = contract
    for grant in plan.GRANTS:
        target = deployed[grant.contract]
        target.grantRole(getattr(target, grant.role)(), addresses[grant.grantee], {"from": governor})
    scoring = deployed[plan.VERIFIER_ROLE_HOLDER]
    for verifier in verifiers:
        scoring.grantRole(scoring.VERIFIER_ROLE(), verifier, {"from": governor})
        if stake:
            deployed["VerifierStakes"].stake({"from": verifier, "value": params.min_verifier_stake})
    return System(
        params=params,
        governor=governor,
        schedule=deployed["EpochSchedule"],
        pool=deployed["RewardPool"],
        registry=deployed["ServerRegistry"],
        ledger=deployed["WorkLedger"],
        scoring=deployed["TrustScoring"],
        stakes=deployed["VerifierStakes"],
        challenges=deployed["ServingChallenges"],
        payments=deployed["Payments"],
    )


def _freeze_clock() -> None:
    response = web3.provider.make_request("anvil_setBlockTimestampInterval", [0])
    assert "error" not in response, response


@pytest.fixture(scope="session", autouse=True)
def frozen_clock():
    # The suite reverts the chain it runs on and freezes its clock for good: never do that to a node someone
    # else started on brownie's port (brownie attaches to whatever listens there).
    if not rpc.is_child() and os.environ.get("EFEDLLM_TESTS_ON_FOREIGN_NODE") != "1":
        pytest.exit(
            "brownie attached to an RPC node it did not start (port 8545 in use); stop that node, or set "
            "EFEDLLM_TESTS_ON_FOREIGN_NODE=1 to run these tests on it anyway",
            returncode=3,
        )
    _freeze_clock()


@pytest.fixture(scope="session", autouse=True)
def prompt_receipts():
    """Anvil mines a transaction just after answering eth_sendTransaction, and the sender's nonce can go up a moment
    before the transaction can be looked up by its hash. brownie, which looks for the receipt at once, then either
    sleeps a whole second before looking again or, having seen the nonce go up, gives the transaction up as dropped
    ("Tx dropped without known replacement"): seconds lost, and tests (a module's deployment, state-machine
    examples) failed at random, about one whole run in seven. Here a transaction not found yet is looked up again
    for a while, for every test of the suite."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("get_transaction", "get_transaction_receipt"):
            patch.setattr(web3.eth, name, _patient(getattr(web3.eth, name)))
        yield


RECEIPT_POLLS, RECEIPT_POLL_INTERVAL = 400, 0.005


def _patient(lookup):
    def patient(txid):
        for _ in range(RECEIPT_POLLS):
            try:
                return lookup(txid)
            except TransactionNotFound:
                time.sleep(RECEIPT_POLL_INTERVAL)
        return lookup(txid)

    return patient


@pytest.fixture(autouse=True)
def isolation(fn_isolation):
    _freeze_clock()


# ------------------------------------------------------------------------------------------------ accounts


@pytest.fixture(scope="session")
def gov(accounts):
    """Deployer, DEFAULT_ADMIN_ROLE and GOVERNOR_ROLE holder of every contract."""
    return accounts[0]


@pytest.fixture(scope="session")
def servers(accounts):
    return accounts[1:5]


@pytest.fixture(scope="session")
def verifiers(accounts):
    return accounts[5:8]


@pytest.fixture(scope="session")
def client(accounts):
    """Funds epochs."""
    return accounts[8]


@pytest.fixture(scope="session")
def stranger(accounts):
    """Holds no role and runs no server."""
    return accounts[9]


# ------------------------------------------------------------------------------------------------ contracts


@pytest.fixture(scope="module")
def deploy(module_isolation, gov, verifiers):
    """Factory for further deployments with other parameters (e.g. ``dataclasses.replace(TEST_PARAMS, ...)``)."""

    def _deploy(params: ProtocolParams = TEST_PARAMS) -> System:
        return deploy_system(params, gov, verifiers)

    return _deploy


@pytest.fixture(scope="module")
def system(deploy):
    return deploy()


def _part_of_system(name: str):
    """A module fixture ``name``: that field of ``system`` (``params``, ``schedule``, ``pool``, ...)."""

    @pytest.fixture(scope="module", name=name)
    def part(system):
        return getattr(system, name)

    return part


params, schedule, pool, registry, ledger, scoring, stakes, challenges, payments = map(
    _part_of_system, ("params", "schedule", "pool", "registry", "ledger", "scoring", "stakes", "challenges", "payments")
)


# ------------------------------------------------------------------------------------------------ time


class Clock:
    """Moves the frozen chain clock of one deployment's schedule."""

    _STARTS: ClassVar[dict] = {
        Phase.WORK: 0,
        Phase.COMMIT_WORK: 1,
        Phase.COMMIT_SCORES: 2,
        Phase.REVEAL_SCORES: 3,
        Phase.FINALIZE: 4,
        Phase.SETTLED: 5,
    }

    def __init__(self, schedule):
        self.schedule = schedule
        self.genesis = schedule.GENESIS()
        self.epoch_length = schedule.EPOCH_LENGTH()
        self.window_lengths = [
            self.epoch_length,
            schedule.COMMIT_WORK_WINDOW(),
            schedule.COMMIT_SCORES_WINDOW(),
            schedule.REVEAL_WINDOW(),
            schedule.FINALIZE_WINDOW(),
        ]

    @staticmethod
    def now() -> int:
        return web3.eth.get_block("latest")["timestamp"]

    def epoch(self) -> int:
        """The current epoch, as EpochSchedule.currentEpoch computes it."""
        now = self.now()
        return 0 if now < self.genesis else (now - self.genesis) // self.epoch_length

    def start(self, epoch: int, phase: Phase) -> int:
        """First second of ``phase`` of ``epoch``."""
        return self.genesis + epoch * self.epoch_length + sum(self.window_lengths[: self._STARTS[phase]])

    def end(self, epoch: int, phase: Phase) -> int:
        """First second after ``phase`` of ``epoch``."""
        assert phase != Phase.SETTLED
        return self.start(epoch, phase) + self.window_lengths[self._STARTS[phase]]

    def set_next(self, timestamp: int) -> None:
        """The next block (the next transaction) gets ``timestamp``; later ones too, until the next move."""
        response = web3.provider.make_request("evm_setNextBlockTimestamp", [timestamp])
        assert "error" not in response, f"cannot move the clock to {timestamp}: {response['error']}"

    def goto(self, timestamp: int) -> None:
        """Mine a block at ``timestamp`` (not before the latest block)."""
        self.set_next(timestamp)
        chain.mine()
        assert self.now() == timestamp

    def sleep(self, seconds: int) -> None:
        self.goto(self.now() + seconds)

    def to_phase(self, epoch: int, phase: Phase, offset: int = 0) -> int:
        """Move to ``offset`` seconds into ``phase`` of ``epoch``; returns the timestamp."""
        t = self.start(epoch, phase) + offset
        if phase != Phase.SETTLED:
            assert t < self.end(epoch, phase), "offset beyond the window"
        self.goto(t)
        return t

    def to_epoch(self, epoch: int, offset: int = 0) -> int:
        return self.to_phase(epoch, Phase.WORK, offset)


@pytest.fixture(scope="module")
def clock(schedule):
    return Clock(schedule)


# ------------------------------------------------------------------------------------------------ protocol steps


@dataclass
class Reveal:
    verifier: object
    epoch: int
    servers: list[str]
    accuracies: list[int]
    salt: str

    @property
    def commitment(self) -> str:
        return scores_hash(self.verifier, self.epoch, self.servers, self.accuracies, self.salt)


class Protocol:
    """Multi-step protocol actions of one deployment, for tests about what happens after them."""

    def __init__(self, system: System, clock: Clock, verifiers):
        self.system = system
        self.clock = clock
        self.verifiers = list(verifiers)

    def register(
        self, server, first: int = 0, n: int | None = None, stake: int | None = None, endpoint: str | None = None
    ):
        n = self.system.params.num_layers - first if n is None else n
        stake = self.system.params.min_stake if stake is None else stake
        if endpoint is None:
            endpoint = f"http://{str(server)[2:10].lower()}.example:8080"
        return self.system.registry.register(endpoint, first, n, {"from": server, "value": stake})

    def commit_work(self, epoch: int, work: Mapping) -> None:
        """Every server in ``work`` (server -> work units) commits in the CommitWork window of ``epoch``."""
        self._at(epoch, Phase.COMMIT_WORK)
        for server, units in work.items():
            self.system.ledger.commitWork(epoch, root_of(server, epoch), units, {"from": server})

    def reveal_for(self, verifier, epoch: int, accuracies: Mapping) -> Reveal:
        servers = sort_addresses(accuracies)
        by_address = {str(s): a for s, a in accuracies.items()}
        salt = web3.to_hex(web3.keccak(text=f"salt:{verifier}:{epoch}"))
        return Reveal(verifier, epoch, servers, [by_address[s] for s in servers], salt)

    def commit_scores(self, reveal: Reveal):
        return self.system.scoring.commitScores(reveal.epoch, reveal.commitment, {"from": reveal.verifier})

    def reveal_scores(self, reveal: Reveal):
        return self.system.scoring.revealScores(
            reveal.epoch, reveal.servers, reveal.accuracies, reveal.salt, {"from": reveal.verifier}
        )

    def score(self, epoch: int, accuracies, verifiers=None) -> list[Reveal]:
        """Verifier commit + reveal for ``epoch``.

        ``accuracies`` is either {server: acc} (every verifier reports the same) or a list with one such
        mapping per verifier (``verifiers`` or the default verifiers, in order).
        """
        verifiers = self.verifiers if verifiers is None else list(verifiers)
        if isinstance(accuracies, Mapping):
            accuracies = [accuracies] * len(verifiers)
        reveals = [self.reveal_for(v, epoch, accs) for v, accs in zip(verifiers, accuracies, strict=True)]
        self._at(epoch, Phase.COMMIT_SCORES)
        for r in reveals:
            self.commit_scores(r)
        self._at(epoch, Phase.REVEAL_SCORES)
        for r in reveals:
            self.reveal_scores(r)
        return reveals

    def finalize(self, epoch: int, servers: Iterable, sender=None):
        self._at(epoch, Phase.FINALIZE)
        return self.system.scoring.finalize(epoch, [str(s) for s in servers], {"from": sender or self.system.governor})

    def run_epoch(self, epoch: int, work: Mapping, accuracies, finalize: Iterable | None = None):
        """commitWork, score and finalize ``epoch``; returns the finalize transaction."""
        if work:
            self.commit_work(epoch, work)
        self.score(epoch, accuracies)
        servers = list(work) if finalize is None else list(finalize)
        return self.finalize(epoch, servers)

    def settle(self, epoch: int) -> None:
        self._at(epoch, Phase.SETTLED)

    def _at(self, epoch: int, phase: Phase) -> None:
        """Move into ``phase`` of ``epoch`` unless already there."""
        if self.system.schedule.phase(epoch) != phase:
            self.clock.to_phase(epoch, phase)


@pytest.fixture(scope="module")
def protocol(system, clock, verifiers):
    return Protocol(system, clock, verifiers)


@pytest.fixture(scope="module")
def gov_slasher(system, gov):
    """The governor additionally holds SLASHER_ROLE, to unit-test ServerRegistry.slash without scoring."""
    system.registry.grantRole(system.registry.SLASHER_ROLE(), gov, {"from": gov})
    return gov


def plain(value):
    """Brownie return values and events as plain Python (brownie's own == fails on arrays of Wei)."""
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "items"):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return str(value)
    return value


def balance(who) -> Wei:
    return Wei(web3.eth.get_balance(str(who)))


def read_batch(*reads) -> list:
    """Many reads in one JSON-RPC batch, for checks that run after every step of the stateful test.

    Each read is ``(contract.view, *args)``, or ``(balance, address)`` for an ETH balance.
    """
    payload = []
    for fn, *args in reads:
        if fn is balance:
            payload.append(("eth_getBalance", [str(args[0]), "latest"]))
        else:
            payload.append(("eth_call", [{"to": str(fn._address), "data": fn.encode_input(*args)}, "latest"]))
    responses = web3.provider.make_batch_request(payload)
    values = []
    for (fn, *_), response in zip(reads, responses, strict=True):
        assert "result" in response, response
        values.append(int(response["result"], 16) if fn is balance else fn.decode_output(response["result"]))
    return values
