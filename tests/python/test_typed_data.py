"""The EIP-712 digests, signatures and recoveries of efedllm/receipts.py, against eth_account's general encoder.

Both sides of every served step hash and sign (the server its answer, the client its receipt) and check the other's
signature, so receipts.py computes digests from the message's fields with the domain separator cached and signs and
recovers with libsecp256k1 directly. Here the fast paths must agree with eth_account on random messages, and the
recovery must refuse what OpenZeppelin's ECDSA.recover refuses (so that what a client accepts, the chain accepts).
"""

from __future__ import annotations

import random

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak

from efedllm.chain.connection import Signer
from efedllm.receipts import (
    SECP256K1_HALF_N,
    Answer,
    AnswerDomain,
    Receipt,
    ReceiptDomain,
    TypedSigner,
    digest,
    signer_of,
)

N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def reference_digest(data: dict) -> bytes:
    message = encode_typed_data(full_message=data)
    return keccak(b"\x19" + message.version + message.header + message.body)


def random_messages(rng: random.Random):
    for _ in range(20):
        domain_args = dict(chain_id=rng.randrange(1, 2**64), contract="0x" + rng.randbytes(20).hex())
        yield (
            ReceiptDomain(**domain_args),
            Receipt(
                client="0x" + rng.randbytes(20).hex(),
                server="0x" + rng.randbytes(20).hex(),
                epoch=rng.randrange(2**64),
                amount=rng.randrange(2**256),
            ),
        )
        yield (
            AnswerDomain(**domain_args),
            Answer(
                epoch=rng.randrange(2**64),
                index=rng.randrange(2**32),
                session=rng.randbytes(32),
                step=rng.randrange(2**16),
                start=rng.randrange(30),
                end=rng.randrange(30),
                past=rng.randrange(2**16),
                prefix_hash=rng.randbytes(32),
                input_hash=rng.randbytes(32),
                output_hash=rng.randbytes(32),
                receipt=rng.randbytes(32),
            ),
        )


def test_fast_digests_signatures_and_recovery_agree_with_eth_account():
    rng = random.Random(14)
    account = Account.from_key(rng.randbytes(32))
    signer = TypedSigner(None, Signer(account.address, account))
    for domain, message in random_messages(rng):
        expected = reference_digest(domain.data(message))
        assert domain.digest(message) == digest(domain.data(message)) == expected
        signature = signer.sign(domain, message)
        assert signature == bytes(account.unsafe_sign_hash(expected).signature) == signer(domain.data(message))
        assert domain.recover(message, signature) == signer_of(domain.data(message), signature) == account.address


def test_recovery_refuses_what_the_chain_refuses():
    rng = random.Random(15)
    account = Account.from_key(rng.randbytes(32))
    domain, receipt = next(random_messages(rng))
    good = TypedSigner(None, Signer(account.address, account)).sign(domain, receipt)
    s = int.from_bytes(good[32:64], "big")
    assert s <= SECP256K1_HALF_N  # libsecp256k1 signs with a low s
    flipped = good[:32] + (N - s).to_bytes(32, "big") + bytes([55 - good[64]])  # the same signature, high s
    for bad in (good[:64], good + b"\0", good[:64] + b"\x01", good[:64] + b"\x1d", flipped, bytes(65)):
        with pytest.raises(ValueError, match="malformed signature"):
            domain.recover(receipt, bad)
    other = domain.recover(receipt, good[:64] + bytes([55 - good[64]]))  # the other v recovers another key
    assert other != account.address
