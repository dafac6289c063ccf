"""EIP-712 typed data of what crosses between a server and a client and can be judged on chain (issue 14).

* An **answer** is one served step as the server signs it for the client: the fields of its task leaf
  (``tasks.TaskRecord``) and its index in the epoch's tree, including the digest of the client's receipt that
  paid for the step (zero when none did). ``ServingChallenges`` recovers the signer and checks the leaf against
  the server's committed root, so the types here must match ``contracts/libraries/TaskTree.sol``.
* A **receipt** is what a client owes a server for an epoch, cumulatively; ``Payments.redeem`` pays the latest.

Both are bound to the chain and to the contract that judges them (the EIP-712 domain), so a signature for one
deployment or chain is worthless on another.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, ClassVar

from coincurve import PrivateKey, PublicKey
from eth_account import Account
from eth_utils import keccak, to_checksum_address

if TYPE_CHECKING:  # tasks imports torch; a client that only checks receipts does not need it
    from efedllm.tasks import TaskRecord

ANSWER_HEADER = "X-Efedllm-Answer"
"""The forward answer's signed task (JSON), beside its body."""
SIGNATURE_HEADER = "X-Efedllm-Signature"
"""The server's EIP-712 signature (0x-hex) over that task."""

RECEIPT_HEADER = "X-Efedllm-Receipt"
"""A forward request's payment: the client's cumulative receipt for this server and epoch (JSON)..."""
RECEIPT_SIGNATURE_HEADER = "X-Efedllm-Receipt-Signature"
"""...and the client's EIP-712 signature over it (0x-hex)."""

UNPAID = b"\0" * 32
"""An answer's (and a task leaf's) ``receipt`` when no client receipt paid for the step: a free server, or an
unpaid request."""

ANSWER_DOMAIN = ("eFedLLM Answer", "1")
RECEIPT_DOMAIN = ("eFedLLM Receipt", "1")

ANSWER_TYPES = {
    "Answer": [
        {"name": "epoch", "type": "uint256"},
        {"name": "index", "type": "uint256"},
        {"name": "session", "type": "bytes32"},
        {"name": "step", "type": "uint256"},
        {"name": "start", "type": "uint256"},
        {"name": "end", "type": "uint256"},
        {"name": "past", "type": "uint256"},
        {"name": "prefixHash", "type": "bytes32"},
        {"name": "inputHash", "type": "bytes32"},
        {"name": "outputHash", "type": "bytes32"},
        {"name": "receipt", "type": "bytes32"},
    ]
}
RECEIPT_TYPES = {
    "Receipt": [
        {"name": "client", "type": "address"},
        {"name": "server", "type": "address"},
        {"name": "epoch", "type": "uint256"},
        {"name": "amount", "type": "uint256"},
    ]
}


@dataclass(frozen=True, kw_only=True)
class Answer:
    """TaskTree.Answer: a served step as signed by its server (hashes as 32 bytes)."""

    epoch: int
    index: int
    session: bytes
    step: int
    start: int
    end: int
    past: int
    prefix_hash: bytes
    input_hash: bytes
    output_hash: bytes
    receipt: bytes
    """The EIP-712 digest of the client's receipt that paid for the step (ReceiptDomain.digest), or UNPAID."""

    @classmethod
    def of(cls, record: TaskRecord) -> Answer:
        return cls(
            epoch=record.epoch,
            index=record.index,
            session=keccak(text=record.session),
            step=record.step,
            start=record.start,
            end=record.end,
            past=record.past,
            prefix_hash=record.prefix_hash,
            input_hash=record.input_hash,
            output_hash=record.output_hash,
            receipt=record.receipt,
        )

    def message(self) -> dict:
        d = asdict(self)
        return {
            "epoch": d["epoch"],
            "index": d["index"],
            "session": d["session"],
            "step": d["step"],
            "start": d["start"],
            "end": d["end"],
            "past": d["past"],
            "prefixHash": d["prefix_hash"],
            "inputHash": d["input_hash"],
            "outputHash": d["output_hash"],
            "receipt": d["receipt"],
        }

    def as_tuple(self) -> tuple:
        """The struct as a contract call takes it."""
        return tuple(self.message().values())

    def to_header(self) -> str:
        return json.dumps({k: "0x" + v.hex() if isinstance(v, bytes) else v for k, v in asdict(self).items()})

    @classmethod
    def from_header(cls, text: str) -> Answer:
        """Parse ``to_header``'s JSON; ValueError when it is malformed."""
        try:
            raw = json.loads(text)
            hashes = {k: bytes.fromhex(raw[k].removeprefix("0x")) for k in _HASHES}
            ints = {k: int(raw[k]) for k in _INTS}
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ValueError(f"malformed signed answer ({exc.__class__.__name__})") from None
        if any(len(h) != 32 for h in hashes.values()) or any(not 0 <= v < 2**256 for v in ints.values()):
            raise ValueError("malformed signed answer (field out of range)")
        return cls(**hashes, **ints)


