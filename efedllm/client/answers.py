"""The client's check of every forward answer, and the receipts it keeps (issue 14).

A server signs each answer over its task (efedllm/receipts.py): the client checks, before it uses the output, that
the signed output hash is the hash of the bytes it received, that the task is the step it asked for (its session,
layers and position) and the receipt it paid with (the digest of the receipt it sent, or zero when it sent none:
the task leaf commits to it, and verifiers count the client-paid work by it), and that the signer is the server's
address on chain. A failed check is a server failure: the session fails over to another server, as for a dropped
connection. The signed answers are kept: a client can
challenge any of them on chain (ServingChallenges) or hand a sample to verifiers.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import torch
from eth_utils import keccak

from efedllm.receipts import ANSWER_HEADER, SIGNATURE_HEADER, Answer, AnswerDomain, SignedAnswer
from efedllm.rpc.client import ServerFailure
from efedllm.tasks import tensor_hash

BAD_ANSWER = "bad-answer"
"""The ``cause`` of the ServerFailure a failed check raises: a client fails over, a verifier's canary calls it fraud."""


@functools.lru_cache(maxsize=256)
def _session_hash(session: str) -> bytes:
    return keccak(text=session)  # the same session's hash every step


class AnswerChecker:
    """Checks answers against ``domain`` (the deployment's ServingChallenges) and keeps them in ``kept``."""

    def __init__(self, domain: AnswerDomain):
        self.domain = domain
        self.kept: list[SignedAnswer] = []

    def check(
        self,
        *,
        endpoint: str,
        address: str | None,
        session: str,
        start: int,
        end: int,
        past: int,
        output: torch.Tensor,
        receipt: bytes,
        headers: Mapping[str, str],
    ) -> SignedAnswer:
        """``receipt``: the digest of the receipt this step was sent with (receipts.UNPAID when none)."""

        def fail(why: str) -> ServerFailure:
            return ServerFailure(endpoint, f"bad signed answer: {why}", cause=BAD_ANSWER)

        raw, signature = headers.get(ANSWER_HEADER), headers.get(SIGNATURE_HEADER)
        if not raw or not signature:
            raise fail("the answer is not signed")
        try:
            answer = Answer.from_header(raw)
            sig = bytes.fromhex(signature.removeprefix("0x"))
            signer = self.domain.recover(answer, sig)
        except ValueError as exc:
            raise fail(str(exc)) from None
        if answer.output_hash != tensor_hash(output):
            raise fail("the signed output hash is not the hash of the output received")
        if (answer.session, answer.start, answer.end, answer.past) != (_session_hash(session), start, end, past):
            raise fail(f"it signs another step (layers {answer.start}:{answer.end}, {answer.past} tokens before)")
        if answer.receipt != receipt:
            raise fail(f"it names receipt 0x{answer.receipt.hex()}, and the step was sent with 0x{receipt.hex()}")
        if address is None or signer.lower() != address.lower():
            raise fail(f"signed by {signer}, not by the server on record ({address})")
        kept = SignedAnswer(server=signer, answer=answer, signature=sig)
        self.kept.append(kept)
        return kept
