"""Running a server: load the span, measure it, announce it on chain, assemble its parts, serve until stopped.

Between assembling and serving, ``run`` hands the parts (``ServerParts``) to the caller's ``extensions``, which may
adapt them through the seams each part has (the app's output filters and step hooks, the committer's
``claim_units``, the openings handler): this is how the CLI installs a test aid (efedllm/aids/) without a test
branch in the production paths.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from efedllm.chain.protocol import Protocol, Status
from efedllm.chain.views import Serving
from efedllm.http import AppRunner
from efedllm.model.serving import apply_serving
from efedllm.model.source import resolve
from efedllm.model.span import LayerSpan, pick_device
from efedllm.receipts import typed_signer
from efedllm.rpc import routes
from efedllm.rpc.messages import Throughput
from efedllm.server import openings, throughput
from efedllm.server.app import HOOKS, LIVE_INFO, PAYWALL, SIGNER, create_app, serving
from efedllm.server.challenges import Responder
from efedllm.server.config import ServerConfig
from efedllm.server.payments import Paywall, ReceiptBook, Redeemer
from efedllm.server.rebalance import Rebalancer
from efedllm.server.records import TaskStore
from efedllm.server.rewards import auto_claim
from efedllm.server.verdicts import Verdicts
from efedllm.server.work import Committer, EpochTracker, recorder

log = logging.getLogger("efedllm.server")


@dataclass
class ServerParts:
    """A server assembled but not yet serving: what ``run``'s extensions may adapt."""

    app: web.Application
    committer: Committer | None = None
    """Posts the work commitments (on chain only)."""
    openings: Callable | None = None
    """The ``POST /openings`` handler, routed once the extensions have run (on chain only)."""


def load_span(config: ServerConfig, first: int, count: int, *, progress=print) -> LayerSpan:
    """Layers ``[first, first + count)`` of the configured model on the configured device (also used when
    rebalancing moves the server to other layers)."""
    folder, name = weights_folder(config, first, count, progress=progress)
    device = pick_device(config.device)
    started = time.monotonic()
    span = apply_serving(LayerSpan(folder, first, count, device=device), config.serving)
    progress(
        f"loaded layers {first}:{first + count} of {name} on {device} as {config.serving.label} in "
        f"{time.monotonic() - started:.1f}s"
    )
    return span


def weights_folder(config: ServerConfig, first: int, count: int, *, progress=print) -> tuple[Path, str]:
    """A local folder holding the span's weights, and the model's name: the local model, or the span fetched from
    the weight source at ``config.weights_from``, every checksum verified (cached across restarts)."""
    if config.weights_from is None:
        source = resolve(config.model, progress=progress)
        return source.folder, source.name
    from efedllm.weights.client import fetch_span

    fetched = fetch_span(
        config.weights_from,
        first=first,
        count=count,
        codec=config.weights_codec,
        energy=config.weights_energy,
        ratio=config.weights_ratio,
        model=config.model,
        progress=progress,
    )
    for line in fetched.summary():
        progress(line)
    return fetched.folder, fetched.report["model"]


def load(config: ServerConfig, *, progress=print) -> tuple[LayerSpan, dict]:
    span = load_span(config, config.first_layer, config.num_layers, progress=progress)
    speed = throughput.measure(span)
    progress(
        f"throughput: {speed['decode_tokens_per_s']:.1f} tokens/s decoding, {speed['prefill_tokens_per_s']:.0f} tokens/s prefill"
    )
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
        announce_price(protocol, config.price, progress=progress)
        announce_serving(protocol, config.serving, declared=Serving(), progress=progress)
        return
    announce_price(protocol, config.price, progress=progress)
    if record.status == Status.DEACTIVATED:
        progress(f"warning: {me} is deactivated on chain; clients will not route to it")
        return
    announce_serving(protocol, config.serving, declared=record.serving, progress=progress)
    if (record.endpoint, record.first_layer, record.num_layers) != span:
        protocol.tx.send(registry.updateServer(*span), label="updateServer")
        progress(
            f"updated {me} on chain to {config.endpoint}, layers {config.first_layer}:{config.first_layer + config.num_layers}"
        )


