"""Sending transactions and turning reverts into readable errors.

Every revert of our contracts is a custom error; this module maps its 4-byte selector back to the error's
name and arguments using the ABIs in hand (the deployment file's, or the compiler's), and adds what the error
means (``MEANINGS``), so a user sees
``register reverted: InsufficientStake(stake=1, minStake=1000000000000000000): stake 0.000000 ETH is below the
minimum 1.000000 ETH`` rather than a hex blob.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import function_signature_to_4byte_selector, keccak
from web3 import Web3
from web3.exceptions import ContractLogicError, TimeExhausted

from efedllm.chain.connection import Signer
from efedllm.errors import EfedError


class ErrorDecoder:
    """Selector -> (name, argument names, argument types) for every custom error in the given ABIs."""

    def __init__(self, abis: Iterable[list]):
        self._errors: dict[bytes, tuple[str, list[str], list[str]]] = {}
        for abi in abis:
            for item in abi:
                if item.get("type") != "error":
                    continue
                types = [_abi_type(arg) for arg in item["inputs"]]
                selector = function_signature_to_4byte_selector(f"{item['name']}({','.join(types)})")
                self._errors[selector] = (item["name"], [arg["name"] for arg in item["inputs"]], types)

    def decode(self, data: Any) -> str | None:
        """``Name(arg=value, ...): meaning`` for revert ``data``, or None when it is not a known custom error."""
        found = self.error_of(data)
        if found is None:
            return None
        name, args = found
        if args is None:
            return name
        shown = f"{name}({', '.join(f'{n}={_show(v)}' for n, v in args.items())})"
        meaning = describe(name, args)
        return f"{shown}: {meaning}" if meaning else shown

    def error_of(self, data: Any) -> tuple[str, dict[str, Any] | None] | None:
        """(name, {argument: value}) of revert ``data`` (arguments None when undecodable), or None if unknown."""
        raw = _to_bytes(data)
        if raw is None or len(raw) < 4 or raw[:4] not in self._errors:
            return None
        name, names, types = self._errors[raw[:4]]
        try:
            values = abi_decode(types, raw[4:])
        except Exception:  # noqa: BLE001 - undecodable arguments still leave the name
            return name, None
        values = [Web3.to_checksum_address(v) if t == "address" else v for t, v in zip(types, values)]
        return name, dict(zip(names, values))

    def selector(self, name: str) -> bytes:
        """The 4-byte selector of the custom error ``name``; ValueError when no ABI, or several signatures, have it."""
        found = [selector for selector, (known, _, _) in self._errors.items() if known == name]
        if len(found) != 1:
            raise ValueError(f"no custom error named {name!r} in the ABIs" if not found else
                             f"the custom error {name!r} has several signatures")
        return found[0]


class RevertError(EfedError):
    """A transaction or call reverted; ``error`` is the custom error's name (None when unknown)."""

    def __init__(self, message: str, error: str | None):
        super().__init__(message)
        self.error = error


class Transactor:
    """Sends transactions for one signer, waiting for each receipt, and raises RevertError on a revert."""

    def __init__(self, w3: Web3, signer: Signer, decoder: ErrorDecoder, *, timeout: float = 60.0):
        self.w3, self.signer, self.decoder, self.timeout = w3, signer, decoder, timeout

    def send(self, call, *, value: int = 0, label: str | None = None, gas: int | None = None):
        """Simulate ``call`` (a bound contract function or constructor) to surface a revert with its name,
        then send it and return the receipt."""
        label = label or getattr(call, "fn_name", None) or "constructor"
        params: dict[str, Any] = {"from": self.signer.address, "value": value}
        params["gas"] = gas or int(self.simulate(call, value=value, label=label) * 1.2) + 21_000
        if self.signer.account is None:
            tx_hash = call.transact(params)
        else:
            params["nonce"] = self.w3.eth.get_transaction_count(self.signer.address, "pending")
            params["chainId"] = self.w3.eth.chain_id
            tx = call.build_transaction(params)
            signed = self.signer.account.sign_transaction(tx)
            tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        try:
            receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.timeout)
        except TimeExhausted:
            raise EfedError(f"{label}: transaction {tx_hash.hex()} not mined within {self.timeout:.0f}s") from None
        if receipt["status"] != 1:
            raise RevertError(f"{label} reverted in block {receipt['blockNumber']}", None)
        return receipt

    def simulate(self, call, *, value: int = 0, label: str | None = None) -> int:
        """Gas ``call`` would use, sending nothing; a revert raises RevertError with the error's name and meaning
        (commands use it to fail before slow work, e.g. before loading a model)."""
        label = label or getattr(call, "fn_name", None) or "constructor"
        try:
            return call.estimate_gas({"from": self.signer.address, "value": value})
        except ContractLogicError as exc:
            raise self._revert(label, exc) from None

    def _revert(self, label: str, exc: ContractLogicError) -> RevertError:
        found = self.decoder.error_of(exc.data)
        if found:
            return RevertError(f"{label} reverted: {self.decoder.decode(exc.data)}", found[0])
        return RevertError(f"{label} reverted: {exc.message or exc}", None)


def describe(name: str, args: dict[str, Any]) -> str | None:
    """What a custom error of our contracts (or OpenZeppelin's) means, in words; None for unknown errors."""
    meaning = MEANINGS.get(name)
    if meaning is None or isinstance(meaning, str):
        return meaning
    try:
        return meaning(args)
    except (KeyError, ValueError, OverflowError):  # an ABI whose argument names differ: the name still shows
        return None


