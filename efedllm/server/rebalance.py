"""Taking over layers nobody serves (``--rebalance``), as Petals servers move to the weakest blocks.

When a server is deactivated its layers may be left without any active server, and no client can generate. A
rebalancing server watches the chain's coverage; when layers that a server left (deactivated or inactive) are
uncovered and every layer of its own span is also served by someone else (so moving uncovers nothing), it loads
the first uncovered run (up to ``max_layers``),
starts serving it, and moves its on-chain record there with ``updateServer``. A random delay and a second look
at the coverage just before moving keep two idle servers from rushing to the same gap.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

from aiohttp import web

from efedllm.chain.protocol import Protocol, Status
from efedllm.model.span import LayerSpan
from efedllm.server.app import serving, use_span
from efedllm.server.config import ServerConfig

log = logging.getLogger("efedllm.server.rebalance")


def target_span(coverage: list[int], *, mine: range, capacity: int) -> range | None:
    """Where this server should move, or None: the first run of uncovered layers (at most ``capacity`` long),
    provided every layer this server serves now has another active server."""
    if not any(c == 0 for c in coverage) or any(coverage[layer] < 2 for layer in mine):
        return None
    start = coverage.index(0)
    end = start
    while end < len(coverage) and coverage[end] == 0 and end - start < capacity:
        end += 1
    return range(start, end)


class Rebalancer:
    def __init__(
        self,
        protocol: Protocol,
        app: web.Application,
        config: ServerConfig,
        *,
        load: Callable[[int, int], LayerSpan],
        interval: float = 2.0,
        jitter: float = 3.0,
        progress=print,
    ):
        self.protocol, self.app, self.config, self.load = protocol, app, config, load
        self.interval, self.jitter, self.progress = interval, jitter, progress

    def _plan(self) -> range | None:
        me = self.protocol.signer.address
        servers = self.protocol.servers()
        record = next((s for s in servers if s.address == me), None)
        if record is None or record.status != Status.ACTIVE:
            return None
        capacity = self.config.max_layers or record.num_layers
        target = target_span(self.protocol.coverage(), mine=record.layers, capacity=capacity)
        if target is None or not any(
            s.status != Status.ACTIVE and set(s.layers) & set(target) for s in servers
        ):  # only layers a server left: not layers whose servers are still starting up (and registering)
            return None
        return target

    async def step(self) -> bool:
        """One look at the chain; moves and returns True when there was somewhere to go."""
        loop = asyncio.get_running_loop()
        target = await loop.run_in_executor(None, self._plan)
        if target is None:
            return False
        await asyncio.sleep(random.uniform(0, self.jitter))
        target = await loop.run_in_executor(None, self._plan)
        if target is None:
            return False
        self.progress(f"layers {target.start}:{target.stop} are served by nobody; loading them to take over")
        span = await loop.run_in_executor(None, self.load, target.start, len(target))
        registry = self.protocol.registry.functions
        call = registry.updateServer(self.config.endpoint, target.start, len(target))
        await loop.run_in_executor(None, lambda: self.protocol.tx.send(call, label="updateServer"))
        old = serving(self.app).span
        use_span(self.app, span)
        del old
        self.progress(f"now serving layers {target.start}:{target.stop} (moved on chain with updateServer)")
        return True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.step()
            except Exception as exc:  # noqa: BLE001 - try again on the next look
                log.warning("rebalancing failed (%s: %s)", exc.__class__.__name__, exc)
