"""Serving precision on a GPU, checked by a CPU verifier and a GPU verifier: the figures the verifier's bounds
(efedllm/verifier/rules.py, measured CPU against CPU) must be re-measured with before they guard a GPU's stake.

    bash bench/gpu.sh                           # on a machine with CUDA: the prepared run, under 10 minutes
    python bench/gpu.py --device cpu --quick    # a smoke run of the same code on the CPU (about a minute)

For each configuration (float32, bfloat16, float16, int8/float32, int8/bfloat16) a server span is loaded on
``--device`` exactly as ``efedllm server run --dtype ... --quantize ...`` loads it (server/main.py ``load_span``),
serves each prompt (chat, code, a 500-token document) as a prefill and ``--decode`` one-token steps through its KV
cache, for spans of 1, 5 and 10 layers; every served step is then recomputed in one pass, in the declared
configuration, by the verifier's own model (verifier/reference.py) on each of ``--verifiers`` (cpu, cuda), and
scored with the verifier's statistic (``deviation``) against that configuration's bound. Printed per configuration
and verifier device: steps, the honest maximum, the bound, the margin (bound / maximum) and the false-fraud count
(honest steps over the bound: must be 0); and per configuration the server's decode and prefill tokens/s and its
peak device memory. Raw values: ``bench/results/gpu.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from transformers import AutoTokenizer

from bench.precision import prompts
from efedllm.chain.views import Serving
from efedllm.cli.common import table
from efedllm.server.config import ServerConfig
from efedllm.server.main import load_span
from efedllm.verifier import rules
from efedllm.verifier.checks import deviation
from efedllm.verifier.reference import ReferenceModel

MODEL = "smollm2-135m-instruct"
CONFIGS = ("float32", "bfloat16", "float16", "int8/float32", "int8/bfloat16")
SPANS = ((0, 1), (15, 1), (12, 5), (20, 10))
WIDE = ((0, 1), (7, 1), (15, 1), (22, 1), (29, 1), (0, 5), (12, 5), (25, 5), (0, 10), (10, 10), (20, 10))
"""``--spans wide``: with 3 prompts and ``--decode 300``, 9,933 honest steps per configuration."""
quiet = {"progress": lambda *a: None}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def serve(
    span, x: torch.Tensor, prefill: int, device: torch.device
) -> tuple[list[tuple[int, torch.Tensor]], float, float]:
    """(past, output on the CPU) per step, and the seconds of the prefill and of the decode steps."""
    x = x.to(device=device, dtype=span.dtype)
    cache, steps = span.new_cache(), []
    sync(device)
    started = time.perf_counter()
    steps.append((0, span(x[:, :prefill], cache, past=0)))
    sync(device)
    prefilled = time.perf_counter()
    for t in range(prefill, x.shape[1]):
        steps.append((t, span(x[:, t : t + 1], cache, past=t)))
    sync(device)
    done = time.perf_counter()
    return [(past, out.cpu()) for past, out in steps], prefilled - started, done - prefilled


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="where the server computes (default: %(default)s)")
    parser.add_argument("--verifiers", default="cpu,cuda", help="where verifiers recompute (default: %(default)s)")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="(default: all five)")
    parser.add_argument("--decode", type=int, default=16, help="decode steps per prompt (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="two short prompts, two spans, 3 decode steps")
    parser.add_argument("--spans", choices=("few", "wide"), default="few", help="4 spans, or 11 (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/gpu.json"))
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"no CUDA device here (torch {torch.__version__}): nothing measured; `--device cpu` runs the same code")
        return 2
    verifier_devices = [d for d in args.verifiers.split(",") if d != "cuda" or torch.cuda.is_available()]
    decode = 3 if args.quick else args.decode
    spans = SPANS[:2] if args.quick else WIDE if args.spans == "wide" else SPANS
    verifiers = {d: ReferenceModel(MODEL, device=d, **quiet) for d in verifier_devices}
    first_verifier = next(iter(verifiers.values()))
    tokenizer = AutoTokenizer.from_pretrained(first_verifier.folder)
    texts = prompts(tokenizer, args.quick)
    started = time.monotonic()
    records, rows, speed_rows = [], [], []
    for label in args.configs.split(","):
        weights, _, dtype = label.rpartition("/")
        serving = Serving.named(dtype=dtype, quantize=weights or None)
        prefill_s = decode_s = 0.0
        prefill_tokens = decode_tokens = 0
        peak = 0
        for first, count in spans:
            config = ServerConfig(
                model=MODEL,
                first_layer=first,
                num_layers=count,
                device=args.device,
                dtype=dtype,
                quantize=weights or None,
            )
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            span = load_span(config, first, count, **quiet)
            for name, ids in texts.items():
                ids = ids + [ids[-1]] * decode
                x = first_verifier.recompute(first_verifier.embed(ids), 0, first)  # float32 inputs, cast by serve
                steps, p_s, d_s = serve(span, x, len(ids) - decode, device)
                prefill_s, decode_s = prefill_s + p_s, decode_s + d_s
                prefill_tokens, decode_tokens = prefill_tokens + len(ids) - decode, decode_tokens + decode
                for vdev, model in verifiers.items():
                    expected = model.recompute(x, first, first + count, serving=serving)
                    bound = rules.tolerance(serving, count)
                    for past, out in steps:
                        error = deviation(out, expected[:, past : past + out.shape[1]].to(out.dtype))
                        records.append(
                            {
                                "config": label,
                                "verifier": vdev,
                                "prompt": name,
                                "span": f"{first}:{first + count}",
                                "layers": count,
                                "past": past,
                                "deviation": error,
                                "bound": bound,
                            }
                        )
            if device.type == "cuda":
                peak = max(peak, torch.cuda.max_memory_allocated(device))
            del span
        speed_rows.append(
            [
                label,
                args.device,
                f"{decode_tokens / decode_s:.1f}",
                f"{prefill_tokens / prefill_s:.0f}",
                f"{peak / 2**20:.0f} MiB" if peak else "-",
            ]
        )
        print(f"{label}: done ({time.monotonic() - started:.0f} s)", flush=True)
    for label in args.configs.split(","):
        for vdev in verifier_devices:
            mine = [r for r in records if r["config"] == label and r["verifier"] == vdev]
            worst = max(mine, key=lambda r: r["deviation"] / r["bound"])
            over = sum(r["deviation"] > r["bound"] for r in mine)
            rows.append(
                [
                    label,
                    f"{args.device} -> {vdev}",
                    len(mine),
                    f"{max(r['deviation'] for r in mine):.2e}",
                    f"{worst['deviation']:.2e} / {worst['bound']:.1e} ({worst['layers']} layers)",
                    f"{worst['bound'] / worst['deviation']:.1f}x" if worst["deviation"] else "inf",
                    over,
                ]
            )
    print(
        table(
            ["declared", "server -> verifier", "steps", "honest max", "worst vs its bound", "margin", "false fraud"],
            rows,
        )
    )
    print()
    print(table(["declared", "device", "decode tokens/s (batch 1)", "prefill tokens/s", "peak memory"], speed_rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"device": str(device), "torch": torch.__version__, "records": records}))
    print(f"\nraw values: {args.out}; {time.monotonic() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
