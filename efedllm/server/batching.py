"""Continuous batching of the server's steps (issue 16): decode steps of different sessions that are ready
together run as one forward pass (efedllm/model/batched.py).

Steps queue as they arrive; while the compute thread runs one batch, the next fills up. When it is free, the
batcher takes every queued one-token step over the same layers as the first in line (up to ``max_batch``) and
runs them together; a step of several tokens (a prefill, a replay after failover) runs alone, in arrival order.
Each session still has at most one step in flight (its lock in server/app.py), so a batch never holds two steps
of one session.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from dataclasses import dataclass, field

import torch

from efedllm.model.batched import decode_batch
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
    def batchable(self) -> bool:
        return self.hidden.shape[1] == 1

    @property
    def key(self) -> tuple:
        return (id(self.span), self.session.start, self.session.end)


class Batcher:
    def __init__(self, executor: Executor, *, max_batch: int = 32):
        self.executor, self.max_batch = executor, max_batch
        self.queue: list[Step] = []
        self.running = False
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
        if not self.running:
            self.running = True
            asyncio.get_running_loop().create_task(self._drain())
        return await step.done

    def _take(self) -> list[Step]:
        first = self.queue[0]
        if not first.batchable:
            return [self.queue.pop(0)]
        batch = [s for s in self.queue if s.batchable and s.key == first.key][: self.max_batch]
        taken = {id(s) for s in batch}
        self.queue = [s for s in self.queue if id(s) not in taken]
        return batch

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self.queue:
                batch = self._take()
                try:
                    outputs = await loop.run_in_executor(self.executor, _compute, batch)
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


def _compute(batch: list[Step]) -> list[torch.Tensor]:
    first = batch[0]
    span, session = first.span, first.session
    if len(batch) == 1:
        hidden = first.hidden.to(span.device)
        return [span(hidden, session.cache, past=first.past, start=session.start, end=session.end).to("cpu")]
    outputs = decode_batch(
        span,
        [s.hidden for s in batch],
        [s.session.cache for s in batch],
        [s.past for s in batch],
        start=session.start,
        end=session.end,
    )
    return [o.to("cpu") for o in outputs]
