"""Batched against unbatched (issue 15's calibration, issue 16's batching): does a server that batches its decode
steps (efedllm/model/batched.py) stay within the verifier's bound for its declared configuration?

    python bench/batched_precision.py [--sessions 8] [--decode 30]

For each configuration, ``--sessions`` prompts (chat, code, prose) through layers 10:20: each a prefill, then
``--decode`` decode steps all run as one batch per step; every step is recomputed by the verifier in one pass per
session in the declared configuration (verifier/reference.py) and scored with ``deviation`` against
``rules.tolerance`` (a ratio above 1 would be false fraud).
"""

from __future__ import annotations

import argparse

from transformers import AutoTokenizer

from efedllm.cli.common import table
from efedllm.model.batched import forward_batch
from efedllm.server.config import ServerConfig
from efedllm.server.main import load_span
from efedllm.verifier import rules
from efedllm.verifier.checks import deviation
from efedllm.verifier.reference import ReferenceModel

TEXTS = (
    "The sea is wide and deep and",
    "def fib(n):\n    return",
    "Once upon a time there was a king who",
    "List three colours: red,",
    "Why is the sky blue? Because",
    "import numpy as np\nx =",
    "The capital of France is",
    "In 1905 Einstein published",
)
CONFIGS = (("float32", None), ("bfloat16", None), ("float16", None), ("float32", "int8"), ("bfloat16", "int8"))
quiet = {"progress": lambda *a: None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--decode", type=int, default=30)
    args = parser.parse_args()
    ref = ReferenceModel("smollm2-135m-instruct", device="cpu", **quiet)
    tokenizer = AutoTokenizer.from_pretrained(ref.folder)
    seqs = [tokenizer(TEXTS[i % len(TEXTS)])["input_ids"] for i in range(args.sessions)]
    seqs = [s + [s[-1]] * args.decode for s in seqs]
    inputs = [ref.recompute(ref.embed(s), 0, 10) for s in seqs]
    rows = []
    for dtype, quantize in CONFIGS:
        config = ServerConfig(
            model="smollm2-135m-instruct", first_layer=10, num_layers=10, device="cpu", dtype=dtype, quantize=quantize
        )
        span = load_span(config, 10, 10, **quiet)
        caches = [span.new_cache() for _ in inputs]
        pasts = [x.shape[1] - args.decode for x in inputs]
        outs = [[span(x[:, :p].to(span.dtype), c, past=0)] for x, c, p in zip(inputs, caches, pasts)]
        for _ in range(args.decode):
            steps = [x[:, p : p + 1].to(span.dtype) for x, p in zip(inputs, pasts)]
            for o, r in zip(outs, forward_batch(span, steps, caches, pasts, start=10, end=20)):
                o.append(r)
            pasts = [p + 1 for p in pasts]
        bound, worst, count = rules.tolerance(config.serving, 10), 0.0, 0
        for x, o in zip(inputs, outs):
            expected, at = ref.recompute(x, 10, 20, serving=config.serving), 0
            for out in o:
                worst = max(worst, deviation(out, expected[:, at : at + out.shape[1]].to(out.dtype)))
                at, count = at + out.shape[1], count + 1
        rows.append([config.serving.label, count, f"{worst:.2e}", f"{bound:.1e}", f"{worst / bound:.2f}"])
    print(f"{args.sessions} sessions batched, {args.decode} decode steps each, layers 10:20, CPU")
    print(table(["declared", "steps", "worst deviation", "bound", "worst / bound"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
