"""``efedllm dashboard``: serve the web dashboard (stakes, trust scores, status, rewards, live from the chain).

The page reads the chain itself, over JSON-RPC relayed through this server's ``/rpc`` (read-only methods
only), using the deployment file this server hands out. Nothing is cached here: every figure on the page
comes from the chain.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from aiohttp import web

from efedllm.chain.connection import connect
from efedllm.chain.deployment import deployments_dir
from efedllm.cli.common import add_chain_options
from efedllm.dashboard.app import DashboardConfig, create_app
from efedllm.dashboard.bundle import ensure_bundle
from efedllm.errors import EfedError
from efedllm.http import AppRunner

DEFAULT_PORT = 8600


def register(subparsers) -> None:
    parser = subparsers.add_parser("dashboard", help="serve the web dashboard of a deployment on localhost")
    add_chain_options(parser, signs=False)
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to listen on (default: %(default)s; 0.0.0.0 lets phones on the LAN in)",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="HTTP port (default: %(default)s)")
    parser.add_argument(
        "--poll",
        type=float,
        default=1.0,
        help="seconds between the page's checks for a new block (default: %(default)s)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.poll <= 0:
        raise EfedError("--poll must be a positive number of seconds")
    dist = ensure_bundle()
    config = DashboardConfig(
        rpc_url=args.rpc_url,
        dist=dist,
        deployment=args.deployment.resolve() if args.deployment else None,
        deployments_dir=deployments_dir().resolve(),
        poll_ms=int(args.poll * 1000),
    )
    asyncio.run(serve(config, host=args.host, port=args.port))
    return 0


def deployment_source(config: DashboardConfig) -> str:
    """The deployment file the page will get, for the start-up line: the one given, or the one named by the
    chain's id (looked up again on each page load, so a chain started later is still found)."""
    if config.deployment is not None:
        return str(config.deployment)
    try:
        chain_id = connect(config.rpc_url, timeout=3).eth.chain_id
    except EfedError:
        return f"from {config.deployments_dir} by chain id, once the chain at {config.rpc_url} answers"
    return str(config.deployments_dir / f"{chain_id}.json")


async def serve(config: DashboardConfig, *, host: str, port: int) -> None:
    runner = AppRunner(create_app(config), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise EfedError(f"cannot listen on {host}:{port} ({exc.strerror}); pick another --port") from None
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
    source = deployment_source(config)
    print(
        f"dashboard at http://{shown}:{port}/ reading {config.rpc_url} (read-only calls relayed via /rpc), "
        f"deployment {source}; Ctrl-C to stop",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    print("dashboard stopped", flush=True)
    await runner.cleanup()
