"""What the governor can change, written down once, and the chain reads behind ``efedllm admin`` and ``fund``.

``PARAMETERS`` maps the names people type (``min-stake``, ``theta``) to the bounded setter of the contract that
holds each parameter, with the unit it is typed in (ETH, a fraction, seconds, a count) rather than raw wei or
18-decimal fixed point. The bounds stay the contracts' business: a value outside them is refused by simulating
the setter, which names ``ParameterOutOfBounds`` and its bounds before anything is sent.

The other helpers read the chain at its latest block, never at a remembered one: funding a stale epoch because
the phase was read from an old block is how 4.5 ETH ended up in pools nobody could earn.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from web3 import Web3

from efedllm.chain.explain import ROLES, ether
from efedllm.chain.params import ETHER, ONE
from efedllm.chain.protocol import Phase, Protocol
from efedllm.errors import EfedError

ETH, FRACTION, SECONDS, COUNT = "ETH", "fraction", "seconds", "count"


@dataclass(frozen=True, kw_only=True)
class Parameter:
    """One governor-set parameter: ``name`` as typed, ``onchain`` as the contract's getter (and ``efedllm
    status``) names it, the contract and setter that change it, and the unit its value is typed in."""

    name: str
    onchain: str
    contract: str
    setter: str
    unit: str
    help: str

    def parse(self, text: str) -> int:
        """The value typed for this parameter, as the setter takes it; EfedError when it is not one."""
        return parse_value(text, self.unit, what=self.name)

    def show(self, value: int) -> str:
        return show_value(value, self.unit)


def _parameter(name: str, contract: str, unit: str, help: str) -> Parameter:
    """The parameter typed as ``name`` (``min-stake``): its getter is the same name in camelCase (``minStake``),
    its setter ``set`` and the getter (``setMinStake``), as every bounded setter of the contracts is named."""
    first, *rest = name.split("-")
    onchain = first + "".join(word.capitalize() for word in rest)
    setter = "set" + onchain[0].upper() + onchain[1:]
    return Parameter(name=name, onchain=onchain, contract=contract, setter=setter, unit=unit, help=help)


PARAMETERS = (
    _parameter("min-stake", "ServerRegistry", ETH, "least bonded stake of an active server"),
    _parameter(
        "unbonding-period",
        "ServerRegistry",
        SECONDS,
        "how long unstaked ether stays slashable; more than an epoch plus its windows",
    ),
    _parameter(
        "slash-fraction",
        "ServerRegistry",
        FRACTION,
        "share of bonded plus unbonding stake slashed on deactivation, 0 to 1",
    ),
    _parameter(
        "theta", "TrustScoring", FRACTION, "θ: least trust score S_i that keeps a server active and paid, 0 to 1"
    ),
    _parameter("min-verifiers", "TrustScoring", COUNT, "revealed accuracies needed to score a server in an epoch"),
    _parameter(
        "immunity-epochs", "TrustScoring", COUNT, "epochs after registering in which a low score is not slashed"
    ),
    _parameter("min-verifier-stake", "TrustScoring", ETH, "least bonded stake of a verifier that commits scores"),
    _parameter(
        "verifier-slash-fraction",
        "TrustScoring",
        FRACTION,
        "share of a verifier's stake slashed per penalty (no reveal, or a reveal more than κ off), 0 to 1",
    ),
    _parameter("kappa", "TrustScoring", FRACTION, "κ: largest distance from the median not penalized, 0 to 1"),
)
"""Every bounded setter of the contracts except ``ServerRegistry.setWeight`` (per server: ``admin set-weight``)."""

WEIGHT_SETTER = ("ServerRegistry", "setWeight")


def parameter(name: str) -> Parameter:
    """The parameter called ``name`` (``min-stake``, ``min_stake`` or ``minStake``); EfedError naming the known
    ones otherwise."""
    wanted = name.strip().replace("_", "-")
    for p in PARAMETERS:
        if wanted in (p.name, p.onchain) or wanted.lower() == p.name:
            return p
    raise EfedError(f"unknown parameter {name!r}; known: {', '.join(p.name for p in PARAMETERS)}")


def parse_value(text: str, unit: str, *, what: str) -> int:
    """``text`` in ``unit`` as the contracts store it: ETH as wei, a fraction as 18-decimal fixed point,
    seconds and counts as integers; negative, fractional wei and non-numbers are refused."""
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        raise EfedError(f"{what}: {text!r} is not a number ({unit})") from None
    if not number.is_finite() or number < 0:
        raise EfedError(f"{what}: {text!r} must be a non-negative number ({unit})")
    scaled = number * (ETHER if unit == ETH else ONE if unit == FRACTION else 1)
    if scaled != scaled.to_integral_value():
        detail = "at most 18 decimals" if unit in (ETH, FRACTION) else "a whole number"
        raise EfedError(f"{what}: {text!r} must be {detail} ({unit})")
    return int(scaled)


def epoch_number(text: str, *, what: str) -> int:
    """An epoch typed by a person; EfedError (one line) when it is not a non-negative integer."""
    try:
        value = int(text)
    except ValueError:
        raise EfedError(f"{what}: {text!r} is not an epoch number") from None
    if value < 0:
        raise EfedError(f"{what}: an epoch number is not negative, got {text!r}")
    return value


def show_value(value: int, unit: str) -> str:
    if unit == ETH:
        return ether(value)
    if unit == FRACTION:
        return f"{Decimal(value) / ONE:f}"
    return f"{value} s" if unit == SECONDS else str(value)


def checksummed(text: str, *, what: str) -> str:
    """An address typed by a person: in one case it is checksummed here; in mixed case its checksum must hold
    (a typo in a checksummed address is refused, not sent to)."""
    mixed = text[2:] not in (text[2:].lower(), text[2:].upper())
    if not Web3.is_address(text) or (mixed and not Web3.is_checksum_address(text)):
        raise EfedError(
            f"{what} {text!r} is not an address (0x and 40 hex digits; a mixed-case address must "
            f"carry a valid checksum)"
        )
    address = Web3.to_checksum_address(text)
    if int(address, 16) == 0:
        raise EfedError(f"{what} is the zero address")
    return address


def pausable(protocol: Protocol) -> list[str]:
    """The deployment's contracts that can be paused (all but the schedule), by name."""
    return [
        name
        for name, record in protocol.deployment.contracts.items()
        if any(item.get("type") == "function" and item.get("name") == "pause" for item in record.abi)
    ]


