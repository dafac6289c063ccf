"""Sending transactions and turning reverts into readable errors.

Every revert of our contracts is a custom error; this module maps its 4-byte selector back to the error's
name and arguments using the ABIs in hand (the deployment file's, or the compiler's), and adds what the error
means (``explain.MEANINGS``), so a user sees
``register reverted: InsufficientStake(stake=1, minStake=1000000000000000000): stake 0.000000 ETH is below the
minimum 1.000000 ETH`` rather than a hex blob.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import function_signature_to_4byte_selector
from web3 import Web3
from web3.exceptions import ContractLogicError, TimeExhausted, Web3Exception, Web3RPCError

from efedllm.chain.connection import Signer
from efedllm.chain.explain import describe, show
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
        shown = f"{name}({', '.join(f'{n}={show(v)}' for n, v in args.items())})"
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
            raise ValueError(
                f"no custom error named {name!r} in the ABIs"
                if not found
                else f"the custom error {name!r} has several signatures"
            )
        return found[0]


class RevertError(EfedError):
    """A transaction or call reverted; ``error`` is the custom error's name (None when unknown)."""

    def __init__(self, message: str, error: str | None):
        super().__init__(message)
        self.error = error


NONCE_RETRIES = 3
"""Times a transaction refused for its nonce is sent again (a node-assigned nonce can clash on Ganache when the
account's transactions come close together; a signed one when another process used the account meanwhile)."""


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
        for attempt in range(NONCE_RETRIES + 1):
            try:
                tx_hash = self._submit(call, dict(params))
                break
            except Web3RPCError as exc:  # a nonce taken meanwhile (Ganache assigns one twice under load): try again
                if "nonce" not in str(exc).lower() or attempt == NONCE_RETRIES:
                    raise
                time.sleep(0.5 * (attempt + 1))
        try:
            receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.timeout)
        except TimeExhausted:
            raise EfedError(f"{label}: transaction {tx_hash.hex()} not mined within {self.timeout:.0f}s") from None
        if receipt["status"] != 1:
            raise self._mined_revert(call, value=value, label=label, block=receipt["blockNumber"])
        return receipt

    def _submit(self, call, params: dict):
        if self.signer.account is None:
            return call.transact(params)
        params["nonce"] = self.w3.eth.get_transaction_count(self.signer.address, "pending")
        params["chainId"] = self.w3.eth.chain_id
        signed = self.signer.account.sign_transaction(call.build_transaction(params))
        return self.w3.eth.send_raw_transaction(signed.raw_transaction)

    def simulate(self, call, *, value: int = 0, label: str | None = None) -> int:
        """Gas ``call`` would use, sending nothing; a revert raises RevertError with the error's name and meaning
        (commands use it to fail before slow work, e.g. before loading a model)."""
        label = label or getattr(call, "fn_name", None) or "constructor"
        try:
            return call.estimate_gas({"from": self.signer.address, "value": value})
        except ContractLogicError as exc:
            raise self._revert(label, exc) from None

    def _mined_revert(self, call, *, value: int, label: str, block: int) -> RevertError:
        """A transaction that passed its simulation but reverted once mined (the chain moved on in between: a
        window closed, another transaction came first). The receipt carries no reason, so the call is replayed
        against the block it was mined in to name the error."""
        try:
            call.call({"from": self.signer.address, "value": value}, block_identifier=block)
        except ContractLogicError as exc:
            return self._revert(f"{label} (mined in block {block})", exc)
        except (AttributeError, ValueError, Web3Exception):  # a constructor, or a node that cannot replay
            pass
        return RevertError(f"{label} reverted in block {block} (replaying it there passes: the reason is lost)", None)

    def _revert(self, label: str, exc: ContractLogicError) -> RevertError:
        found = self.decoder.error_of(exc.data)
        if found:
            return RevertError(f"{label} reverted: {self.decoder.decode(exc.data)}", found[0])
        return RevertError(f"{label} reverted: {exc.message or exc}", None)


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
