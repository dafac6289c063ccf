"""Where a hop's time goes: one decode step through 10 layers back to back, after the process sat idle as a
pipeline stage does, and over HTTP to a server; side by side in one run, rounds alternating.

    python bench/idle.py [--rounds 5] [--steps 30]

A stage of a three-server pipeline serving one stream works about a third of each token and waits the rest (the
other stages, the client's head), then gets the next step. On the 2-core machine a step that follows such a wait
is slower than one that follows another step at once, with the same code and the same weights: the process's
caches and its CPU's state went to the others meanwhile (on a virtual machine an idle vCPU may also be halted).
This separates that cost from the HTTP hop's own:

- in process, back to back: layers 10:20 of the packaged model (float32, one thread, as a server runs a decode
  step), one step after another;
- in process, after ``--idle-ms`` (40) of sleep before each step, about what a stage waits per token here;
- over HTTP: the same layers in an ``efedllm server`` process (no chain), one step sent right after the answer
  to the one before (the round trip as the client measures it, wire encoding and aiohttp included).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from efedllm.openmp import OPENMP_ENV

os.environ.update({k: os.environ.get(k, v) for k, v in OPENMP_ENV.items()})  # before torch loads

import requests
import torch

from efedllm.chain.anvil import free_port
from efedllm.cli.common import table
from efedllm.localnet import ServerProcess, start_all, stop_all
from efedllm.model.decoder import one_thread
from efedllm.model.source import resolve
from efedllm.model.span import LayerSpan
from efedllm.rpc.client import ServerClient

FIRST, COUNT, PROMPT_TOKENS = 10, 10, 35
BACK_TO_BACK, AFTER_IDLE, OVER_HTTP = "in process, back to back", "in process, after {} ms idle", "over HTTP"


def in_process(span: LayerSpan, *, steps: int, idle: float) -> float:
    """Median ms of a decode step after a prompt, each step preceded by ``idle`` seconds of sleep."""
    cache, past, times = span.new_cache(), PROMPT_TOKENS, []
    span(torch.randn(1, PROMPT_TOKENS, span.config.hidden_size), cache, past=0)
    for _ in range(steps):
        x = torch.randn(1, 1, span.config.hidden_size)
        if idle:
            time.sleep(idle)
        began = time.perf_counter()
        with one_thread():
            span(x, cache, past=past)
        times.append(time.perf_counter() - began)
        past += 1
    return statistics.median(times) * 1000


def over_http(client: ServerClient, *, steps: int, hidden_size: int) -> float:
    """Median ms of a decode step's round trip to the server, each sent right after the answer before."""
    session, times = client.open_session(FIRST, FIRST + COUNT).session, []
    client.forward(session, torch.randn(1, PROMPT_TOKENS, hidden_size))
    for _ in range(steps):
        x = torch.randn(1, 1, hidden_size)
        began = time.perf_counter()
        client.forward(session, x, max_tokens=1)
        times.append(time.perf_counter() - began)
    client.close(session)
    return statistics.median(times) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--idle-ms", type=float, default=40.0)
    args = parser.parse_args()
    span = LayerSpan(resolve().folder, FIRST, COUNT, device=torch.device("cpu"))
    server = ServerProcess(f"{FIRST}:{FIRST + COUNT}", free_port(), ["--no-chain"])
    start_all([server])
    idle_row = AFTER_IDLE.format(f"{args.idle_ms:g}")
    results: dict[str, list[float]] = {BACK_TO_BACK: [], idle_row: [], OVER_HTTP: []}
    try:
        client = ServerClient(server.url, http=requests.Session(), timeout=30)
        for r in range(args.rounds):
            print(f"round {r + 1}/{args.rounds}", file=sys.stderr, flush=True)
            results[BACK_TO_BACK].append(in_process(span, steps=args.steps, idle=0))
            results[idle_row].append(in_process(span, steps=args.steps, idle=args.idle_ms / 1000))
            results[OVER_HTTP].append(over_http(client, steps=args.steps, hidden_size=span.config.hidden_size))
    finally:
        stop_all([server])
    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"\none decode step through layers {FIRST}:{FIRST + COUNT}, float32, median of {args.rounds} rounds\n")
    print(
        table(
            ["path", "ms per step", "per round", "/ back to back"],
            [
                [k, f"{med[k]:.2f}", " ".join(f"{x:.1f}" for x in v), f"{med[k] / med[BACK_TO_BACK]:.2f}x"]
                for k, v in results.items()
            ],
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