_HASHES = ("session", "prefix_hash", "input_hash", "output_hash", "receipt")
_INTS = ("epoch", "index", "step", "start", "end", "past")


@dataclass(frozen=True, kw_only=True)
class SignedAnswer:
    """An answer and its server's signature, as a client keeps it (to challenge it, or to show it to verifiers)."""

    server: str
    answer: Answer
    signature: bytes

    def to_json(self) -> dict:
        """As a client hands it to verifiers (efedllm/verifier/inbox.py)."""
        return {
            "server": to_checksum_address(self.server),
            "answer": json.loads(self.answer.to_header()),
            "signature": "0x" + self.signature.hex(),
        }

    @classmethod
    def from_json(cls, raw) -> SignedAnswer:
        """Parse ``to_json``'s dict; ValueError when it is malformed. The signature is not checked here
        (``signed_by``)."""
        try:
            server = to_checksum_address(raw["server"])
            answer = Answer.from_header(json.dumps(raw["answer"]))
            signature = bytes.fromhex(raw["signature"].removeprefix("0x"))
        except (TypeError, KeyError, AttributeError) as exc:
            raise ValueError(f"malformed signed answer ({exc.__class__.__name__})") from None
        if len(signature) != 65:
            raise ValueError("malformed signed answer (a signature has 65 bytes)")
        return cls(server=server, answer=answer, signature=signature)

    def signed_by_server(self, domain: AnswerDomain) -> bool:
        """Whether ``server`` signed ``answer`` for ``domain`` (a signature for another chain or deployment, or by
        anyone else, is not)."""
        try:
            return domain.recover(self.answer, self.signature).lower() == self.server.lower()
        except ValueError:
            return False


@dataclass(frozen=True, kw_only=True)
class TypedDomain:
    """Where one kind of message is judged: the chain and the contract that checks its signatures (the EIP-712
    domain), with the message's name, version and types."""

    NAME_VERSION: ClassVar[tuple[str, str]]
    TYPES: ClassVar[dict]

    chain_id: int
    contract: str

    def data(self, message: Answer | Receipt) -> dict:
        """The EIP-712 typed data of ``message``, as eth_signTypedData_v4 takes it."""
        return _full(self.NAME_VERSION, self.TYPES, message.message(), chain_id=self.chain_id, contract=self.contract)

    def digest(self, message: Answer | Receipt) -> bytes:
        """The hash that is signed; for a receipt, also what a task leaf paid by it commits to
        (TaskRecord.receipt). Computed from the message's fields with the domain separator and type hash cached
        (what ``digest(self.data(message))`` gives, in a fifth of the time: both sides hash every step)."""
        values = (getattr(message, name) for name in message.__dataclass_fields__)  # in the types' order
        words = b"".join(_word(kind, value) for (_, kind), value in zip(self._fields, values, strict=True))
        return keccak(b"\x19\x01" + self._separator + keccak(self._primary_type_hash + words))

    def recover(self, message: Answer | Receipt, signature: bytes) -> str:
        """The address that signed ``message`` in this domain; ValueError for a malformed signature."""
        return recover(self.digest(message), signature)

    @functools.cached_property
    def _fields(self) -> list[tuple[str, str]]:
        return _primary_fields(self.TYPES)

    @functools.cached_property
    def _primary_type_hash(self) -> bytes:
        return _type_hash(_signature(next(iter(self.TYPES)), self.TYPES))

    @functools.cached_property
    def _separator(self) -> bytes:
        data = _full(self.NAME_VERSION, self.TYPES, {}, chain_id=self.chain_id, contract=self.contract)
        fields = tuple((f["name"], f["type"]) for f in data["types"]["EIP712Domain"])
        return _domain_separator(fields, tuple(data["domain"][name] for name, _ in fields))


@dataclass(frozen=True, kw_only=True)
class AnswerDomain(TypedDomain):
    """Answers are judged by the ServingChallenges contract."""

    NAME_VERSION: ClassVar[tuple[str, str]] = ANSWER_DOMAIN
    TYPES: ClassVar[dict] = ANSWER_TYPES


@dataclass(frozen=True, kw_only=True)
class ReceiptDomain(TypedDomain):
    """Receipts are redeemed in the Payments contract."""

    NAME_VERSION: ClassVar[tuple[str, str]] = RECEIPT_DOMAIN
    TYPES: ClassVar[dict] = RECEIPT_TYPES


