"""The OpenAI-compatible API's overhead and concurrency: the official ``openai`` client against ``efedllm api``
beside the Python API, on the same generation, through the same servers, in one run.

    python bench/api.py [--rounds 5] [--tokens 32] [--streams 32]

Three ``efedllm server --no-chain`` processes hold layers 0:10, 10:20 and 20:30 of the default model; an
``efedllm api`` process fronts them. Each round generates the same greedy answer twice, alternating which path
goes first: ``DistributedModel.generate`` in this process, and ``client.chat.completions.create`` over HTTP (the
API process runs the same DistributedModel code behind its routes). Printed: each path's median seconds and the
ratio (the API's overhead; target < 5%), then ``--streams`` concurrent streaming requests: every text must be the
greedy answer, with their wall time and tokens/s.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import time

import openai

from efedllm.chain.anvil import free_port
from efedllm.cli.common import table
from efedllm.client import DistributedModel
from efedllm.localnet import ApiProcess, ServerProcess, start_all, stop_all

MODEL = "smollm2-135m-instruct"
QUESTION = [{"role": "user", "content": "Write a short poem about the sea and the stars."}]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--streams", type=int, default=32)
    args = parser.parse_args()
    servers = [ServerProcess(layers, free_port(), ["--no-chain"]) for layers in ("0:10", "10:20", "20:30")]
    start_all(servers)
    api = ApiProcess(free_port(), ["--servers", ",".join(s.url for s in servers), "--max-concurrent", "32"])
    start_all([api])
    try:
        local = DistributedModel.from_pretrained(MODEL, servers=[s.url for s in servers])
        client = openai.OpenAI(base_url=api.url, api_key="unused", max_retries=0, timeout=600)

        def python_api() -> str:
            ids = local.generate(messages=QUESTION, max_new_tokens=args.tokens)
            return local.tokenizer.decode(ids[0], skip_special_tokens=True)

        def http_api() -> str:
            answer = client.chat.completions.create(
                model=MODEL, messages=QUESTION, max_tokens=args.tokens, temperature=0
            )
            return answer.choices[0].message.content

        python_api(), http_api()  # warm both paths
        times = {"python": [], "openai": []}
        texts = set()
        for r in range(args.rounds):
            order = [("python", python_api), ("openai", http_api)]
            for name, fn in order if r % 2 == 0 else order[::-1]:
                started = time.perf_counter()
                texts.add((name, fn()))
                times[name].append(time.perf_counter() - started)
        py, oa = statistics.median(times["python"]), statistics.median(times["openai"])
        print(
            table(
                ["path", "median s", "runs (s)"],
                [[n, f"{statistics.median(t):.3f}", " ".join(f"{x:.2f}" for x in t)] for n, t in times.items()],
            )
        )
        print(f"\nopenai client / Python API: {oa / py:.3f}x ({(oa / py - 1) * 100:+.1f}% overhead; target < 5%)")
        print(f"same text on both paths: {'yes' if len({t for _, t in texts}) == 1 else 'NO'}")

        want = http_api()

        def stream(_) -> str:
            chunks = client.chat.completions.create(
                model=MODEL, messages=QUESTION, max_tokens=args.tokens, temperature=0, stream=True
            )
            return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.streams) as pool:
            got = list(pool.map(stream, range(args.streams)))
        wall = time.perf_counter() - started
        right = sum(t == want for t in got)
        print(
            f"\n{args.streams} concurrent streams: {right}/{args.streams} with the right text in {wall:.1f} s "
            f"({args.streams * args.tokens / wall:.1f} tokens/s in all, vs {args.tokens / oa:.1f} for one request)"
        )
        return 0 if right == args.streams else 1
    finally:
        stop_all([api, *servers])


if __name__ == "__main__":
    raise SystemExit(main())
