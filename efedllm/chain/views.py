"""Typed views of the contracts' structs, decoded by the ABI's component names, never by position.

web3 returns a struct as a plain tuple, so ``score[1]`` or ``work[0]`` silently read the wrong field once a
struct gains or reorders one. Here each struct has a frozen dataclass whose fields are the Solidity names in
snake_case, and :class:`StructDecoder` pairs a returned tuple with the component names of the deployment's
ABI. When the ABI's components and the dataclass's fields differ (a field added to a contract but not here),
building the decoder raises :class:`StructMismatch` naming both sides, instead of shifting values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Generic, TypeVar

from efedllm.chain.enums import ChallengeState, ComputeDtype, Outcome, Phase, Status, WeightFormat
from efedllm.errors import EfedError


def snake(name: str) -> str:
    """``firstLayer`` -> ``first_layer`` (the ABI's camelCase to Python's field names)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


class StructMismatch(EfedError):
    """The deployment's ABI and a view dataclass disagree on a struct's fields."""


@dataclass(frozen=True, kw_only=True)
class ServerRecord:
    """IServerRegistry.Server, plus the server's ``address`` (the registry's key, not a struct field)."""

    ENUMS: ClassVar[dict[str, type]] = {"status": Status, "dtype": ComputeDtype, "weights": WeightFormat}
    EXTRA: ClassVar[tuple[str, ...]] = ("address",)

    address: str
    endpoint: str
    first_layer: int
    num_layers: int
    status: Status
    registered_epoch: int
    active_since: int
    times_slashed: int
    unlock_time: int
    left_epoch: int
    """1 + the last epoch during which it left the active set (0: never): that epoch is not paid."""
    left_before: bool
    dtype: ComputeDtype
    """The compute dtype declared last (what it serves now)."""
    weights: WeightFormat
    stake: int
    unbonding: int
    total_slashed: int
    weight: int

    @property
    def layers(self) -> range:
        return range(self.first_layer, self.first_layer + self.num_layers)

    @property
    def serving(self) -> Serving:
        return Serving(dtype=self.dtype, weights=self.weights)


@dataclass(frozen=True, kw_only=True)
class Serving:
    """IServerRegistry.Serving: the precision and weight format a server declares (efedllm/model/serving.py loads
    a span so; efedllm/verifier/rules.py holds it to the configuration's bounds)."""

    ENUMS: ClassVar[dict[str, type]] = {"dtype": ComputeDtype, "weights": WeightFormat}
    EXTRA: ClassVar[tuple[str, ...]] = ()

    dtype: ComputeDtype = ComputeDtype.FLOAT32
    weights: WeightFormat = WeightFormat.FULL

    DTYPE_NAMES: ClassVar[dict[str, ComputeDtype]] = {
        "float32": ComputeDtype.FLOAT32,
        "bfloat16": ComputeDtype.BFLOAT16,
        "float16": ComputeDtype.FLOAT16,
    }
    """torch's names of the compute dtypes (the server's ``--dtype``, ``/info``)."""

    @classmethod
    def named(cls, *, dtype: str, quantize: str | None = None) -> Serving:
        """From the names a server's command line takes (``--dtype bfloat16 --quantize int8``)."""
        if dtype not in cls.DTYPE_NAMES:
            raise EfedError(f"unknown compute dtype {dtype!r}: one of {', '.join(cls.DTYPE_NAMES)}")
        if quantize not in (None, "int8"):
            raise EfedError(f"unknown weight quantization {quantize!r}: int8 or none")
        return cls(dtype=cls.DTYPE_NAMES[dtype], weights=WeightFormat.INT8 if quantize else WeightFormat.FULL)

    @property
    def dtype_name(self) -> str:
        return next(name for name, value in self.DTYPE_NAMES.items() if value == self.dtype)

    @property
    def quantize(self) -> str | None:
        return "int8" if self.weights == WeightFormat.INT8 else None

    @property
    def label(self) -> str:
        """``float32``, ``bfloat16``, ``int8/float32``, ``int8/bfloat16`` ...: how people read it."""
        return f"int8/{self.dtype_name}" if self.quantize else self.dtype_name

    def as_tuple(self) -> tuple[int, int]:
        """The ABI's tuple, for ``declareServing``."""
        return (int(self.dtype), int(self.weights))


FLOAT32_FULL = Serving()
"""What a server that never declared a configuration serves: float32 compute, full weights."""


@dataclass(frozen=True, kw_only=True)
class Commitment:
    """IWorkLedger.Commitment: a server's work commitment for one epoch (``work_units`` 0: none)."""

    ENUMS: ClassVar[dict[str, type]] = {}
    EXTRA: ClassVar[tuple[str, ...]] = ()

    root: bytes
    work_units: int
    first_layer: int
    num_layers: int
    committed_at: int
    lost: bool
    """The server declared its records of the epoch lost before the seed was drawn: forfeited, not slashed."""


