"""Talking to a server as a verifier: signed openings, and canary prompts sent as an ordinary client would.

A transport failure (connection refused, timeout, 5xx) is retried and then counted as ``unreachable``; an
explicit refusal to open a leaf the server committed to, or a wrong canary answer, is ``fraud``
(verifier/checks.py says why the two differ). A canary goes through rpc.ServerClient, the very client users'
sessions use, over a one-hop route on its target alone: a failure there is ``unreachable``, never a failover.
A server that announced a price is paid for each canary step as any client pays it (client/payments.py, from the
verifier's deposit in Payments): it cannot tell a canary from a client's step, and refuses an unpaid one (402).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import requests

from efedllm import wire
from efedllm.client.payments import Payer
from efedllm.client.routing import Peer
from efedllm.model.decoder import KVCache
from efedllm.openings import CONTENT_TYPE, OpeningError, decode_opening, sign_request
from efedllm.rpc import routes
from efedllm.rpc.client import ServerClient, ServerFailure, ServerRefused
from efedllm.verifier.checks import Verdict, deviation
from efedllm.verifier.reference import ReferenceModel

RETRIES = 3


@dataclass(frozen=True, kw_only=True)
class Target:
    address: str
    endpoint: str
    first_layer: int
    num_layers: int
    price: int = 0
    """Wei per token-layer it announced (Payments.priceOf): what its canary steps cost."""


def _post(session: requests.Session, url: str, *, timeout: float, fresh=None, **kwargs) -> requests.Response | str:
    """The response, or a description of why there is none after ``RETRIES`` tries. ``fresh``: a callable giving
    each try's keyword arguments anew (a signed request whose answer was lost may have used its nonce)."""
    reason = ""
    for attempt in range(RETRIES):
        try:
            response = session.post(url, timeout=timeout, **(fresh() if fresh else kwargs))
            if response.status_code < 500:
                return response
            reason = f"HTTP {response.status_code}"
        except requests.RequestException as exc:
            reason = exc.__class__.__name__
        time.sleep(0.5 * 2**attempt)
    return reason


def fetch_opening(
    session: requests.Session, target: Target, *, sign, chain_id: int, epoch: int, index: int, timeout: float = 60.0
):
    """The decoded opening of leaf ``index``, or a Verdict when there is none to check."""

    # A fresh nonce for every try: resending a request that reached the server would be refused as a replay
    # (409), which counts as fraud, so a lost answer must not turn into a slashing of an honest server.
    def signed() -> dict:
        return {
            "json": sign_request(
                sign=sign, chain_id=chain_id, server=target.address, epoch=epoch, index=index
            ).to_json()
        }

    answer = _post(session, target.endpoint.rstrip("/") + routes.OPENINGS, fresh=signed, timeout=timeout)
    if isinstance(answer, str):
        return Verdict.unreachable(f"opening {index}: server unreachable ({answer})")
    if answer.status_code != 200 or answer.headers.get("Content-Type", "").split(";")[0] != CONTENT_TYPE:
        detail = answer.text[:200] if answer.status_code != 200 else "wrong content type"
        return Verdict.caught(f"opening {index} refused: HTTP {answer.status_code} {detail}")
    try:
        return decode_opening(answer.content)
    except OpeningError as exc:
        return Verdict.caught(f"opening {index}: {exc}")


def _retried(call):
    """``call()``'s result, or a description of why there is none: a failure without an answer or with a 5xx is
    tried ``RETRIES`` times, any other refusal only once (as ``_post`` does for raw requests)."""
    reason = ""
    for attempt in range(RETRIES):
        try:
            return call()
        except (ServerFailure, ServerRefused) as exc:
            reason = f"HTTP {exc.status}" if exc.status is not None else exc.cause
            if exc.status is not None and exc.status < 500:
                return reason
        time.sleep(0.5 * 2**attempt)
    return reason


def run_canary(
    session: requests.Session,
    target: Target,
    model: ReferenceModel,
    prompt: list[int],
    *,
    decode_steps: int,
    tolerance: float,
    timeout: float = 60.0,
    payer: Payer | None = None,
) -> list[Verdict]:
    """Send ``prompt`` through ``target``'s span (prefill, then greedy decode steps) exactly as a client would,
    paying each step with ``payer`` when the target has a price, and compare each answer with the verifier's own
    computation. One verdict per step."""
    start, end = target.first_layer, target.first_layer + target.num_layers
    peer = Peer(endpoint=target.endpoint, first=start, end=end, address=target.address, price=target.price)
    server = ServerClient(target.endpoint, http=session, timeout=timeout, connect_timeout=timeout)
    opened = _retried(lambda: server.open_session(start, end))
    if isinstance(opened, str):
        return [Verdict.unreachable(f"canary: cannot open a session ({opened})")]
    cache, verdicts, past, tokens = KVCache(), [], 0, list(prompt)
    try:
        for step in range(decode_steps + 1):
            new = tokens if step == 0 else tokens[-1:]
            front = model.run(model.embed(new), cache, past=past, start=0, end=start)
            expected = model.run(front, cache, past=past, start=start, end=end)
            paid = None if payer is None else payer.pay(peer=peer, tokens=len(new), layers=end - start)
            headers = {} if paid is None else paid.headers
            try:
                got = _retried(
                    lambda: server.forward(opened.session, front, max_tokens=front.shape[1], headers=headers)  # noqa: B023
                )
                if isinstance(got, str):
                    verdicts.append(Verdict.unreachable(f"canary step {step}: {got}"))
                    break
                if paid is not None:
                    paid.served()
                error = deviation(got, expected) if got.shape == expected.shape else float("inf")
            except wire.WireError as exc:
                verdicts.append(Verdict.caught(f"canary step {step}: {exc}"))
                break
            verdicts.append(
                Verdict.ok() if error <= tolerance else Verdict.caught(f"canary step {step} deviates by {error:.2e}")
            )
            back = model.run(expected, cache, past=past, start=end, end=model.num_layers)
            past += len(new)
            tokens.append(model.next_token(back))
    finally:
        server.close(opened.session, timeout=5)
    return verdicts
