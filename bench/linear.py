"""The decode-step linear layers: PyTorch's ``F.linear`` against efedllm/model/linear.py, side by side in one run.

    python bench/linear.py [--repeats 5]

For SmolLM2-135M's shapes (30 layers: q, k, v, o, gate, up, down, each a different matrix, so the weights stream
from memory as in a real step) and its LM head (49152 x 576), the time of one pass over every matrix with 1, 2, 4,
16 and 64 rows (tokens, or sessions of a batch), both ways alternating, median of ``--repeats``; float32 on the
CPU, the configuration ``linear`` changes. Also the relative error of ``linear`` against ``F.linear``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from efedllm.openmp import OPENMP_ENV

os.environ.update({k: os.environ.get(k, v) for k, v in OPENMP_ENV.items()})  # before torch loads

import torch
import torch.nn.functional as F

from efedllm.cli.common import table
from efedllm.model.linear import linear

HIDDEN, INTERMEDIATE, KV, VOCAB, LAYERS = 576, 1536, 192, 49152, 30
LAYER_SHAPES = [(HIDDEN, HIDDEN), (KV, HIDDEN), (KV, HIDDEN), (HIDDEN, HIDDEN)]
LAYER_SHAPES += [(INTERMEDIATE, HIDDEN), (INTERMEDIATE, HIDDEN), (HIDDEN, INTERMEDIATE)]


def one_pass(fn, weights: list[torch.Tensor], inputs: dict[int, torch.Tensor]) -> float:
    began = time.perf_counter()
    for w in weights:
        fn(inputs[w.shape[1]], w)
    return time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    layers = [torch.randn(*shape) * 0.02 for _ in range(LAYERS) for shape in LAYER_SHAPES]
    head = [torch.randn(VOCAB, HIDDEN) * 0.02]
    ways = {"F.linear": lambda x, w: F.linear(x, w), "efedllm linear": lambda x, w: linear(x, w)}
    rows_out = []
    with torch.inference_mode():
        for name, weights in (("30 layers", layers), ("LM head", head)):
            for rows in (1, 2, 4, 16, 64):
                inputs = {n: torch.randn(rows, n) for n in (HIDDEN, INTERMEDIATE)}
                times: dict[str, list[float]] = {way: [] for way in ways}
                for _ in range(args.repeats + 1):  # the first round warms up, and is dropped
                    for way, fn in ways.items():
                        times[way].append(one_pass(fn, weights, inputs))
                base, ours = (statistics.median(times[w][1:]) for w in ways)
                x = inputs[HIDDEN]
                error = max(
                    ((linear(x, w) - F.linear(x, w)).norm() / F.linear(x, w).norm()).item()
                    for w in weights
                    if w.shape[1] == HIDDEN
                )
                rows_out.append(
                    [name, rows, f"{base * 1000:.1f}", f"{ours * 1000:.1f}", f"{base / ours:.2f}x", f"{error:.1e}"]
                )
    print(f"float32, {torch.get_num_threads()} threads, median of {args.repeats} alternating repeats\n")
    print(table(["matrices", "rows", "F.linear ms", "efedllm linear ms", "speed-up", "relative error"], rows_out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