def utc(timestamp: int) -> str:
    """A chain timestamp as people read it."""
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def ether(wei: int) -> str:
    return f"{wei / 10**18:,.6f} ETH"


def _phase(value: int) -> str:
    from efedllm.chain.protocol import Phase  # protocol imports this module

    return Phase(value).name.lower().replace("_", "-")


ROLES = {keccak(text=name): name for name in
         ("GOVERNOR_ROLE", "VERIFIER_ROLE", "SLASHER_ROLE", "SCORER_ROLE", "DEPOSITOR_ROLE")}
ROLES[b"\0" * 32] = "DEFAULT_ADMIN_ROLE"

MEANINGS: dict[str, str | Callable[[dict[str, Any]], str]] = {
    # ServerRegistry
    "AlreadyRegistered": "this address is already registered as a server",
    "NotRegistered": lambda a: f"{a['server']} is not registered as a server (register with `efedllm server run`)",
    "ServerIsDeactivated": "the server was slashed and deactivated: it can only unstake and withdraw what is left",
    "InsufficientStake": lambda a: f"stake {ether(a['stake'])} is below the minimum {ether(a['minStake'])}",
    "InvalidSpan": lambda a: (f"layers {a['firstLayer']}:{a['firstLayer'] + a['numLayers']} do not fit "
                              f"the model's {a['modelLayers']} layers"),
    "InvalidEndpoint": "the endpoint URL is empty or too long",
    "ZeroAmount": "the amount must be more than zero",
    "AmountExceedsStake": lambda a: f"asked for {ether(a['amount'])} but only {ether(a['stake'])} is bonded",
    "NothingToWithdraw": "nothing is unbonding: request it first with `efedllm server unstake`",
    "StillUnbonding": lambda a: f"still unbonding until {utc(a['unlockTime'])}",
    "TransferFailed": "the contract could not send the ether to the recipient",
    # RewardPool
    "NothingToClaim": "nothing to claim for these epochs",
    "AlreadyClaimed": lambda a: f"the rewards of epoch {a['epoch']} were already claimed",
    "EpochClosed": lambda a: f"epoch {a['epoch']} is over (the current epoch is {a['currentEpoch']})",
    "NotRollable": lambda a: f"the pool of epoch {a['epoch']} is not settled, empty, earned or already rolled over",
    "WeightAlreadyRecorded": lambda a: f"the reward weight of {a['server']} in epoch {a['epoch']} is already recorded",
    # EpochSchedule and every contract's phase checks
    "WrongPhase": lambda a: (f"epoch {a['epoch']} is in its {_phase(a['actual'])} phase; "
                             f"this needs {_phase(a['expected'])}"),
    "InvalidSchedule": "the epoch schedule's lengths must be positive and its genesis not in the past",
    # WorkLedger
    "ServerNotEligible": lambda a: f"{a['server']} is not an active or inactive server, so it may not commit work",
    "WorkAlreadyCommitted": lambda a: f"work for epoch {a['epoch']} is already committed",
    "EmptyCommitment": "a work commitment needs a Merkle root and at least one work unit",
    "TooManyWorkUnits": lambda a: f"{a['workUnits']} work units exceed the cap of {a['max']}",
    "SeedAlreadyDrawn": lambda a: f"the sampling seed of epoch {a['epoch']} is already drawn",
    # TrustScoring
    "ScoresAlreadyCommitted": lambda a: f"this verifier already committed scores for epoch {a['epoch']}",
    "TooManyVerifiers": lambda a: f"epoch {a['epoch']} already has the most verifiers allowed",
    "NoCommitment": lambda a: f"this verifier committed no scores for epoch {a['epoch']}",
    "ScoresAlreadyRevealed": lambda a: f"this verifier already revealed its scores for epoch {a['epoch']}",
    "CommitmentMismatch": "the revealed scores and salt do not match the commitment",
    "LengthMismatch": lambda a: f"{a['servers']} servers but {a['accuracies']} accuracies",
    "EmptyReveal": "a reveal needs at least one server",
    "AccuracyOutOfRange": lambda a: f"accuracy {a['accuracy'] / 10**18:g} of {a['server']} is above 1.0",
    "ServersNotSorted": lambda a: f"servers must be in ascending address order (at index {a['index']})",
    "UnknownServer": lambda a: f"{a['server']} is not a registered server",
    # Governed and OpenZeppelin
    "ParameterOutOfBounds": lambda a: (f"{a['name'].rstrip(bytes(1)).decode()} = {a['value']} is outside "
                                       f"[{a['min']}, {a['max']}]"),
    "AccessControlUnauthorizedAccount": lambda a: (f"{a['account']} lacks "
                                                   f"{ROLES.get(a['neededRole'], '0x' + a['neededRole'].hex())}"),
    "EnforcedPause": "governance has paused the contract",
    "ExpectedPause": "the contract is not paused",
    "ReentrancyGuardReentrantCall": "a reentrant call was refused",
}


def _abi_type(arg: dict) -> str:
    if arg["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in arg["components"])
        return f"({inner}){arg['type'][5:]}"
    return arg["type"]


def _to_bytes(data: Any) -> bytes | None:
    if isinstance(data, bytes | bytearray):
        return bytes(data)
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return None
    return None


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)
