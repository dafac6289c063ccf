"""Load: many concurrent client sessions against three servers, vs one client, side by side in one run.

    python bench/load.py [--sessions 16] [--rounds 2] [--tokens 8] [--max-cache-mib 32] [--deadline 300]
                         [--no-unpaced] [--pay]

Three `efedllm server --no-chain` processes hold layers 0:10, 10:20 and 20:30 of the default model, each with
``--max-cache-bytes``. First one client generates every prompt in turn (its tokens are the reference); then
``--sessions`` threads, each with its own DistributedModel (sharing the loaded embeddings and head, which are only
read), run ``--rounds`` generations each at once: a fixed number of requests that must all end by ``--deadline``
seconds. The same load runs first with the client's lockstep off (each session sends its steps as soon as it can;
``--no-unpaced`` skips it), then on (client/lockstep.py: the process's sessions send their steps to each server
together, for it to batch), side by side. Every concurrent generation must equal its single-client tokens. Meanwhile each server's ``/info``
(KV-cache bytes, open sessions) and resident memory are sampled; its peak RSS counter is reset when the load
starts (``/proc/PID/clear_refs``), so the growth reported is what the load added over the server at rest.
With ``--pay`` the servers run on Anvil, priced, and every session pays from one client account (its steps carry
signed cumulative receipts, its answers' signatures are checked): the cost of paying under load; with the lockstep
off every paid step goes alone, as all paid steps did before they travelled grouped (client/steps.py).
tests/network/test_load.py runs the same load and asserts correctness and the memory bounds (not speed).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

from efedllm.openmp import OPENMP_ENV

os.environ.update({k: os.environ.get(k, v) for k, v in OPENMP_ENV.items()})  # before torch loads

import requests
import torch

from bench.network import PRICE, ChainNetwork, chain_network
from efedllm.chain.anvil import free_port
from efedllm.cli.common import table
from efedllm.client import DistributedModel
from efedllm.client.lockstep import Lockstep
from efedllm.client.peers import StaticPeers
from efedllm.localnet import ServerProcess, start_all, stop_all

SPANS = ("0:10", "10:20", "20:30")
ACTIVE_PAUSE_S = 1.5
"""Longer than server/batching.py's ACTIVE_S: a server's batches stop waiting for the sessions of a load that ended."""
PROMPTS = (
    "Name a large animal.",
    "What is the capital of Italy?",
    "Give me a word that rhymes with cat.",
    "Write a short greeting.",
    "What colour is the sky?",
    "Name a prime number.",
    "Describe rain in one line.",
    "What do bees make?",
    "Name a planet.",
    "Say something about the sea.",
    "What is two plus three?",
    "Name a fruit that is yellow.",
    "Which season is the coldest?",
    "Name a musical instrument.",
    "What do you call a baby cat?",
    "Give a synonym for happy.",
)


@dataclass(frozen=True, kw_only=True)
class Generation:
    prompt: int
    tokens: list[int]
    seconds: float
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class Run:
    generations: list[Generation]
    wall_s: float
    client_cpu_s: float = 0.0
    """CPU seconds this (the client's) process spent, all threads."""
    server_cpu_s: float = 0.0
    """CPU seconds the three server processes spent."""

    def cpu_ms_per_token(self, which: str) -> float:
        tokens = sum(len(g.tokens) for g in self.completed)
        return 1000 * getattr(self, f"{which}_cpu_s") / max(tokens, 1)

    @property
    def completed(self) -> list[Generation]:
        return [g for g in self.generations if g.error is None]

    @property
    def tokens_per_s(self) -> float:
        return sum(len(g.tokens) for g in self.completed) / self.wall_s

    def latency(self, quantile: float) -> float:
        seconds = sorted(g.seconds for g in self.completed)
        if len(seconds) < 2:
            return seconds[0] if seconds else float("nan")
        return statistics.quantiles(seconds, n=100, method="inclusive")[round(quantile * 100) - 1]


def start_servers(
    *, max_cache_bytes: int, log_dir: Path | None = None, network: ChainNetwork | None = None
) -> list[ServerProcess]:
    """Servers of ``SPANS``: off chain, or registered on ``network``'s chain and priced (``--pay``)."""
    cache = ("--max-cache-bytes", str(max_cache_bytes))
    if network is not None:
        return start_all([network.server(1 + i, span, price=PRICE, args=cache) for i, span in enumerate(SPANS)])
    servers = [
        ServerProcess(
            span,
            free_port(),
            ["--no-chain", *cache],
            log_path=log_dir / f"server-{span.replace(':', '-')}.log" if log_dir else None,
        )
        for span in SPANS
    ]
    return start_all(servers)


def clients(
    template: DistributedModel, urls: list[str], count: int, *, lockstep: Lockstep | None = None
) -> list[DistributedModel]:
    """``count`` clients that share ``template``'s loaded ends (read only) but each keep their own sessions; they
    time requests out as the template does. ``lockstep``: theirs (default: the process's). A paying template's
    clients share its peers, and with them its payer: one client account, as ``efedllm api --pay`` runs."""
    models = [
        DistributedModel(
            ends=template.ends,
            tokenizer=template.tokenizer,
            generation_config=template.generation_config,
            peers=template.peer_source if template.payer is not None else StaticPeers(urls),
            timeout=template.timeout,
        )
        for _ in range(count)
    ]
    for model in models:
        model.lockstep = lockstep or model.lockstep
    return models


def generate(model: DistributedModel, prompt: int, ids: torch.Tensor, tokens: int) -> Generation:
    started = time.monotonic()
    try:
        out = model.generate(ids, max_new_tokens=tokens, eos_token_id=[])[0].tolist()
    except Exception as exc:  # noqa: BLE001 - counted, reported, and failed on by the caller
        return Generation(
            prompt=prompt, tokens=[], seconds=time.monotonic() - started, error=f"{exc.__class__.__name__}: {exc}"
        )
    return Generation(prompt=prompt, tokens=out, seconds=time.monotonic() - started)


def run_single(model: DistributedModel, inputs: list[torch.Tensor], *, tokens: int) -> Run:
    started = time.monotonic()
    generations = [generate(model, i, ids, tokens) for i, ids in enumerate(inputs)]
    return Run(generations=generations, wall_s=time.monotonic() - started)


def run_concurrent(
    models: list[DistributedModel], inputs: list[torch.Tensor], *, rounds: int, tokens: int, deadline_s: float
) -> Run:
    """Session ``i`` generates prompt ``i`` (mod the prompts) ``rounds`` times; all sessions start together, and
    whatever has not ended ``deadline_s`` seconds later counts as failed."""
    results: list[list[Generation]] = [[] for _ in models]
    gate = threading.Barrier(len(models) + 1)

    def session(i: int) -> None:
        gate.wait()
        for _ in range(rounds):
            results[i].append(generate(models[i], i % len(inputs), inputs[i % len(inputs)], tokens))

    threads = [threading.Thread(target=session, args=(i,), daemon=True, name=f"load-{i}") for i in range(len(models))]
    for thread in threads:
        thread.start()
    gate.wait()
    started = time.monotonic()
    for thread in threads:
        thread.join(timeout=max(0.0, started + deadline_s - time.monotonic()))
    wall = time.monotonic() - started
    generations = [g for per_session in results for g in per_session]
    late = sum(rounds - len(per_session) for per_session in results)
    generations += [Generation(prompt=-1, tokens=[], seconds=wall, error=f"not done within {deadline_s:.0f}s")] * late
    return Run(generations=generations, wall_s=wall)


@dataclass
class ServerMemory:
    server: ServerProcess
    rest_rss: int = 0
    peak_rss: int = 0
    peak_cache_bytes: int = 0
    peak_sessions: int = 0
    samples: int = 0
    steps: tuple[int, int] = (0, 0)
    """(steps, forward passes) the server ran during the load: their ratio is its mean batch."""


@dataclass
class MemoryWatch:
    """Samples each server's /info and resident memory until stopped; a context manager."""

    servers: list[ServerProcess]
    interval: float = 0.1
    memory: list[ServerMemory] = field(default_factory=list)

    def __enter__(self) -> MemoryWatch:
        self.memory = [ServerMemory(server=s) for s in self.servers]
        for m in self.memory:
            Path(f"/proc/{m.server.process.pid}/clear_refs").write_text("5")  # peak RSS := current RSS
            m.rest_rss = status_bytes(m.server, "VmRSS")
            info = requests.get(m.server.url + "/info", timeout=10).json()
            m.steps = (-info.get("steps", 0), -info.get("batches", 0))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="memory-watch")
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        for m in self.memory:
            m.peak_rss = max(m.peak_rss, status_bytes(m.server, "VmHWM"))
            info = requests.get(m.server.url + "/info", timeout=10).json()
            m.steps = (m.steps[0] + info.get("steps", 0), m.steps[1] + info.get("batches", 0))

    def _loop(self) -> None:
        http = requests.Session()
        while not self._stop.wait(self.interval):
            self._sample(http)

    def _sample(self, http=requests) -> None:
        for m in self.memory:
            info = http.get(m.server.url + "/info", timeout=10).json()
            m.peak_cache_bytes = max(m.peak_cache_bytes, info["cache_bytes"])
            m.peak_sessions = max(m.peak_sessions, info["sessions"])
            m.peak_rss = max(m.peak_rss, status_bytes(m.server, "VmRSS"))
            m.samples += 1