@dataclass(frozen=True, kw_only=True)
class Receipt:
    """IPayments.Receipt: the cumulative wei ``client`` owes ``server`` for ``epoch``."""

    client: str
    server: str
    epoch: int
    amount: int

    def message(self) -> dict:
        return {
            "client": to_checksum_address(self.client),
            "server": to_checksum_address(self.server),
            "epoch": self.epoch,
            "amount": self.amount,
        }

    def as_tuple(self) -> tuple:
        return tuple(self.message().values())

    def to_header(self) -> str:
        return json.dumps(self.message())

    @classmethod
    def from_header(cls, text: str) -> Receipt:
        """Parse ``to_header``'s JSON; ValueError when it is malformed."""
        try:
            raw = json.loads(text)
            receipt = cls(
                client=to_checksum_address(raw["client"]),
                server=to_checksum_address(raw["server"]),
                epoch=int(raw["epoch"]),
                amount=int(raw["amount"]),
            )
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ValueError(f"malformed receipt ({exc.__class__.__name__})") from None
        if not (0 <= receipt.epoch < 2**256 and 0 <= receipt.amount < 2**256):
            raise ValueError("malformed receipt (field out of range)")
        return receipt


@dataclass(frozen=True, kw_only=True)
class SignedReceipt:
    """A client's receipt and its signature, as the server keeps it with the step it paid for and an opening shows
    it to verifiers: they check that its digest is the leaf's ``receipt`` and that its client signed it."""

    receipt: Receipt
    signature: bytes

    def to_json(self) -> dict:
        return {**self.receipt.message(), "signature": "0x" + self.signature.hex()}

    @classmethod
    def from_json(cls, raw: object) -> SignedReceipt:
        """Parse ``to_json``'s object; ValueError when it is malformed."""
        if not isinstance(raw, dict) or not isinstance(raw.get("signature"), str):
            raise ValueError("malformed receipt (not an object with a signature)")
        receipt = Receipt.from_header(json.dumps({k: v for k, v in raw.items() if k != "signature"}))
        try:
            signature = bytes.fromhex(raw["signature"].removeprefix("0x"))
        except ValueError:
            raise ValueError("malformed receipt (signature is not hex)") from None
        return cls(receipt=receipt, signature=signature)


def _full(name_version: tuple[str, str], types: dict, message: dict, *, chain_id: int, contract: str) -> dict:
    """An EIP-712 message as eth_signTypedData_v4 takes it (bytes as 0x-hex)."""
    name, version = name_version
    primary = next(iter(types))
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            **types,
        },
        "primaryType": primary,
        "domain": {
            "name": name,
            "version": version,
            "chainId": chain_id,
            "verifyingContract": to_checksum_address(contract),
        },
        "message": {k: "0x" + v.hex() if isinstance(v, bytes) else v for k, v in message.items()},
    }


def digest(data: dict) -> bytes:
    """The EIP-712 hash of ``data`` (a message of this module: flat, static field types), computed directly: the
    general encoder of eth_account takes about 10 ms, and even ABI-encoding the fields about 0.7 ms, too slow for a
    step that is signed and checked by both sides. Type hashes and domain separators are computed once."""
    types = data["types"]
    (primary,) = (name for name in types if name != "EIP712Domain")
    domain_fields = tuple((f["name"], f["type"]) for f in types["EIP712Domain"])
    domain = _domain_separator(domain_fields, tuple(data["domain"][name] for name, _ in domain_fields))
    return keccak(b"\x19\x01" + domain + _struct_hash(_signature(primary, types), types[primary], data["message"]))


def _primary_fields(types: dict) -> list[tuple[str, str]]:
    (fields,) = (v for k, v in types.items() if k != "EIP712Domain")
    return [(f["name"], f["type"]) for f in fields]


def _signature(name: str, types: dict) -> str:
    return f"{name}({','.join(f['type'] + ' ' + f['name'] for f in types[name])})"


@functools.lru_cache(maxsize=64)
def _type_hash(signature: str) -> bytes:
    return keccak(text=signature)


@functools.lru_cache(maxsize=64)
def _domain_separator(fields: tuple[tuple[str, str], ...], values: tuple) -> bytes:
    listed = [{"name": name, "type": kind} for name, kind in fields]
    return _struct_hash(
        _signature("EIP712Domain", {"EIP712Domain": listed}), listed, dict(zip([n for n, _ in fields], values))
    )


def _struct_hash(signature: str, fields: list[dict], values: dict) -> bytes:
    return keccak(_type_hash(signature) + b"".join(_word(f["type"], values[f["name"]]) for f in fields))


