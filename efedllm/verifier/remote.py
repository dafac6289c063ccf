"""Talking to a server as a verifier: signed openings, and canary prompts sent as an ordinary client would.

A transport failure (connection refused, timeout, 5xx) is retried and then counted as ``unreachable``; an
explicit refusal to open a leaf the server committed to, or a wrong canary answer (a wrong output, or a signed
answer that fails the client's check), is ``fraud`` (verifier/checks.py says why the two differ). A canary goes
through the client's own code (rpc.ServerClient, client/steps.py ``send_step``), over a one-hop route on its
target alone: a failure there is ``unreachable``, never a failover. verifier/canaries.py says why a canary must
look like any client's session.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial

import requests
import torch

from efedllm import wire
from efedllm.chain.views import FLOAT32_FULL, Serving
from efedllm.client.answers import BAD_ANSWER, AnswerChecker
from efedllm.client.lockstep import Lockstep
from efedllm.client.payments import Payer
from efedllm.client.peers import probe
from efedllm.client.routing import Peer
from efedllm.client.steps import send_step
from efedllm.model.decoder import KVCache
from efedllm.openings import CONTENT_TYPE, OpeningError, decode_opening, sign_request
from efedllm.rpc import routes
from efedllm.rpc.client import ServerClient, ServerFailure, ServerRefused
from efedllm.verifier import rules
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
    """Wei per token and layer (Payments.priceOf): a canary pays it as any client does."""
    serving: Serving = FLOAT32_FULL
    """The configuration it declared for the epoch checked (ServerRegistry.servingOf): recomputed so, and held
    to that configuration's bounds (verifier/rules.py)."""


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
    tried ``RETRIES`` times, any other refusal only once (as ``_post`` does for raw requests). A signed answer that
    fails the client's check (client/answers.py) is raised: it is no failure to retry but the server's word."""
    reason = ""
    for attempt in range(RETRIES):
        try:
            return call()
        except (ServerFailure, ServerRefused) as exc:
            if getattr(exc, "cause", "") == BAD_ANSWER:
                raise
            reason = f"HTTP {exc.status}" if exc.status is not None else exc.cause
            if exc.status is not None and exc.status < 500:
                return reason
        time.sleep(0.5 * 2**attempt)
    return reason


def run_canary(
    target: Target,
    model: ReferenceModel,
    prompt: list[int],
    *,
    decode_steps: int,
    tolerance: float,
    answers: AnswerChecker | None,
    payer: Payer | None,
    timeout: float = 60.0,
    lockstep: tuple[Lockstep, int] | None = None,
) -> list[Verdict]:
    """Send ``prompt`` through ``target``'s span (prefill, then greedy decode steps) exactly as a client would,
    and compare each answer with the verifier's own computation. One verdict per step. ``lockstep``: (the lockstep
    of the canaries running at once with this one, this canary's place in it, registered as ``coming`` to
    ``canary_route(target)`` before any of them starts): its decode steps travel grouped with theirs, as a client
    process's concurrent sessions' steps do (client/lockstep.py).

    The requests are a client's, in a client's order, on connections of their own (never those of the verifier's
    signed openings): ``GET /info`` as a client's probe, ``POST /sessions``, each step through client/session.py
    ``send_step`` (paid by ``payer``'s receipt when the server has a price, its signed answer checked by
    ``answers``), ``DELETE``. A signed answer that fails that check is fraud: the server signed what it sent."""
    start, end = target.first_layer, target.first_layer + target.num_layers
    peer = Peer(endpoint=target.endpoint, first=start, end=end, address=target.address, price=target.price)
    try:
        with requests.Session() as http:
            probe(target.endpoint)  # what ChainPeers asks every server before a client opens a session on it
            server = ServerClient(target.endpoint, http=http, timeout=timeout)
            opened = _retried(lambda: server.open_session(start, end))
            if isinstance(opened, str):
                return [Verdict.unreachable(f"canary: cannot open a session ({opened})")]
            try:
                return _steps(
                    server,
                    peer,
                    opened.session,
                    model=model,
                    prompt=prompt,
                    decode_steps=decode_steps,
                    serving=target.serving,
                    tolerance=rules.tolerance(target.serving, end - start, float32=tolerance),
                    answers=answers,
                    payer=payer,
                    lockstep=lockstep,
                )
            finally:
                server.close(opened.session)
    finally:
        if lockstep is not None:
            lockstep[0].leave(lockstep[1])  # it blocks the others no more, however it ended


def canary_route(target: Target) -> tuple[tuple[str, int], ...]:
    """A canary's route as the lockstep sees it: one hop, its target."""
    return ((target.endpoint, target.first_layer),)


def _steps(
    server: ServerClient,
    peer: Peer,
    session: str,
    *,
    model: ReferenceModel,
    prompt: list[int],
    decode_steps: int,
    serving: Serving,
    tolerance: float,
    answers: AnswerChecker | None,
    payer: Payer | None,
    lockstep: tuple[Lockstep, int] | None = None,
) -> list[Verdict]:
    """The verdicts of a canary's steps on an open ``session``; the first answer that could not be had or decoded,
    or failed the signature check, ends it. With a ``lockstep``, each decode step is sent with the other canaries'
    steps released with it (its first try only: a retry goes alone, as a client's does)."""
    cache, served_cache, verdicts, past, tokens = KVCache(), KVCache(), [], 0, list(prompt)
    route = ((peer.endpoint, peer.first),)
    for step in range(decode_steps + 1):
        new = tokens if step == 0 else tokens[-1:]
        front = model.run(model.embed(new), cache, past=past, start=0, end=peer.first)
        # the server's layers as it declared it computes them, step by step as it does, in a cache of their own
        expected = model.run(front, served_cache, past=past, start=peer.first, end=peer.end, serving=serving)
        group = None
        if lockstep is not None and step > 0:
            released = lockstep[0].arrive(lockstep[1], route, 0)
            group = (released, lockstep[1]) if released is not None else None
        send = partial(
            _first_grouped,
            [group],
            server,
            peer=peer,
            session=session,
            start=peer.first,
            end=peer.end,
            past=past,
            hidden=front,
            answers=answers,
            payer=payer,
            max_tokens=front.shape[1],
        )
        try:
            got = _retried(send)
        except (wire.WireError, ServerFailure) as exc:  # an undecodable answer, or a BAD_ANSWER (``_retried``)
            return [*verdicts, Verdict.caught(f"canary step {step}: {exc}")]
        finally:
            if lockstep is not None and step > 0:
                lockstep[0].answered(lockstep[1], route, 0)
        if isinstance(got, str):
            return [*verdicts, Verdict.unreachable(f"canary step {step}: {got}")]
        error = deviation(got, expected.float()) if got.shape == expected.shape else float("inf")
        verdicts.append(
            Verdict.ok()
            if error <= tolerance
            else Verdict.caught(f"canary step {step} deviates by {error:.2e} (tolerance {tolerance:.1e})")
        )
        back = model.run(expected, cache, past=past, start=peer.end, end=model.num_layers)
        past += len(new)
        tokens.append(model.next_token(back))
    return verdicts


def _first_grouped(groups: list, *args, **kwargs) -> torch.Tensor:
    """``send_step`` with the group in ``groups`` (a one-item list, emptied on use): a group is sent once, so a
    retry of the step goes alone."""
    return send_step(*args, group=groups.pop() if groups else None, **kwargs)