def cpu_seconds(servers: list[ServerProcess]) -> float:
    """CPU seconds (user and system) the ``servers``' processes spent so far."""
    ticks = 0
    for server in servers:
        fields = Path(f"/proc/{server.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat(5))
    return ticks / os.sysconf("SC_CLK_TCK")


def measured(run, servers: list[ServerProcess]) -> Run:
    """``run()`` (a Run) with the CPU time the client and the servers spent on it."""
    client, server = os.times(), cpu_seconds(servers)
    result = run()
    after = os.times()
    return replace(
        result,
        client_cpu_s=after.user + after.system - client.user - client.system,
        server_cpu_s=cpu_seconds(servers) - server,
    )


def status_bytes(server: ServerProcess, key: str) -> int:
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def mismatches(reference: Run, load: Run) -> list[str]:
    """Every concurrent generation that failed or differs from the single client's tokens for its prompt."""
    expected = {g.prompt: g.tokens for g in reference.generations}
    return [
        g.error or f"prompt {g.prompt}: {g.tokens} != {expected[g.prompt]}"
        for g in load.generations
        if g.error or g.tokens != expected[g.prompt]
    ]


def report(
    single: Run,
    load: Run,
    memory: list[ServerMemory],
    *,
    sessions: int,
    max_cache_bytes: int,
    unpaced: Run | None = None,
) -> str:
    runs = [("1 client, one request at a time", single)]
    if unpaced is not None:
        runs.append((f"{sessions} concurrent sessions, lockstep off", unpaced))
    runs.append((f"{sessions} concurrent sessions", load))
    mib = lambda b: f"{b / 2**20:.1f}"  # noqa: E731
    rows = [
        [
            name,
            len(run.completed),
            sum(len(g.tokens) for g in run.completed),
            f"{run.wall_s:.1f}",
            f"{run.tokens_per_s:.1f}",
            f"{run.latency(0.5):.2f}",
            f"{run.latency(0.95):.2f}",
            f"{run.cpu_ms_per_token('client'):.1f}",
            f"{run.cpu_ms_per_token('server'):.1f}",
        ]
        for name, run in runs
    ]
    lines = [
        table(
            [
                "load",
                "requests",
                "tokens",
                "wall s",
                "tokens/s",
                "p50 latency s",
                "p95 latency s",
                "client CPU ms/token",
                "servers CPU ms/token",
            ],
            rows,
        ),
        f"\nthroughput {sessions} concurrent / single: {load.tokens_per_s / single.tokens_per_s:.2f}x; "
        f"p50 latency {load.latency(0.5) / single.latency(0.5):.1f}x"
        + (
            f"; lockstep off: {unpaced.tokens_per_s / single.tokens_per_s:.2f}x (lockstep on / off: "
            f"{load.tokens_per_s / unpaced.tokens_per_s:.2f}x)"
            if unpaced is not None
            else ""
        ),
        f"identical to the single client: {len(load.generations) - len(mismatches(single, load))} of "
        f"{len(load.generations)}\n",
        table(
            [
                "server",
                "max cache MiB",
                "peak cache MiB",
                "peak sessions",
                "RSS at rest MiB",
                "peak RSS MiB",
                "growth MiB",
                "mean batch",
            ],
            [
                [
                    m.server.layers,
                    mib(max_cache_bytes),
                    mib(m.peak_cache_bytes),
                    m.peak_sessions,
                    mib(m.rest_rss),
                    mib(m.peak_rss),
                    mib(m.peak_rss - m.rest_rss),
                    f"{m.steps[0] / max(m.steps[1], 1):.1f}",
                ]
                for m in memory
            ],
        ),
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=16, help="concurrent client sessions (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=2, help="generations per session (default: %(default)s)")
    parser.add_argument("--tokens", type=int, default=8, help="new tokens per generation (default: %(default)s)")
    parser.add_argument(
        "--max-cache-mib", type=float, default=32, help="each server's --max-cache-bytes, in MiB (default: %(default)s)"
    )
    parser.add_argument("--deadline", type=float, default=300, help="seconds the load may take (default: %(default)s)")
    parser.add_argument(
        "--no-unpaced", action="store_true", help="skip the run with the client's lockstep off (client/lockstep.py)"
    )
    parser.add_argument(
        "--pay",
        action="store_true",
        help=f"servers on Anvil at {PRICE} wei per token-layer, one paying client account for every session",
    )
    args = parser.parse_args()
    max_cache_bytes = int(args.max_cache_mib * 2**20)
    print(f"starting servers {', '.join(SPANS)}{' (priced, on Anvil)' if args.pay else ''} ...", file=sys.stderr)
    stack, servers = ExitStack(), []
    try:
        network = chain_network(stack) if args.pay else None
        servers = start_servers(max_cache_bytes=max_cache_bytes, network=network)
        urls = [s.url for s in servers]
        if network is not None:
            template = DistributedModel.from_pretrained(protocol=network.client())
        else:
            template = DistributedModel.from_pretrained(servers=urls)
        inputs = [template.encode(prompt=p) for p in PROMPTS]
        template.generate(inputs[0], max_new_tokens=2, eos_token_id=[])  # warm-up every path
        print(f"one client: {len(inputs)} generations ...", file=sys.stderr, flush=True)
        single = measured(lambda: run_single(template, inputs, tokens=args.tokens), servers)
        print(f"{args.sessions} sessions x {args.rounds} generations ...", file=sys.stderr, flush=True)
        unpaced = None
        if not args.no_unpaced:
            print(
                f"{args.sessions} sessions x {args.rounds} generations, lockstep off ...", file=sys.stderr, flush=True
            )
            plain = clients(template, urls, args.sessions, lockstep=Lockstep(max_wait_s=0))
            unpaced = measured(
                lambda: run_concurrent(plain, inputs, rounds=args.rounds, tokens=args.tokens, deadline_s=args.deadline),
                servers,
            )
            time.sleep(ACTIVE_PAUSE_S)  # the servers forget these sessions' recent steps before the next load
        print(f"{args.sessions} sessions x {args.rounds} generations ...", file=sys.stderr, flush=True)
        models = clients(template, urls, args.sessions)
        with MemoryWatch(servers) as watch:
            load = measured(
                lambda: run_concurrent(
                    models, inputs, rounds=args.rounds, tokens=args.tokens, deadline_s=args.deadline
                ),
                servers,
            )
    finally:
        stop_all(servers)
        stack.close()
    paid = f", every step paid ({PRICE} wei per token-layer, receipts checked)" if args.pay else ""
    print(
        f"\n{args.tokens} new tokens per generation, float32 on {os.cpu_count()} CPU cores, "
        f"servers {', '.join(SPANS)} on loopback{paid}\n"
    )
    if network is not None:
        owed = template.payer.total()
        print(f"paid: {owed} wei in receipts from one client account, to {len(servers)} servers\n")
    print(report(single, load, watch.memory, sessions=args.sessions, max_cache_bytes=max_cache_bytes, unpaced=unpaced))
    bad = mismatches(single, load) + (mismatches(single, unpaced) if unpaced is not None else [])
    for line in bad[:5]:
        print("MISMATCH:", line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
