"""The HTTP face of a server (aiohttp). Routes:

``GET /info``                         what this server serves and how fast
``POST /sessions``                    open a session over layers [start, end) of the span (JSON, optional)
``POST /sessions/{id}/forward``       run new hidden states (safetensors body) -> output hidden states
``DELETE /sessions/{id}``             close a session

Every error is a JSON body ``{"error": ...}`` with a 4xx status (5xx only for a bug), and one bad request never
disturbs other sessions. Compute runs on one worker thread, so the event loop keeps answering while a step runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from efedllm import wire
from efedllm.model.span import LayerSpan
from efedllm.server.config import ServerConfig
from efedllm.server.sessions import SessionError, SessionStore

log = logging.getLogger("efedllm.server")
SPAN = web.AppKey("span", LayerSpan)
STORE = web.AppKey("store", SessionStore)
CONFIG = web.AppKey("config", ServerConfig)
INFO = web.AppKey("info", dict)
EXECUTOR = web.AppKey("executor", ThreadPoolExecutor)
HOOKS = web.AppKey("hooks", list)
"""Callables run after each served step, before its answer goes out, with keyword arguments session, inputs,
outputs and past: the task recorder (server/work.py) hooks in here."""


def json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message, "status": status}, status=status)


@web.middleware
async def errors_as_json(request: web.Request, handler):
    try:
        return await handler(request)
    except SessionError as exc:
        return json_error(exc.status, str(exc))
    except wire.WireError as exc:
        return json_error(400, str(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return json_error(exc.status, exc.reason if exc.text is None or exc.text.startswith(str(exc.status)) else exc.text)
    except Exception:  # noqa: BLE001 - a bug: log it, answer 500, keep serving
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_error(500, "internal server error")


async def info(request: web.Request) -> web.Response:
    app = request.app
    store = app[STORE]
    return web.json_response({**app[INFO], "sessions": len(store), "cache_bytes": store.cache_bytes})


async def open_session(request: web.Request) -> web.Response:
    span, store = request.app[SPAN], request.app[STORE]
    body = await _json_body(request)
    start = body.get("start", span.first)
    end = body.get("end", span.first + span.count)
    if not (isinstance(start, int) and isinstance(end, int)) or isinstance(start, bool) or isinstance(end, bool):
        raise SessionError(400, "start and end must be integers")
    if not span.first <= start < end <= span.first + span.count:
        raise SessionError(400, f"layers {start}:{end} are not within this server's span {span.first}:{span.first + span.count}")
    session = store.open(start, end, span.new_cache())
    return web.json_response({"session": session.id, "start": start, "end": end}, status=201)


async def forward(request: web.Request) -> web.Response:
    app = request.app
    span, store, limits = app[SPAN], app[STORE], app[CONFIG].limits
    session = store.get(request.match_info["session_id"])
    data = await request.read()
    hidden = wire.decode(data, hidden_size=span.config.hidden_size, dtype=span.dtype, max_tokens=limits.max_step_tokens)
    async with session.lock:
        store.reserve(session, hidden.shape[1])
        loop = asyncio.get_running_loop()
        past = session.length
        step = loop.run_in_executor(
            app[EXECUTOR],
            lambda: span(hidden.to(span.device), session.cache, past=past, start=session.start, end=session.end),
        )
        output = (await asyncio.wait_for(step, limits.step_timeout)).to("cpu")
        session.length += hidden.shape[1]
    for hook in app[HOOKS]:
        hook(session=session, inputs=hidden, outputs=output, past=past)
    return web.Response(body=wire.encode(output), content_type=wire.CONTENT_TYPE)


async def close_session(request: web.Request) -> web.Response:
    closed = request.app[STORE].close(request.match_info["session_id"])
    if not closed:
        raise SessionError(404, "unknown or expired session")
    return web.json_response({"closed": True})


async def _json_body(request: web.Request) -> dict:
    if not request.can_read_body:
        return {}
    try:
        body = json.loads(await request.text() or "{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise SessionError(400, "body must be JSON") from None
    if not isinstance(body, dict):
        raise SessionError(400, "body must be a JSON object")
    return body


async def _expire_sessions(app: web.Application):
    async def loop():
        while True:
            await asyncio.sleep(max(1.0, app[CONFIG].limits.session_ttl / 4))
            dropped = app[STORE].expire()
            if dropped:
                log.info("expired %d idle sessions", dropped)

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    app[EXECUTOR].shutdown(wait=False, cancel_futures=True)


def create_app(span: LayerSpan, config: ServerConfig, *, info_fields: dict | None = None) -> web.Application:
    app = web.Application(middlewares=[errors_as_json], client_max_size=config.limits.max_body_bytes)
    app[SPAN], app[CONFIG] = span, config
    app[STORE] = SessionStore(config.limits, bytes_per_token=span.kv_bytes_per_token())
    app[EXECUTOR] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="efedllm-compute")
    app[HOOKS] = []
    app[INFO] = {
        "model": config.model,
        "first_layer": span.first,
        "num_layers": span.count,
        "hidden_size": span.config.hidden_size,
        "dtype": str(span.dtype).removeprefix("torch."),
        "device": str(span.device),
        "max_sequence": config.limits.max_sequence,
        "max_step_tokens": config.limits.max_step_tokens,
        "max_sessions": config.limits.max_sessions,
        **(info_fields or {}),
    }
    app.router.add_get("/info", info)
    app.router.add_post("/sessions", open_session)
    app.router.add_post("/sessions/{session_id}/forward", forward)
    app.router.add_delete("/sessions/{session_id}", close_session)
    app.cleanup_ctx.append(_expire_sessions)
    return app