def announce_serving(protocol: Protocol, serving: Serving, *, declared: Serving, progress=print) -> None:
    """Declare ``serving`` on chain unless it is what the server ``declared`` last. A change holds from the next
    full epoch (the registration epoch: at once): until then verifiers check this server's work against the old
    declaration, so change configuration at an epoch's start (docs/GPU_PROVIDERS.md)."""
    if serving == declared:
        return
    tx = protocol.tx.send(protocol.registry.functions.declareServing(serving.as_tuple()), label="declareServing")
    event = protocol.registry.events.ServingDeclared().process_receipt(tx)
    since = f" from epoch {event[0]['args']['fromEpoch']}" if event else ""
    progress(f"declared serving {serving.label} on chain{since}")


def announce_price(protocol: Protocol, price: int, *, progress=print) -> None:
    """Put ``price`` (wei per token-layer) on chain unless it is there already."""
    if protocol.payments.functions.priceOf(protocol.signer.address).call() != price:
        protocol.tx.send(protocol.payments.functions.announcePrice(price), label="announcePrice")
        progress(f"announced a price of {price} wei per token-layer")


async def serve(
    app: web.Application, config: ServerConfig, *, background=(), progress=print, sock: socket.socket | None = None
) -> None:
    tasks = [asyncio.create_task(job()) for job in background]
    runner = AppRunner(app, access_log=None)
    await runner.setup()
    site = web.SockSite(runner, sock) if sock is not None else web.TCPSite(runner, config.host, config.port)
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


def run(
    config: ServerConfig,
    *,
    protocol: Protocol | None,
    stake: int,
    progress=print,
    extensions: tuple[Callable[[ServerParts], None], ...] = (),
    sock: socket.socket | None = None,
) -> None:
    """``sock``: the listening socket, already bound (the CLI binds it before touching the chain)."""
    span, speed = load(config, progress=progress)
    if protocol is not None:
        announce(protocol, config, stake=stake, progress=progress)
    app = create_app(
        span, config, throughput=Throughput(**speed), address=protocol.signer.address if protocol else None
    )
    parts = ServerParts(app=app)
    background = []
    if protocol is not None:
        me = protocol.signer.address
        store = TaskStore(Path(config.data_dir) / f"tasks-{me}.sqlite", server=me)
        tracker = EpochTracker(protocol)
        app[HOOKS].append(recorder(store, tracker))
        sign, domain = typed_signer(protocol.w3, protocol.signer), protocol.answer_domain
        app[SIGNER].append(lambda answer: sign.sign(domain, answer))
        book = ReceiptBook(Path(config.data_dir) / f"receipts-{me}.sqlite")
        paywall = Paywall(
            price=config.price, me=me, domain=protocol.receipt_domain, epoch=lambda: tracker.epoch, book=book
        )
        app[PAYWALL].append(paywall)
        app[LIVE_INFO]["epoch"] = lambda: tracker.epoch
        parts.openings = openings.handler(
            store=store, roles=openings.VerifierRoles(protocol), chain_id=protocol.w3.eth.chain_id
        )
        parts.committer = committer = Committer(protocol, store)
        committer.live_sessions = lambda: serving(app).store.ids()
        background = [
            tracker.run,
            committer.run,
            Verdicts(protocol).run,
            Responder(protocol, store).run,
            Redeemer(protocol, book, epoch=lambda: tracker.epoch).run,
        ]
        progress(f"recording tasks in {store.path}; {len(committer.pending())} epoch(s) awaiting commitment")
        if config.rebalance:
            rebalancer = Rebalancer(
                protocol,
                app,
                config,
                progress=progress,
                load=lambda first, count: load_span(config, first, count, progress=progress),
            )
            background.append(rebalancer.run)
        if config.auto_claim:
            background.append(lambda: auto_claim(protocol))
    for extend in extensions:
        extend(parts)
    if parts.openings is not None:
        app.router.add_post(routes.OPENINGS, parts.openings)
    asyncio.run(serve(app, config, background=background, progress=progress, sock=sock))
