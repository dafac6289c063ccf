"""A canary checks each answer's signature as a client does (client/answers.py), and a failed check is fraud.

A stub server answers every canary step with the very output the verifier computes (the stub model's layers are
the identity), so only the signature check can fail: signed right, the steps pass; signed over another output, or
by a key that is not the server's on record, or not at all, the first step is caught as fraud, not retried or
counted as unreachable (the server signed what it sent).
"""

from __future__ import annotations

import pytest
import torch
from eth_account import Account
from eth_utils import keccak

from efedllm.chain.views import Serving
from efedllm.client.answers import AnswerChecker
from efedllm.client.routing import Peer
from efedllm.receipts import ANSWER_HEADER, SIGNATURE_HEADER, UNPAID, Answer, AnswerDomain, digest
from efedllm.tasks import tensor_hash
from efedllm.verifier.checks import Verdict
from efedllm.verifier.remote import _steps

DOMAIN = AnswerDomain(chain_id=31337, contract="0x" + "11" * 20)
SERVER, OTHER = Account.create(), Account.create()


class IdentityModel:
    num_layers = 2

    def embed(self, ids):
        return torch.arange(len(ids) * 4, dtype=torch.float32).reshape(1, len(ids), 4) + 1

    def run(self, hidden, cache, *, past, start, end, serving=None):
        return hidden

    def next_token(self, hidden):
        return 7


class StubServer:
    """Serves each step right; signs it as ``lie`` says."""

    def __init__(self, lie: str):
        self.lie, self.past = lie, 0

    def forward(self, session, hidden, *, max_tokens, answered, headers):
        output = hidden.clone()
        answer = Answer(
            epoch=1,
            index=0,
            session=keccak(text=session),
            step=0,
            start=0,
            end=2,
            past=self.past,
            prefix_hash=bytes(32),
            input_hash=tensor_hash(hidden),
            output_hash=tensor_hash(output + (1 if self.lie == "hash" else 0)),
            receipt=UNPAID,  # a free server: no client receipt paid for the step
        )
        key = OTHER if self.lie == "key" else SERVER
        signature = key.unsafe_sign_hash(digest(DOMAIN.data(answer))).signature
        signed = {ANSWER_HEADER: answer.to_header(), SIGNATURE_HEADER: "0x" + bytes(signature).hex()}
        self.past += hidden.shape[1]
        answered(output, {} if self.lie == "unsigned" else signed)
        return output


def canary(lie: str) -> list[Verdict]:
    peer = Peer(endpoint="http://server", first=0, end=2, address=SERVER.address)
    return _steps(
        StubServer(lie),
        peer,
        "session-1",
        model=IdentityModel(),
        prompt=[1, 2, 3],
        decode_steps=2,
        serving=Serving(),
        tolerance=1e-3,
        answers=AnswerChecker(DOMAIN),
        payer=None,
    )


def test_a_rightly_signed_canary_passes():
    assert canary("none") == [Verdict.ok()] * 3


@pytest.mark.parametrize(
    ("lie", "why"),
    [
        ("hash", "the signed output hash is not the hash of the output received"),
        ("key", f"signed by {OTHER.address}, not by the server on record"),
        ("unsigned", "the answer is not signed"),
    ],
)
def test_a_canary_answer_that_fails_the_signature_check_is_fraud(lie, why):
    [verdict] = canary(lie)
    assert verdict.fraud and why in verdict.reason, verdict
