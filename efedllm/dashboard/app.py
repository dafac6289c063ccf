"""The dashboard's HTTP server (aiohttp).

``GET /``, ``/app.js``, ``/app.css``: the built frontend. ``GET /deployment.json``: the deployment file, read
and validated on every request, so a deployment made after the dashboard started is picked up by the page.
``GET /config.json``: where the page finds the RPC relay and how often it polls. ``POST /rpc``: the page's
JSON-RPC calls (single or batched), relayed to the chain when every method is a read; anything that could
send a transaction or change the node is refused with 403, so an unlocked dev node is not exposed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from efedllm import http
from efedllm.chain.deployment import Deployment, read_json
from efedllm.errors import EfedError

log = logging.getLogger("efedllm.dashboard")

READ_METHODS = frozenset(
    {
        "eth_chainId",
        "net_version",
        "web3_clientVersion",
        "eth_blockNumber",
        "eth_getBlockByNumber",
        "eth_call",
        "eth_getLogs",
        "eth_getCode",
        "eth_getBalance",
        "eth_getTransactionReceipt",
    }
)
NO_CACHE = {"Cache-Control": "no-store"}


@dataclass(frozen=True, kw_only=True)
class DashboardConfig:
    rpc_url: str
    dist: Path
    deployment: Path | None = None
    """The deployment file; None: ``<deployments_dir>/<chain id>.json`` for the chain at rpc_url."""
    deployments_dir: Path = Path("deployments")
    poll_ms: int = 1000
    rpc_timeout_s: float = 60.0


CONFIG = web.AppKey("config", DashboardConfig)
SESSION = web.AppKey("session", aiohttp.ClientSession)


def json_error(status: int, message: str) -> web.Response:
    return http.json_error(status, message, headers=NO_CACHE)


errors_as_json = http.json_errors(log, headers=NO_CACHE)


class NoChain(Exception):
    pass


async def _upstream(app: web.Application, body: bytes) -> tuple[int, bytes]:
    config = app[CONFIG]
    try:
        async with app[SESSION].post(
            config.rpc_url, data=body, headers={"content-type": "application/json"}
        ) as response:
            return response.status, await response.read()
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        raise NoChain(f"no chain reachable at {config.rpc_url} ({type(exc).__name__})") from None


async def relay(request: web.Request) -> web.Response:
    body = await request.read()
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # syntax, bad UTF-8, a number past the digit limit, too deep
        return json_error(400, "the body is not JSON")
    calls = payload if isinstance(payload, list) else [payload]
    if not calls or not all(isinstance(c, dict) for c in calls):
        return json_error(400, "expected a JSON-RPC request or a batch of them")
    refused = sorted(
        {
            str(c.get("method"))[:80]
            for c in calls
            if not (isinstance(c.get("method"), str) and c["method"] in READ_METHODS)
        }
    )
    if refused:
        return json_error(403, f"the dashboard relays read-only calls only; refused: {', '.join(refused)}")
    try:
        status, data = await _upstream(request.app, body)
    except NoChain as exc:
        return json_error(502, str(exc))
    if status >= 500:
        return json_error(502, f"the chain answered HTTP {status}")
    return web.Response(body=data, status=status, content_type="application/json", headers=NO_CACHE)


async def deployment_file(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    path = config.deployment
    if path is None:
        try:
            _, data = await _upstream(request.app, b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}')
            chain_id = int(json.loads(data)["result"], 16)
        except NoChain as exc:
            return json_error(502, str(exc))
        except (ValueError, KeyError, TypeError):
            return json_error(502, f"{config.rpc_url} did not answer eth_chainId")
        path = config.deployments_dir / f"{chain_id}.json"
    if not path.is_file():
        return json_error(404, f"no deployment file at {path}; deploy first with `efedllm deploy`")
    try:
        data = read_json(path)
        Deployment.from_json(data, source=str(path))
    except EfedError as exc:
        return json_error(422, str(exc))
    return web.json_response(data, headers=NO_CACHE)


async def page_config(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    return web.json_response(
        {"rpc": "rpc", "deployment": "deployment.json", "rpcUrl": config.rpc_url, "pollMs": config.poll_ms},
        headers=NO_CACHE,
    )


async def asset(request: web.Request) -> web.FileResponse:
    """A file of the bundle by its bare name (no subfolders, so no path can leave dist)."""
    dist = request.app[CONFIG].dist
    name = request.match_info.get("name") or "index.html"
    if name.startswith(".") or name not in {p.name for p in dist.iterdir() if p.is_file()}:
        raise web.HTTPNotFound(reason=f"no such file: /{name}")
    return web.FileResponse(dist / name, headers={"Cache-Control": "no-cache"})


async def _client_session(app: web.Application):
    timeout = aiohttp.ClientTimeout(total=app[CONFIG].rpc_timeout_s, sock_connect=3)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        app[SESSION] = session
        yield


def create_app(config: DashboardConfig) -> web.Application:
    app = web.Application(middlewares=[errors_as_json], client_max_size=8 * 1024 * 1024)
    app[CONFIG] = config
    app.cleanup_ctx.append(_client_session)
    app.router.add_post("/rpc", relay)
    app.router.add_get("/deployment.json", deployment_file)
    app.router.add_get("/config.json", page_config)
    app.router.add_get("/", asset)
    app.router.add_get("/{name}", asset)
    return app
