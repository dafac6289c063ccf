"""Running a server: load the span, measure it, announce it on chain, serve until stopped."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from pathlib import Path

from aiohttp import web

from efedllm.chain.protocol import Protocol, Status
from efedllm.model.source import resolve
from efedllm.model.span import LayerSpan, pick_device
from efedllm.server import throughput
from efedllm.server.app import HOOKS, create_app
from efedllm.server.config import ServerConfig
from efedllm.server.records import TaskStore
from efedllm.server.work import Committer, EpochTracker, recorder

log = logging.getLogger("efedllm.server")


def load(config: ServerConfig, *, progress=print) -> tuple[LayerSpan, dict]:
    source = resolve(config.model, progress=progress)
    device = pick_device(config.device)
    started = time.monotonic()
    span = LayerSpan(source.folder, config.first_layer, config.num_layers, device=device)
    end = config.first_layer + config.num_layers
    progress(f"loaded layers {config.first_layer}:{end} of {source.name} on {device} in {time.monotonic() - started:.1f}s")
    speed = throughput.measure(span)
    progress(f"throughput: {speed['decode_tokens_per_s']:.1f} tokens/s decoding, {speed['prefill_tokens_per_s']:.0f} tokens/s prefill")
    return span, speed


def announce(protocol: Protocol, config: ServerConfig, *, stake: int, progress=print) -> None:
    """Register this server on chain, or move its record to this endpoint and span."""
    me = protocol.signer.address
    record = next((s for s in protocol.servers() if s.address == me), None)
    registry = protocol.registry.functions
    span = (config.endpoint, config.first_layer, config.num_layers)
    if record is None:
        protocol.tx.send(registry.register(*span), value=stake, label="register")
        progress(f"registered {me} on chain for layers {config.first_layer}:{config.first_layer + config.num_layers}")
        return
    if record.status == Status.DEACTIVATED:
        progress(f"warning: {me} is deactivated on chain; clients will not route to it")
        return
    if (record.endpoint, record.first_layer, record.num_layers) != span:
        protocol.tx.send(registry.updateServer(*span), label="updateServer")
        progress(f"updated {me} on chain to {config.endpoint}, layers {config.first_layer}:{config.first_layer + config.num_layers}")


async def serve(app: web.Application, config: ServerConfig, *, background=(), progress=print) -> None:
    tasks = [asyncio.create_task(job()) for job in background]
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    await site.start()
    progress(f"serving on http://{config.host}:{config.port} (endpoint {config.endpoint})")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    progress("shutting down")
    for task in tasks:
        task.cancel()
    await runner.cleanup()


def run(config: ServerConfig, *, protocol: Protocol | None, stake: int, progress=print) -> None:
    span, speed = load(config, progress=progress)
    if protocol is not None:
        announce(protocol, config, stake=stake, progress=progress)
    app = create_app(span, config, info_fields={"throughput": speed, "endpoint": config.endpoint,
                                                "address": protocol.signer.address if protocol else None})
    background = []
    if protocol is not None:
        store = TaskStore(Path(config.data_dir) / f"tasks-{protocol.signer.address}.sqlite", server=protocol.signer.address)
        tracker = EpochTracker(protocol)
        app[HOOKS].append(recorder(store, tracker))
        committer = Committer(protocol, store)
        background = [tracker.run, committer.run]
        progress(f"recording tasks in {store.path}; {len(committer.pending())} epoch(s) awaiting commitment")
    asyncio.run(serve(app, config, background=background, progress=progress))
