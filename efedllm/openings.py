"""Openings: how a verifier asks a server to reveal one committed task, and what comes back.

A request is a small JSON object signed (EIP-191 personal message) by a verifier's key. The server answers only
when the signer holds the verifier role on chain, the request names this server and chain, it has not expired,
and its nonce was never used before (openings reveal client activations, so neither outsiders nor replayed
requests may read them). The answer is a safetensors message: the session's inputs up to and including the task's
step (``inputs``, the prefix a recomputation needs), the task's ``output``, and in the header the task record, its
Merkle proof, the step lengths of the prefix and the client's signed receipt that paid for the step (null when
none did). Nothing here unpickles anything.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass

import torch
from eth_account import Account
from eth_account.messages import encode_defunct
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from web3 import Web3

from efedllm.receipts import SignedReceipt

MAX_TTL = 300
"""Seconds a signed request may be valid for; a server refuses longer-lived ones."""
CONTENT_TYPE = "application/vnd.efedllm.opening+safetensors"


class OpeningError(ValueError):
    """A request or an answer that is malformed or not acceptable; the text says why."""


@dataclass(frozen=True, kw_only=True)
class OpeningRequest:
    chain_id: int
    server: str
    epoch: int
    index: int
    nonce: str
    expires: int
    signature: str = ""

    def message(self) -> str:
        return (
            f"efedllm opening\nchain:{self.chain_id}\nserver:{Web3.to_checksum_address(self.server)}\n"
            f"epoch:{self.epoch}\nindex:{self.index}\nnonce:{self.nonce}\nexpires:{self.expires}"
        )

    def signer(self) -> str:
        """The address that signed this request (raises OpeningError for a malformed signature)."""
        try:
            return Account.recover_message(encode_defunct(text=self.message()), signature=self.signature)
        except Exception:  # noqa: BLE001 - any malformed signature is the requester's error
            raise OpeningError("the signature does not recover to an address") from None

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, body: object) -> OpeningRequest:
        if not isinstance(body, dict):
            raise OpeningError("body must be a JSON object")
        want = {
            "chain_id": int,
            "server": str,
            "epoch": int,
            "index": int,
            "nonce": str,
            "expires": int,
            "signature": str,
        }
        for name, kind in want.items():
            value = body.get(name)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise OpeningError(f"field {name!r} must be a {kind.__name__}")
        if not (0 <= body["epoch"] < 2**63 and 0 <= body["index"] < 2**63):  # what SQLite's INTEGER holds
            raise OpeningError("epoch and index must be in [0, 2**63)")
        if not 8 <= len(body["nonce"]) <= 66:
            raise OpeningError("nonce must be 8 to 66 characters")
        if not Web3.is_address(body["server"]):
            raise OpeningError("server must be an address")
        return cls(**{name: body[name] for name in want})


def sign_request(*, sign, chain_id: int, server: str, epoch: int, index: int, ttl: int = 120) -> OpeningRequest:
    """A fresh request for leaf ``index`` of ``server``'s ``epoch``; ``sign`` turns a text into an EIP-191
    signature (efedllm.chain.connection.message_signer)."""
    unsigned = OpeningRequest(
        chain_id=chain_id,
        server=Web3.to_checksum_address(server),
        epoch=epoch,
        index=index,
        nonce="0x" + secrets.token_hex(16),
        expires=int(time.time()) + ttl,
    )
    return OpeningRequest(**{**asdict(unsigned), "signature": "0x" + sign(unsigned.message()).hex().removeprefix("0x")})


@dataclass(frozen=True, kw_only=True)
class Opening:
    """One opened task: the record's fields, its proof, the prefix of inputs and the output."""

    record: dict
    """TaskRecord fields: epoch, index, session, step, start, end, past, and the hashes (hex): prefix_hash,
    input_hash, output_hash, receipt."""
    proof: list[bytes]
    steps: list[int]
    """Token counts of the session's steps 0..step, in order (their sum is past + this step's tokens)."""
    inputs: torch.Tensor
    output: torch.Tensor
    receipt: SignedReceipt | None
    """The client's receipt whose digest the record's ``receipt`` is; None when the record claims no payment."""


def encode_opening(opening: Opening) -> bytes:
    meta = {
        "record": json.dumps(opening.record),
        "proof": json.dumps(["0x" + p.hex() for p in opening.proof]),
        "steps": json.dumps(opening.steps),
        "receipt": json.dumps(None if opening.receipt is None else opening.receipt.to_json()),
    }
    return st_save({"inputs": opening.inputs.contiguous(), "output": opening.output.contiguous()}, metadata=meta)


def decode_opening(data: bytes) -> Opening:
    """Parse a server's answer, checking its structure (its truth is the verifier's job)."""
    try:
        tensors = st_load(data)
        header_len = int.from_bytes(data[:8], "little")
        meta = json.loads(data[8 : 8 + header_len]).get("__metadata__") or {}
        record = json.loads(meta["record"])
        proof = [bytes.fromhex(p.removeprefix("0x")) for p in json.loads(meta["proof"])]
        steps = [int(s) for s in json.loads(meta["steps"])]
        raw = json.loads(meta["receipt"])
        receipt = None if raw is None else SignedReceipt.from_json(raw)
    except (SafetensorError, ValueError, KeyError, TypeError, RuntimeError, OverflowError) as exc:
        raise OpeningError(f"malformed opening ({exc.__class__.__name__}: {exc})") from None
    if set(tensors) != {"inputs", "output"} or not isinstance(record, dict):
        raise OpeningError("an opening carries exactly the tensors 'inputs' and 'output' and a record")
    return Opening(
        record=record, proof=proof, steps=steps, inputs=tensors["inputs"], output=tensors["output"], receipt=receipt
    )