@dataclass(frozen=True, kw_only=True)
class Score:
    """ITrustScoring.Score: the result of finalizing one server for one epoch (``outcome`` NONE: not yet)."""

    ENUMS: ClassVar[dict[str, type]] = {"outcome": Outcome}
    EXTRA: ClassVar[tuple[str, ...]] = ()

    acc: int
    score: int
    num_layers: int
    max_layers: int
    verifiers: int
    outcome: Outcome


@dataclass(frozen=True, kw_only=True)
class VerifierStake:
    """IVerifierStakes.Stake: a verifier's bonded and unbonding stake, in wei."""

    ENUMS: ClassVar[dict[str, type]] = {}
    EXTRA: ClassVar[tuple[str, ...]] = ()

    bonded: int
    unbonding: int
    total_slashed: int
    unlock_time: int
    times_slashed: int


@dataclass(frozen=True, kw_only=True)
class ClientAccount:
    """IPayments.Account: what a client deposited to pay servers with, in wei."""

    ENUMS: ClassVar[dict[str, type]] = {}
    EXTRA: ClassVar[tuple[str, ...]] = ()

    available: int
    pending: int
    unlock_time: int


@dataclass(frozen=True, kw_only=True)
class Challenge:
    """IServingChallenges.Challenge: a challenge of one server-signed answer, and where it stands."""

    ENUMS: ClassVar[dict[str, type]] = {"state": ChallengeState}
    EXTRA: ClassVar[tuple[str, ...]] = ()

    server: str
    challenger: str
    deadline: int
    """The last second of the server's response window."""
    state: ChallengeState
    epoch: int
    index: int
    leaf: bytes
    bond: int


@dataclass(frozen=True, kw_only=True)
class EpochPool:
    """IRewardPool.EpochPool: the reward pool of one epoch."""

    ENUMS: ClassVar[dict[str, type]] = {}
    EXTRA: ClassVar[tuple[str, ...]] = ()

    funded: int
    slashed: int
    rolled_in: int
    claimed: int
    total_weight: int
    verifiers: int
    """Verifiers paid from this pool (they revealed their scores and were not penalized for deviating)."""
    rolled_out: bool

    @property
    def size(self) -> int:
        """What the epoch's servers and verifiers share: funding, slashed stake and what was rolled in."""
        return self.funded + self.slashed + self.rolled_in


@dataclass(frozen=True, kw_only=True)
class Windows:
    """IEpochSchedule.Windows: when each window of an epoch ends (each starts where the previous one ends)."""

    ENUMS: ClassVar[dict[str, type]] = {}
    EXTRA: ClassVar[tuple[str, ...]] = ()

    work_start: int
    work_end: int
    commit_work_end: int
    commit_scores_end: int
    reveal_end: int
    finalize_end: int

    def start(self, phase: Phase) -> int:
        """Timestamp at which the epoch enters ``phase`` (Work .. Settled)."""
        starts = {
            Phase.WORK: self.work_start,
            Phase.COMMIT_WORK: self.work_end,
            Phase.COMMIT_SCORES: self.commit_work_end,
            Phase.REVEAL_SCORES: self.commit_scores_end,
            Phase.FINALIZE: self.reveal_end,
            Phase.SETTLED: self.finalize_end,
        }
        return starts[phase]

    def end(self, phase: Phase) -> int:
        """Timestamp at which the epoch leaves ``phase`` (FUTURE ends when its work starts; SETTLED never ends, shown
        as its start)."""
        if phase == Phase.FUTURE:
            return self.work_start
        if phase == Phase.SETTLED:
            return self.finalize_end
        return self.start(Phase(phase + 1))


T = TypeVar("T")


class StructDecoder(Generic[T]):
    """Decodes output ``output`` (a struct, or an array of structs) of view ``function`` in ``abi`` into ``cls``,
    pairing values with the ABI's component names."""

    def __init__(self, cls: type[T], abi: list, function: str, *, output: int = 0):
        item = next((i for i in abi if i.get("type") == "function" and i.get("name") == function), None)
        if item is None:
            raise StructMismatch(f"the deployment's ABI has no view {function}")
        try:
            components = item["outputs"][output]["components"]
        except (KeyError, IndexError):
            raise StructMismatch(f"output {output} of {function} in the deployment's ABI is not a struct") from None
        self.cls, self.names = cls, [snake(c["name"]) for c in components]
        expected = {f.name for f in fields(cls)} - set(cls.EXTRA)
        if set(self.names) != expected or len(self.names) != len(expected):
            raise StructMismatch(
                f"{function} returns a struct with fields {sorted(self.names)} in the deployment's ABI, but "
                f"{cls.__name__} has {sorted(expected)}: update efedllm/chain/views.py (or redeploy)"
            )

    def __call__(self, value: Any, **extra: Any) -> T:
        if len(value) != len(self.names):
            raise StructMismatch(f"{self.cls.__name__}: {len(value)} values for {len(self.names)} fields")
        named = dict(zip(self.names, value))
        for name, enum in self.cls.ENUMS.items():
            named[name] = enum(named[name])
        return self.cls(**named, **extra)
