"""The HTTP face of a server (aiohttp). Routes:

``GET /info``                         what this server serves and how fast
``POST /sessions``                    open a session over layers [start, end) of the span (JSON, optional)
``POST /sessions/{id}/forward``       run new hidden states (safetensors body) -> output hidden states
``POST /steps``                       one decode step of each of several sessions (a steps message) -> outputs
``DELETE /sessions/{id}``             close a session
``POST /openings``                    reveal a committed task to a verifier (server/openings.py; on chain only)

Every error is a JSON body ``{"error": ...}`` with a 4xx status (5xx only for a bug), and one bad request never
disturbs other sessions. Compute runs on one worker thread, so the event loop keeps answering while a step runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import torch
from aiohttp import web

from efedllm import wire
from efedllm.http import json_errors, read_body
from efedllm.model.serving import describe
from efedllm.model.span import LayerSpan
from efedllm.receipts import ANSWER_HEADER, SIGNATURE_HEADER, Answer
from efedllm.rpc import routes
from efedllm.rpc.messages import MessageError, OpenSession, ServerInfo, SessionOpened, Throughput
from efedllm.server.batching import Batcher
from efedllm.server.config import ServerConfig
from efedllm.server.sessions import SessionError, SessionStore
from efedllm.tasks import TaskRecord, tensor_hash

log = logging.getLogger("efedllm.server")


@dataclass
class Serving:
    """What the server serves right now; replaced as a whole when it moves to other layers (rebalancing)."""

    span: LayerSpan
    store: SessionStore


SERVING = web.AppKey("serving", list)
"""A one-element list holding the current Serving (an app's keys may not be reassigned once it runs)."""
CONFIG = web.AppKey("config", ServerConfig)
EXECUTOR = web.AppKey("executor", ThreadPoolExecutor)
RECORDER = web.AppKey("recorder", ThreadPoolExecutor)
"""One thread that records each served step and signs its answer, off the event loop (see ``forward``)."""
BATCHER = web.AppKey("batcher", Batcher)
"""Runs the steps on the executor, batching the decode steps of sessions that are ready together."""
ANNOUNCED = web.AppKey("announced", dict)
"""The fields of ``GET /info`` fixed at start: throughput and address (see server_info)."""
LIVE_INFO = web.AppKey("live_info", dict)
"""Fields of ``GET /info`` computed at each request (ServerInfo field name -> callable), e.g. the epoch the server
records under."""
FILTERS = web.AppKey("filters", list)
"""Callables that may replace each served step's output, applied in order with keyword arguments inputs and outputs
(returning the output to send), before the hooks run: e.g. a test aid (efedllm/aids/) installs itself here."""
HOOKS = web.AppKey("hooks", list)
"""Callables run after each served step, before its answer goes out, with keyword arguments session, inputs,
outputs, past and payment (the Paywall's checked receipt for the step, or None): the task recorder (server/work.py)
hooks in here, and returns the step's TaskRecord."""
OUTGOING = web.AppKey("outgoing", list)
"""Callables that may replace the output actually sent, after it was recorded (keyword arguments inputs, outputs
and grouped, whether the step came in one ``POST /steps`` with others): only a test aid uses it (``equivocate``:
record right, serve wrong)."""
PAYWALL = web.AppKey("paywall", list)
"""At most one server/payments.Paywall: when set, a step is served only with the client's receipt paying for it."""
SIGNER = web.AppKey("signer", list)
"""At most one callable Answer -> signature: when set, every recorded step's answer carries the server's EIP-712
signature over its task (efedllm/receipts.py), with the output hash of what is sent."""


errors_as_json = json_errors(log, {SessionError: lambda exc: exc.status, wire.WireError: lambda exc: 400})


def serving(app: web.Application) -> Serving:
    return app[SERVING][0]


def server_info(app: web.Application) -> ServerInfo:
    """What ``GET /info`` answers: built here and nowhere else. Clients route by the load it reports (``queued``,
    ``free_cache_bytes``) besides the throughput measured at start."""
    config, now = app[CONFIG], serving(app)
    span, limits = now.span, config.limits
    live = {name: value() for name, value in app[LIVE_INFO].items()}
    return ServerInfo(
        **app[ANNOUNCED],
        endpoint=config.endpoint,
        model=config.model,
        first_layer=span.first,
        num_layers=span.count,
        hidden_size=span.config.hidden_size,
        dtype=describe(span)[0],
        weights=describe(span)[1],
        device=str(span.device),
        max_sequence=limits.max_sequence,
        max_step_tokens=limits.max_step_tokens,
        max_sessions=limits.max_sessions,
        **live,
        sessions=len(now.store),
        cache_bytes=now.store.cache_bytes,
        free_cache_bytes=max(0, limits.max_cache_bytes - now.store.cache_bytes),
        queued=app[BATCHER].queued,
        steps=app[BATCHER].steps,
        batches=app[BATCHER].batches,
    )


async def info(request: web.Request) -> web.Response:
    return web.json_response(server_info(request.app).to_json())


async def open_session(request: web.Request) -> web.Response:
    now = serving(request.app)
    span, store = now.span, now.store
    try:
        asked = OpenSession.from_json(await _json_body(request))
    except MessageError as exc:
        raise SessionError(400, str(exc)) from None
    start = span.first if asked.start is None else asked.start
    end = span.first + span.count if asked.end is None else asked.end
    if not span.first <= start < end <= span.first + span.count:
        raise SessionError(
            400, f"layers {start}:{end} are not within this server's span {span.first}:{span.first + span.count}"
        )
    session = store.open(start, end, span.new_cache(), client=request.remote or "")
    return web.json_response(
        SessionOpened(session=session.id, start=start, end=end, dtype=describe(span)[0]).to_json(), status=201
    )


async def forward(request: web.Request) -> web.Response:
    app = request.app
    now, limits = serving(app), app[CONFIG].limits
    span, store = now.span, now.store
    session = store.get(request.match_info["session_id"])
    data = await read_body(request, timeout=limits.body_timeout)
    hidden = wire.decode(data, hidden_size=span.config.hidden_size, dtype=span.dtype, max_tokens=limits.max_step_tokens)
    paywall = app[PAYWALL][0] if app[PAYWALL] else None
    payment = (
        paywall.check(tokens=hidden.shape[1], layers=session.end - session.start, headers=request.headers)
        if paywall
        else None
    )
    with _released_unless_served(paywall, [payment]):
        async with session.lock:
            store.reserve(session, hidden.shape[1])
            past = session.length
            step = app[BATCHER].run(span, session, hidden, past)  # alone, or batched with other sessions' steps
            output = await asyncio.wait_for(step, limits.step_timeout)
            session.length += hidden.shape[1]
        # Recording (hashes, compression, a transaction to disk), booking the receipt and signing the answer take
        # milliseconds: they run on their own thread, not on the event loop that every other request waits on. One
        # thread, first in first out: a session's steps are recorded in their order (its next step can only come
        # after this answer, which waits for them).
        answer = functools.partial(
            _record_and_sign, app, session=session, hidden=hidden, output=output, past=past, payment=payment
        )
        (output,), (headers,) = await _answered(app, [answer])
    return web.Response(body=wire.encode(output), content_type=wire.CONTENT_TYPE, headers=headers)


@contextlib.contextmanager
def _released_unless_served(paywall, payments: list):
    """The payments of steps that end in an error before they were served no longer count as in flight
    (server/payments.py Paywall)."""
    try:
        yield
    except BaseException:
        if paywall is not None:
            paywall.release(payments)
        raise


async def forward_steps(request: web.Request) -> web.Response:
    """One decode step of each of several sessions, sent together by a client process (client/lockstep.py).

    Everything a step could be refused for (the message, an unknown session, its payment, its sequence or cache
    limit) is checked for every step before any runs, so a refusal leaves every session as it was and the client
    may send the steps again, one by one. The steps then run as one batch (with any other session's steps ready at
    the same time), and each is recorded, paid and signed exactly as if it had come alone."""
    app = request.app
    now, limits = serving(app), app[CONFIG].limits
    span, store = now.span, now.store
    data = await read_body(request, timeout=limits.body_timeout)
    steps = wire.decode_steps(data, hidden_size=span.config.hidden_size, dtype=span.dtype, max_steps=limits.max_batch)
    sessions = [store.get(session_id) for session_id in steps.sessions]
    paywall = app[PAYWALL][0] if app[PAYWALL] else None
    payments: list = []
    hidden = list(steps.hidden.split(1, dim=0))
    with _released_unless_served(paywall, payments):
        for session, headers in zip(sessions, steps.headers):  # in the request's order: receipts add up in it
            payments.append(
                paywall.check(tokens=1, layers=session.end - session.start, headers=headers) if paywall else None
            )
        async with contextlib.AsyncExitStack() as locks:
            for session in sorted(sessions, key=lambda s: s.id):  # one order for every request: no deadlock
                await locks.enter_async_context(session.lock)
            for session in sessions:
                store.reserve(session, 1)
            pasts = [session.length for session in sessions]
            runs = [app[BATCHER].run(span, s, h, past) for s, h, past in zip(sessions, hidden, pasts)]
            outputs = await asyncio.wait_for(asyncio.gather(*runs), limits.step_timeout)
            for session in sessions:
                session.length += 1
        answers = [
            functools.partial(
                _record_and_sign, app, session=s, hidden=h, output=o, past=past, payment=payment, grouped=True
            )
            for s, h, o, past, payment in zip(sessions, hidden, outputs, pasts, payments)
        ]
        outputs, headers = await _answered(app, answers)
    return web.Response(body=wire.encode_steps(torch.cat(outputs), headers=headers), content_type=wire.CONTENT_TYPE)


async def _answered(app: web.Application, answers: list) -> tuple[list[torch.Tensor], list[dict[str, str]]]:
    """Run each step's ``_record_and_sign``, in order: (outputs sent, their headers)."""
    if not (app[FILTERS] or app[HOOKS] or app[PAYWALL] or app[OUTGOING] or app[SIGNER]):
        done = [answer() for answer in answers]  # nothing to record or sign (a server off chain): no thread
    else:
        done = await asyncio.get_running_loop().run_in_executor(app[RECORDER], lambda: [a() for a in answers])
    return [output for output, _ in done], [headers for _, headers in done]


def _record_and_sign(
    app: web.Application,
    *,
    session,
    hidden: torch.Tensor,
    output: torch.Tensor,
    past: int,
    payment,
    grouped: bool = False,
) -> tuple[bytes, dict[str, str]]:
    """Record a served step, book its payment, and sign the answer: (the output sent, its headers). ``grouped``:
    the step came with others in one ``POST /steps`` (the outgoing filters, test aids, may tell the two apart)."""
    for answer in app[FILTERS]:
        output = answer(inputs=hidden, outputs=output)
    records = [hook(session=session, inputs=hidden, outputs=output, past=past, payment=payment) for hook in app[HOOKS]]
    if app[PAYWALL]:
        app[PAYWALL][0].accept(payment)
    recorded = output
    for answer in app[OUTGOING]:
        output = answer(inputs=hidden, outputs=output, grouped=grouped)
    headers = {}
    record = next((r for r in records if isinstance(r, TaskRecord)), None)
    if record is not None and app[SIGNER]:
        signed = Answer.of(record)  # the recorded output is the one sent, unless an outgoing filter changed it
        if output is not recorded:
            signed = replace(signed, output_hash=tensor_hash(output))
        headers = {ANSWER_HEADER: signed.to_header(), SIGNATURE_HEADER: "0x" + app[SIGNER][0](signed).hex()}
    return output, headers


async def close_session(request: web.Request) -> web.Response:
    closed = serving(request.app).store.close(request.match_info["session_id"])
    request.app[BATCHER].forget(request.match_info["session_id"])
    if not closed:
        raise SessionError(404, "unknown or expired session")
    return web.json_response({"closed": True})


async def _json_body(request: web.Request) -> dict:
    if not request.can_read_body:
        return {}
    try:
        body = json.loads(await read_body(request, timeout=request.app[CONFIG].limits.body_timeout) or b"{}")  # UTF-8
    except (ValueError, RecursionError):  # syntax, bad UTF-8, a number past the digit limit, too deep
        raise SessionError(400, "body must be JSON") from None
    if not isinstance(body, dict):
        raise SessionError(400, "body must be a JSON object")
    return body


async def _expire_sessions(app: web.Application):
    async def loop():
        while True:
            await asyncio.sleep(max(1.0, app[CONFIG].limits.session_ttl / 4))
            dropped = serving(app).store.expire()
            if dropped:
                log.info("expired %d idle sessions", dropped)

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    app[EXECUTOR].shutdown(wait=False, cancel_futures=True)
    app[RECORDER].shutdown(wait=True)  # steps already served are recorded before the store closes


def use_span(app: web.Application, span: LayerSpan) -> None:
    """Serve ``span`` from now on. Sessions over the previous span are dropped (their clients fail over)."""
    store = SessionStore(app[CONFIG].limits, bytes_per_token=span.kv_bytes_per_token())
    app[SERVING][0] = Serving(span=span, store=store)


def create_app(
    span: LayerSpan, config: ServerConfig, *, throughput: Throughput, address: str | None = None
) -> web.Application:
    """The server's app; ``throughput`` as measured at start, ``address`` its chain account (None off chain)."""
    app = web.Application(middlewares=[errors_as_json], client_max_size=config.limits.max_body_bytes)
    app[CONFIG] = config
    app[ANNOUNCED] = {"throughput": throughput, "address": address}
    app[SERVING] = [None]
    use_span(app, span)
    app[EXECUTOR] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="efedllm-compute")
    app[RECORDER] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="efedllm-record")
    limits = config.limits
    app[BATCHER] = Batcher(
        app[EXECUTOR],
        max_batch=limits.max_batch,
        wait_s=limits.batch_wait_ms / 1000,
        gap_s=limits.batch_gap_ms / 1000,
        max_tokens=limits.batch_tokens,
        one_thread_tokens=limits.one_thread_tokens,
    )
    app[FILTERS], app[HOOKS], app[OUTGOING], app[SIGNER], app[PAYWALL], app[LIVE_INFO] = [], [], [], [], [], {}
    app.router.add_get(routes.INFO, info)
    app.router.add_post(routes.SESSIONS, open_session)
    app.router.add_post(routes.FORWARD, forward)
    app.router.add_post(routes.STEPS, forward_steps)
    app.router.add_delete(routes.SESSION, close_session)
    app.cleanup_ctx.append(_expire_sessions)
    return app
