"""The weight source's HTTP face (aiohttp). Routes:

``GET /info``                                  the model, its layer count, the codecs offered
``GET /manifest?first=&count=&codec=&energy=|ratio=``   every tensor of the span: codec, shape, k, bytes, sha256
``GET /tensors/{name}?codec=&energy=|ratio=``  one tensor's blob (safetensors bytes, see compression/codec.py)

Inputs are bounded (layers inside the model, known codecs, energy in (0, 1], ratio in (0, 1), tensor names of the
model's layers only) and every error is a JSON body ``{"error": ...}`` with a 4xx status. Encoding runs on one
worker thread, so the event loop keeps answering while a span is factored.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from efedllm.compression.codec import CODECS, CodecSpec
from efedllm.errors import EfedError
from efedllm.http import json_error, json_errors
from efedllm.weights.source import WeightSource

log = logging.getLogger("efedllm.weights")
SOURCE = web.AppKey("source", WeightSource)
EXECUTOR = web.AppKey("executor", ThreadPoolExecutor)
CONTENT_TYPE = "application/vnd.efedllm.safetensors"


errors_as_json = json_errors(log, {EfedError: lambda exc: 400})


async def info(request: web.Request) -> web.Response:
    source = request.app[SOURCE]
    return web.json_response(
        {"model": source.name, "num_layers": source.num_layers, "codecs": list(CODECS), "svd_method": source.method}
    )


async def manifest(request: web.Request) -> web.Response:
    source = request.app[SOURCE]
    first, count = _int(request, "first", 0), _int(request, "count", None)
    if count is None:
        count = source.num_layers - first
    source.check_span(first, count)
    spec = CodecSpec.from_query(request.query)
    loop = asyncio.get_running_loop()
    body = await loop.run_in_executor(request.app[EXECUTOR], source.manifest, first, count, spec)
    return web.json_response(body)


async def tensor(request: web.Request) -> web.Response:
    source = request.app[SOURCE]
    name = request.match_info["name"]
    if name not in source.layer_of:
        return json_error(404, f"no tensor {name[:120]!r} in this model's layers")
    spec = CodecSpec.from_query(request.query)
    loop = asyncio.get_running_loop()
    data = await loop.run_in_executor(request.app[EXECUTOR], source.blob, name, spec)
    return web.Response(body=data, content_type=CONTENT_TYPE)


def _int(request: web.Request, key: str, default: int | None) -> int | None:
    text = request.query.get(key)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit() and len(text) <= 6):
        raise EfedError(f"{key} must be a non-negative integer, got {text[:20]!r}")
    return int(text)


def create_app(source: WeightSource) -> web.Application:
    app = web.Application(middlewares=[errors_as_json], client_max_size=64 * 1024)
    app[SOURCE] = source
    app[EXECUTOR] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="encode")
    app.router.add_get("/info", info)
    app.router.add_get("/manifest", manifest)
    app.router.add_get("/tensors/{name}", tensor)

    async def shutdown(app: web.Application) -> None:
        app[EXECUTOR].shutdown(wait=False, cancel_futures=True)

    app.on_shutdown.append(shutdown)
    return app
