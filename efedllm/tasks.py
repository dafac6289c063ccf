"""A task: one inference step a server served, as it commits to it and as a verifier checks it.

The leaf format lives here, shared by the server that builds its Merkle tree (server/records.py) and the verifier
that checks an opened leaf against the committed root (verifier/checks.py): one source of truth for both.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from eth_abi import encode as abi_encode
from eth_utils import keccak

ZERO_PREFIX = b"\0" * 32


def next_prefix(prefix_hash: bytes, input_hash: bytes) -> bytes:
    """The running hash over a session's inputs after one more step."""
    return keccak(prefix_hash + input_hash)


def tensor_hash(hidden: torch.Tensor) -> bytes:
    """keccak256 over the shape and the little-endian float bytes: what a leaf commits to."""
    t = hidden.detach().to("cpu").contiguous()
    shape = b"".join(int(d).to_bytes(4, "big") for d in t.shape)
    return keccak(str(t.dtype).encode() + shape + t.view(torch.uint8).numpy().tobytes())


@dataclass(frozen=True)
class TaskRecord:
    epoch: int
    index: int
    session: str
    step: int
    start: int
    end: int
    past: int
    prefix_hash: bytes
    input_hash: bytes
    output_hash: bytes
    receipt: bytes
    """The EIP-712 digest of the client's receipt that paid for this step (receipts.ReceiptDomain.digest), or
    receipts.UNPAID: committed with the work, so that a verifier knows which work a client asked for (and paid)."""

    def leaf(self, server: str) -> bytes:
        """The Merkle leaf: ABI-encoded so that a contract could check it too."""
        return keccak(
            abi_encode(
                [
                    "uint256",
                    "address",
                    "uint256",
                    "uint256",
                    "bytes32",
                    "uint256",
                    "uint256",
                    "bytes32",
                    "bytes32",
                    "bytes32",
                    "bytes32",
                ],
                [
                    self.epoch,
                    server,
                    self.start,
                    self.end,
                    keccak(text=self.session),
                    self.step,
                    self.past,
                    self.prefix_hash,
                    self.input_hash,
                    self.output_hash,
                    self.receipt,
                ],
            )
        )

    @classmethod
    def from_fields(cls, fields: dict) -> TaskRecord:
        """From an opening's JSON record (hashes as 0x-hex); raises KeyError, TypeError or ValueError when malformed."""
        raw = {
            k: bytes.fromhex(fields[k].removeprefix("0x"))
            for k in ("prefix_hash", "input_hash", "output_hash", "receipt")
        }
        ints = {k: int(fields[k]) for k in ("epoch", "index", "step", "start", "end", "past")}
        if any(len(h) != 32 for h in raw.values()):
            raise ValueError("a hash of the record is not 32 bytes")
        return cls(session=str(fields["session"]), **ints, **raw)