def _word(kind: str, value) -> bytes:
    """One field's 32-byte EIP-712 encoding (the static types the messages here use)."""
    if kind == "string":
        return keccak(text=value)
    if kind == "bytes32":
        word = bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else bytes(value)
        if len(word) != 32:
            raise ValueError(f"a bytes32 field of {len(word)} bytes")
        return word
    if kind == "uint256":
        return int(value).to_bytes(32, "big")
    if kind == "address":
        return bytes(12) + bytes.fromhex(value.removeprefix("0x"))
    raise ValueError(f"EIP-712 field type {kind} is not one this module uses")


def typed_signer(w3, signer):
    """EIP-712 data -> 65-byte signature by ``signer``: locally with its key; for an unlocked dev account, with the
    key of the dev chain's public mnemonic (so that a server keeps signing while its node restarts), else by the node
    (``eth_signTypedData_v4``)."""
    return TypedSigner(w3, signer)


class TypedSigner:
    """Signs EIP-712 messages for one account: ``signer(data)`` for typed data, ``signer.sign(domain, message)``
    for a message of this module (a local key signs its digest without building the typed data)."""

    def __init__(self, w3, signer):
        self.w3, self.address = w3, signer.address
        account = signer.account or dev_account(w3, signer.address)
        self._key = PrivateKey(bytes(account.key)) if account is not None else None

    def __call__(self, data: dict) -> bytes:
        if self._key is not None:
            return sign_digest(self._key, digest(data))
        return _by_node(self.w3, self.address, data)

    def sign(self, domain: TypedDomain, message: Answer | Receipt, *, digest32: bytes | None = None) -> bytes:
        """``digest32``: ``domain.digest(message)`` when the caller has it already."""
        if self._key is not None:
            return sign_digest(self._key, digest32 or domain.digest(message))
        return _by_node(self.w3, self.address, domain.data(message))


def sign_digest(key: PrivateKey, digest32: bytes) -> bytes:
    """65 bytes r || s || v (v = 27 or 28) as Ethereum and OpenZeppelin's ECDSA take them (s is low: libsecp256k1
    signs canonically)."""
    signature = key.sign_recoverable(digest32, hasher=None)
    return signature[:64] + bytes([signature[64] + 27])


def _by_node(w3, address: str, data: dict) -> bytes:
    # Ganache takes the typed data as an object; Anvil (like MetaMask) as a JSON string
    response = w3.provider.make_request("eth_signTypedData_v4", [address, data])
    if "error" in response:
        response = w3.provider.make_request("eth_signTypedData_v4", [address, json.dumps(data)])
    if "error" in response:
        raise ValueError(f"the node did not sign typed data for {address}: {response['error']}")
    return bytes.fromhex(response["result"].removeprefix("0x"))


def dev_account(w3, address: str):
    """The local key of a dev node's unlocked ``address`` (Anvil's and Ganache's accounts come from public
    mnemonics), or None for any other account."""
    from efedllm.chain.node import dev_keys

    try:
        index = [a.lower() for a in w3.eth.accounts].index(address.lower())
    except (ValueError, OSError):
        return None
    for kind in ("anvil", "ganache"):
        account = Account.from_key(dev_keys(kind, index + 1)[index])
        if account.address.lower() == address.lower():
            return account
    return None


def signer_of(data: dict, signature: bytes) -> str:
    """The address that signed the EIP-712 ``data``; raises ValueError for a malformed signature."""
    return recover(digest(data), signature)


SECP256K1_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0


def recover(digest32: bytes, signature: bytes) -> str:
    """The (checksummed) address whose key signed ``digest32``; ValueError for a malformed signature, including
    the ones OpenZeppelin's ECDSA.recover refuses (a length other than 65, v other than 27 or 28, a high s), so that
    what passes here passes on chain."""
    if len(signature) != 65:
        raise ValueError(f"malformed signature ({len(signature)} bytes, not 65)")
    v, s = signature[64], int.from_bytes(signature[32:64], "big")
    if v not in (27, 28) or s > SECP256K1_HALF_N:
        raise ValueError("malformed signature (v is not 27 or 28, or s is high)")
    try:
        key = PublicKey.from_signature_and_message(signature[:64] + bytes([v - 27]), digest32, hasher=None)
    except Exception as exc:  # noqa: BLE001 - libsecp256k1 refuses r or s out of range, a point off the curve
        raise ValueError(f"malformed signature ({exc.__class__.__name__})") from None
    return _checksummed(keccak(key.format(compressed=False)[1:])[-20:])


@functools.lru_cache(maxsize=4096)
def _checksummed(address: bytes) -> str:
    return to_checksum_address(address)  # slow (a keccak in Python): the same few signers come back every step
