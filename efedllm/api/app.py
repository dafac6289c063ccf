"""The HTTP side of ``efedllm api``: OpenAI's routes, answers and server-sent events, over api/engine.py.

Each request's generation runs in a worker thread of a pool of ``max_concurrent``; more requests wait for a worker
in arrival order. A stream is fed from the worker through an asyncio queue; a client that goes away cancels its
generation at the next token (its inference session closes, what it was sent is paid for).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web, web_protocol

from efedllm.api.bodies import ApiError, Generation, parse
from efedllm.api.config import ApiConfig
from efedllm.api.engine import Engine, Result
from efedllm.errors import EfedError
from efedllm.http import body_error, read_body, too_large
from efedllm.rpc import routes

log = logging.getLogger("efedllm.api")

ENGINE = web.AppKey("engine", Engine)
CONFIG = web.AppKey("config", ApiConfig)
NAME = web.AppKey("name", str)
EXECUTOR = web.AppKey("executor", ThreadPoolExecutor)
KEY = web.AppKey("key", str)
"""The bearer token every request must carry ('' : none)."""


def error(exc: ApiError) -> web.Response:
    return web.json_response(exc.body(), status=exc.status)


@web.middleware
async def openai_errors(request: web.Request, handler):
    """Every error as OpenAI shapes it, 4xx for what the client can fix; a network failure is 503."""
    try:
        key = request.app[KEY]
        if key and request.headers.get("Authorization", "") != f"Bearer {key}":
            raise ApiError(
                "a valid API key is required (Authorization: Bearer ...)", status=401, code="invalid_api_key"
            )
        if too_large(request):
            raise ApiError(f"the body may hold at most {request.client_max_size} bytes", status=413)
        return await handler(request)
    except ApiError as exc:
        return error(exc)
    except web_protocol.RequestPayloadError as exc:
        return error(ApiError(f"the request body cannot be read: {body_error(exc)}"))
    except EfedError as exc:  # the network could not serve (no route, every server busy or down)
        return error(ApiError(str(exc), status=503, type="server_error", code="network_unavailable"))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error(ApiError(exc.reason, status=exc.status, code=exc.reason.lower().replace(" ", "_")))
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error(ApiError("internal server error", status=500, type="server_error"))


async def models(request: web.Request) -> web.Response:
    name = request.app[NAME]
    return web.json_response(
        {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "efedllm"}]}
    )


async def model(request: web.Request) -> web.Response:
    name = request.app[NAME]
    if request.match_info["model"] != name:
        raise ApiError(
            f"the model {request.match_info['model']!r} does not exist here", status=404, code="model_not_found"
        )
    return web.json_response({"id": name, "object": "model", "created": 0, "owned_by": "efedllm"})


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await _complete(request, chat=True)


async def completions(request: web.Request) -> web.StreamResponse:
    return await _complete(request, chat=False)


async def _complete(request: web.Request, *, chat: bool) -> web.StreamResponse:
    config = request.app[CONFIG]
    try:
        body = json.loads(await read_body(request))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise ApiError("the request body is not valid JSON") from None
    generation = parse(
        body,
        chat=chat,
        served=request.app[NAME],
        max_tokens=config.max_tokens,
        default_max_tokens=config.default_max_tokens,
    )
    ident = ("chatcmpl-" if chat else "cmpl-") + secrets.token_hex(12)
    if generation.stream:
        return await _stream(request, generation, ident=ident, chat=chat)
    loop = asyncio.get_running_loop()
    engine = request.app[ENGINE]
    result = await loop.run_in_executor(request.app[EXECUTOR], lambda: engine.run(generation))
    return web.json_response(_answer(generation, result, ident=ident, chat=chat))


def _usage(result: Result) -> dict:
    return {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "total_tokens": result.prompt_tokens + result.completion_tokens,
    }


def _answer(generation: Generation, result: Result, *, ident: str, chat: bool) -> dict:
    if chat:
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": result.text},
            "logprobs": None,
            "finish_reason": result.finish_reason,
        }
    else:
        choice = {"index": 0, "text": result.text, "logprobs": None, "finish_reason": result.finish_reason}
    return {
        "id": ident,
        "object": "chat.completion" if chat else "text_completion",
        "created": int(time.time()),
        "model": generation.model,
        "choices": [choice],
        "usage": _usage(result),
    }


async def _stream(request: web.Request, generation: Generation, *, ident: str, chat: bool) -> web.StreamResponse:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    gone = False
    created = int(time.time())

    def chunk(choices: list, **extra) -> bytes:
        body = {
            "id": ident,
            "object": "chat.completion.chunk" if chat else "text_completion",
            "created": created,
            "model": generation.model,
            "choices": choices,
            **extra,
        }
        return b"data: " + json.dumps(body).encode() + b"\n\n"

    def piece(text: str | None = None, finish: str | None = None, *, first: bool = False) -> bytes:
        if chat:
            delta = {"role": "assistant", "content": ""} if first else ({"content": text} if text is not None else {})
            return chunk([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}])
        return chunk([{"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}])

    engine = request.app[ENGINE]
    job = loop.run_in_executor(
        request.app[EXECUTOR],
        lambda: engine.run(
            generation, on_text=lambda t: loop.call_soon_threadsafe(queue.put_nowait, t), cancelled=lambda: gone
        ),
    )
    job.add_done_callback(lambda _: loop.call_soon_threadsafe(queue.put_nowait, None))
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    try:
        first = await queue.get()  # the first token, or the end: an error before it is still a JSON answer
        if first is None and job.exception() is not None:
            raise job.exception()
        await response.prepare(request)
        if chat:
            await response.write(piece(first=True))
        while first is not None:
            await response.write(piece(first))
            first = await queue.get()
        result = await job
        await response.write(piece(None if chat else "", result.finish_reason))
        if generation.include_usage:
            await response.write(chunk([], usage=_usage(result)))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
    except (ConnectionResetError, asyncio.CancelledError):
        gone = True  # the client went away: the generation ends at its next token
        raise
    except EfedError as exc:
        gone = True
        if not response.prepared:
            raise
        body = ApiError(str(exc), status=503, type="server_error", code="network_unavailable").body()
        await response.write(b"data: " + json.dumps(body).encode() + b"\n\n")
    return response


def create_app(engine: Engine, config: ApiConfig, *, name: str, key: str = "") -> web.Application:
    app = web.Application(middlewares=[openai_errors], client_max_size=config.max_body_bytes)
    app[ENGINE], app[CONFIG], app[NAME], app[KEY] = engine, config, name, key
    app[EXECUTOR] = ThreadPoolExecutor(max_workers=config.max_concurrent, thread_name_prefix="api-generation")
    app.router.add_get(routes.API_MODELS, models)
    app.router.add_get(routes.API_MODEL, model)
    app.router.add_post(routes.API_CHAT, chat_completions)
    app.router.add_post(routes.API_COMPLETIONS, completions)

    async def shutdown(app: web.Application) -> None:
        app[EXECUTOR].shutdown(wait=False, cancel_futures=True)

    app.on_cleanup.append(shutdown)
    return app
