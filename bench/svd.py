"""Full vs randomized SVD: time and retained energy at 10% rank, side by side in one run.

    python bench/svd.py [--fraction 0.1] [--niter 4] [--oversample 16] [--repeat 3] [--size 4096] [--alpha 0.5]

Matrices: the model's largest (the token embedding, 49152 x 576), the largest a server holds (an MLP
projection, 1536 x 576), an attention projection (576 x 576), and a SIZE x SIZE matrix with a decaying spectrum
sigma_i = i^-ALPHA (alpha 0.5 keeps about 74% of the energy in the top 10%, close to what the model's attention
matrices keep; its singular vectors are a random orthogonal matrix). "full" is torch.linalg.svd (thin), which gives
the optimum; "randomized" is efedllm.compression.svd.randomized_svd (torch.svd_lowrank, seeded) with NITER power
iterations and OVERSAMPLE extra columns. Energy is ||W_k||_F^2 / ||W||_F^2 of the rank-k factors, exact for both
(randomized factors are a projection of W). Runs alternate full and randomized; the best of REPEAT runs is
reported (of two where a full SVD takes over 10 s), since on a shared machine the fastest run is the one least
disturbed by others. Target: randomized >= 5x faster, energy within 0.5 points.
"""

from __future__ import annotations

import argparse
import os
import time

from efedllm.openmp import OPENMP_ENV

os.environ.update({k: os.environ.get(k, v) for k, v in OPENMP_ENV.items()})  # before torch loads

import torch

from efedllm.cli.common import table
from efedllm.compression import svd
from efedllm.model.source import resolve
from efedllm.model.weights import read_tensors

MODEL_MATRICES = (
    "model.embed_tokens.weight",
    "model.layers.15.mlp.up_proj.weight",
    "model.layers.15.self_attn.o_proj.weight",
)


def decaying(size: int, alpha: float) -> torch.Tensor:
    """size x size with singular values i^-alpha; U from one QR, V the same matrix with rows and columns permuted
    (still orthogonal, and dense), which halves the set-up time."""
    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(size, size, generator=g))
    v = q[torch.randperm(size, generator=g)][:, torch.randperm(size, generator=g)]
    s = torch.arange(1, size + 1, dtype=torch.float32) ** -alpha
    return (q * s) @ v.T


def timed(fn):
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def compare(name: str, w: torch.Tensor, args) -> list:
    m, n = w.shape
    k = max(1, round(args.fraction * min(m, n)))
    total = float(w.double().pow(2).sum())
    energy = lambda s: float(s[:k].double().pow(2).sum()) / total  # noqa: E731
    full_times, fast_times = [], []
    for i in range(args.repeat):
        if i < 2 or max(full_times) < 10:  # a full SVD over 10 s runs twice, not more
            t_full, (_, s_full, _) = timed(lambda: svd.full_svd(w))
            full_times.append(t_full)
        t_fast, (_, s_fast, _) = timed(lambda: svd.randomized_svd(w, k, niter=args.niter, oversample=args.oversample))
        fast_times.append(t_fast)
        print(f"  {name}: run {i + 1}: full {full_times[-1]:.2f}s, randomized {t_fast:.2f}s", flush=True)
    full, fast = min(full_times), min(fast_times)
    best, got = energy(s_full), energy(s_fast)
    gap = 100 * (best - got)
    ok = full / fast >= 5 and gap <= 0.5
    return [
        name,
        f"{m}x{n}",
        k,
        f"{full:.3f}",
        f"{fast:.3f}",
        f"{full / fast:.1f}x",
        f"{best:.4f}",
        f"{got:.4f}",
        f"{gap:.2f}",
        "yes" if ok else "no",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--fraction", type=float, default=0.1, help="rank as a share of min(m, n) (default: %(default)s)"
    )
    parser.add_argument("--niter", type=int, default=svd.NITER, help="power iterations (default: %(default)s)")
    parser.add_argument(
        "--oversample", type=int, default=svd.OVERSAMPLE, help="extra sampled columns (default: %(default)s)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per matrix, best reported (default: %(default)s)")
    parser.add_argument("--size", type=int, default=4096, help="side of the synthetic matrix (default: %(default)s)")
    parser.add_argument("--alpha", type=float, default=0.5, help="synthetic spectrum i^-alpha (default: %(default)s)")
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; rank {args.fraction:.0%} of min(m, n); "
        f"randomized: niter {args.niter}, oversample {args.oversample}",
        flush=True,
    )
    folder = resolve().folder
    matrices = read_tensors(folder, MODEL_MATRICES, device=torch.device("cpu"), dtype=torch.float32)
    rows = [compare(name.removeprefix("model."), w, args) for name, w in matrices.items()]
    print(f"  building the {args.size}x{args.size} matrix ...", flush=True)
    rows.append(compare(f"synthetic i^-{args.alpha:g}", decaying(args.size, args.alpha), args))
    print()
    print(
        table(
            [
                "matrix",
                "shape",
                "k",
                "full s",
                "randomized s",
                "speed-up",
                "optimal energy",
                "randomized energy",
                "gap (points)",
                "target met",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