@dataclass(frozen=True, kw_only=True)
class Now:
    """The chain's latest block and the epoch the contracts see in it."""

    block: int
    timestamp: int
    epoch: int
    phase: Phase


def now(protocol: Protocol) -> Now:
    """Read the latest block, and the current epoch and its phase at exactly that block (so the three agree)."""
    block = protocol.w3.eth.get_block("latest")
    number = block["number"]
    epoch = protocol.schedule.functions.currentEpoch().call(block_identifier=number)
    phase = Phase(protocol.schedule.functions.phase(epoch).call(block_identifier=number))
    return Now(block=number, timestamp=block["timestamp"], epoch=epoch, phase=phase)


def why_not_rollable(protocol: Protocol, epoch: int) -> str | None:
    """Why ``RewardPool.rollOver(epoch)`` would revert, in words; None when it would not."""
    phase = protocol.phase(epoch)
    if phase != Phase.SETTLED:
        return f"it is in its {phase.name.lower().replace('_', '-')} phase, not settled yet"
    p = protocol.pool_of(epoch)
    if p.rolled_out:
        return "its pool was already rolled over"
    if p.size == 0:
        return "its pool is empty"
    if p.total_weight != 0:
        return "servers earned its pool: they claim it with `efedllm server claim`"
    return None


def rollable_epochs(protocol: Protocol) -> list[int]:
    """Settled epochs whose pool holds ether that no server earned and that was not rolled over yet: the epochs
    any pool money went to (funded, slashed into or rolled into, read from the pool's events) that
    ``rollOver`` would accept now."""
    events = protocol.pool.events
    start = protocol.deployment.block
    candidates = {e["args"]["epoch"] for e in events.EpochFunded().get_logs(from_block=start)}
    candidates |= {e["args"]["epoch"] for e in events.SlashDeposited().get_logs(from_block=start)}
    candidates |= {e["args"]["toEpoch"] for e in events.PoolRolledOver().get_logs(from_block=start)}
    return sorted(e for e in candidates if why_not_rollable(protocol, e) is None)


@dataclass(frozen=True, kw_only=True)
class RoleHolder:
    contract: str
    role: str
    holder: str
    who: str


def role_holders(protocol: Protocol) -> list[RoleHolder]:
    """Who holds which role on every contract now: RoleGranted and RoleRevoked events since the deployment
    replayed in order, each survivor confirmed with ``hasRole``."""
    labels = {address: name for name, address in ((n, r.address) for n, r in protocol.deployment.contracts.items())}
    governor = protocol.deployment.governor
    holders: list[RoleHolder] = []
    for name in protocol.deployment.contracts:
        contract = protocol.contract(name)
        if not any(item.get("name") == "hasRole" for item in protocol.deployment.contracts[name].abi):
            continue
        logs = [
            *contract.events.RoleGranted().get_logs(from_block=protocol.deployment.block),
            *contract.events.RoleRevoked().get_logs(from_block=protocol.deployment.block),
        ]
        logs.sort(key=lambda e: (e["blockNumber"], e["logIndex"]))
        held: dict[tuple[bytes, str], None] = {}
        for event in logs:
            key = (bytes(event["args"]["role"]), event["args"]["account"])
            if event["event"] == "RoleGranted":
                held[key] = None
            else:
                held.pop(key, None)
        for role, account in held:
            if not contract.functions.hasRole(role, account).call():
                continue
            who = "governor (deployer)" if account == governor else labels.get(account, "")
            holders.append(RoleHolder(contract=name, role=ROLES.get(role, "0x" + role.hex()), holder=account, who=who))
    return holders
