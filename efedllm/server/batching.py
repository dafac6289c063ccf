"""Continuous batching of the server's steps (issue 16): steps of different sessions that are ready together run
as one forward pass (efedllm/model/batched.py), decode steps and prefills alike.

Steps queue as they arrive; while the compute thread runs one batch, the next fills up. When it is free, the
batcher takes the queued steps over the same layers as the first in line, in arrival order, up to ``max_batch``
steps and ``max_tokens`` tokens in all (a step longer than that runs alone), and runs them together: a decode step
is one token, a prefill (or a replay after failover) several, laid end to end. Each session still has at most one
step in flight (its lock in server/app.py), so a batch never holds two steps of one session.

Waiting for the others: many sessions in step through a pipeline of servers arrive at each server spread over a
few milliseconds (their client answers them one after another). Run at once, the first would go alone and the
rest in small batches, and the sessions would stay spread out; so when fewer steps are queued than sessions have
stepped lately over the same layers, the batcher waits for more, as long as they keep arriving (``gap_s`` apart),
up to ``wait_s`` in all. A session alone, or every active session already queued, never waits. A client process
sends its sessions' steps to a server together (client/lockstep.py); they arrive over a few milliseconds (each is
its own HTTP request), which the wait covers. Measured with bench/load.py (16 sessions from one client process on
2 cores): without the client's lockstep the mean batch was 2.4 to 3 (a wait of 10 ms, gap 2 ms); with it, 4.3 to 5
at that wait and 8 to 10 at 30 ms / 5 ms (the defaults) or 60 ms / 10 ms.

Threads: a pass of a few tokens (a decode step, a batch of up to ``one_thread_tokens``) runs on one CPU thread.
Its matrix products have a few rows; split over two threads, each product pays for waking the other, which sleeps
between operations (``OMP_WAIT_POLICY=PASSIVE``, efedllm/openmp.py). Measured on the 2-core machine (10 layers of
SmolLM2, medians of 25 passes, one and two threads alternating): one decode step 15.5 ms on one thread against
17.7 ms on two, a batch of 4 19.2 against 26.7 ms, of 8 31.3 against 37.2, of 12 35.0 against 37.8, of 16 51.2
against 50.7 (even); a prefill keeps every thread. And the core left free serves the pipeline's other stages: the
client, another server of the same machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field

import torch

from efedllm.model.batched import forward_batch
from efedllm.model.decoder import one_thread
from efedllm.model.span import LayerSpan
from efedllm.server.sessions import Session


@dataclass
class Step:
    span: LayerSpan
    session: Session
    hidden: torch.Tensor
    past: int
    done: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    @property
    def tokens(self) -> int:
        return self.hidden.shape[1]

    @property
    def decode(self) -> bool:
        return self.tokens == 1

    @property
    def key(self) -> tuple:
        return (id(self.span), self.session.start, self.session.end)


ACTIVE_S = 1.0
"""A session that sent a decode step within this many seconds counts as stepping now (a batch may wait for it)."""
GAP_S = 0.005
"""A batch stops waiting when no step arrived for this long (ServerConfig's ``batch_gap_ms``)."""


class Batcher:
    def __init__(
        self,
        executor: Executor,
        *,
        max_batch: int = 32,
        wait_s: float = 0.0,
        gap_s: float = GAP_S,
        max_tokens: int = 128,
        one_thread_tokens: int = 0,
    ):
        self.executor, self.max_batch, self.wait_s, self.gap_s = executor, max_batch, wait_s, gap_s
        self.max_tokens = max_tokens
        """Most tokens of one batch (a longer step runs alone): ServerLimits' ``batch_tokens``."""
        self.one_thread_tokens = one_thread_tokens
        """Passes of at most this many tokens in all run on one CPU thread (0: none); see the module's docstring."""
        self.queue: list[Step] = []
        self.running = False
        self.arrived = asyncio.Event()
        self.stepping: dict[tuple, dict[str, float]] = {}
        """Layers key -> session id -> when it last queued a decode step."""
        self.batches = 0
        """Forward passes run so far."""
        self.steps = 0
        """Steps served so far (``steps / batches``: the mean batch size)."""

    @property
    def queued(self) -> int:
        return len(self.queue)

    async def run(self, span: LayerSpan, session: Session, hidden: torch.Tensor, past: int) -> torch.Tensor:
        """The output of ``hidden`` through ``session``'s layers, computed alone or in a batch."""
        step = Step(span=span, session=session, hidden=hidden, past=past)
        self.queue.append(step)
        if step.decode:
            self.stepping.setdefault(step.key, {})[session.id] = time.monotonic()
        self.arrived.set()
        if not self.running:
            self.running = True
            asyncio.get_running_loop().create_task(self._drain())
        return await step.done

    def forget(self, session_id: str) -> None:
        """A closed session: no batch waits for it any more."""
        for recent in self.stepping.values():
            recent.pop(session_id, None)

    def _take(self) -> list[Step]:
        first = self.queue[0]
        batch, tokens = [], 0
        for step in self.queue:
            if len(batch) == self.max_batch:
                break
            if step.key == first.key and (not batch or tokens + step.tokens <= self.max_tokens):
                batch.append(step)
                tokens += step.tokens
        taken = {id(s) for s in batch}
        self.queue = [s for s in self.queue if id(s) not in taken]
        return batch

    async def _gather(self) -> None:
        """Wait, within ``wait_s``, for the decode steps of the sessions stepping over the first step's layers."""
        first = self.queue[0]
        if not first.decode or self.wait_s <= 0:
            return
        now = time.monotonic()
        recent = self.stepping.get(first.key, {})
        for sid in [sid for sid, t in recent.items() if now - t > ACTIVE_S]:
            del recent[sid]
        deadline = now + self.wait_s
        while True:
            queued = sum(1 for s in self.queue if s.decode and s.key == first.key)
            left = deadline - time.monotonic()
            if queued >= min(len(recent), self.max_batch) or left <= 0:
                return
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), min(self.gap_s, left))
            except TimeoutError:
                return

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self.queue:
                await self._gather()
                batch = self._take()
                try:
                    outputs = await loop.run_in_executor(self.executor, self._compute, batch)
                except Exception as exc:  # noqa: BLE001 - every step of the batch gets the error, the server goes on
                    for step in batch:
                        if not step.done.done():
                            step.done.set_exception(exc)
                    continue
                self.batches += 1
                self.steps += len(batch)
                for step, output in zip(batch, outputs):
                    if not step.done.done():  # its request may have timed out meanwhile
                        step.done.set_result(output)
        finally:
            self.running = False

    def _compute(self, batch: list[Step]) -> list[torch.Tensor]:
        tokens = sum(step.tokens for step in batch)
        few = tokens <= self.one_thread_tokens and batch[0].span.device.type == "cpu"
        with one_thread() if few else contextlib.nullcontext():
            return _compute(batch)


def _compute(batch: list[Step]) -> list[torch.Tensor]:
    first = batch[0]
    span, session = first.span, first.session
    if len(batch) == 1:
        hidden = first.hidden.to(span.device)
        return [span(hidden, session.cache, past=first.past, start=session.start, end=session.end).to("cpu")]
    outputs = forward_batch(
        span,
        [s.hidden for s in batch],
        [s.session.cache for s in batch],
        [s.past for s in batch],
        start=session.start,
        end=session.end,
    )
    return [o.to("cpu") for o in outputs]
