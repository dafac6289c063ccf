"""``efedllm analyze``: the paper's efficiency analysis (sections 4.1 to 4.3) recomputed, and measured on the model.

    efedllm analyze all --out docs/compression

Prints each table, writes the paper's figures as PNG into --out, and says where a stated number does not follow.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from efedllm.analysis import paper as A
from efedllm.analysis.settings import ImpactOptions
from efedllm.cli.common import table
from efedllm.cli.flags import add_dataclass_options
from efedllm.model.source import DEFAULT_MODEL

SECTIONS = ("theorem", "eq10", "table3", "energy", "ptotal", "model-impact")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "analyze", help="the paper's efficiency formulas and what SVD transfer does to the model"
    )
    parser.add_argument(
        "what",
        nargs="?",
        choices=(*SECTIONS, "all"),
        default="all",
        help="which analysis: theorem (4.1, Table 2), eq10, table3 (Table 3, Figs. 6, 7), energy "
        "(Fig. 5, eq. 9 on the model), ptotal (eq. 13), model-impact (perplexity, tokens, bytes), "
        "or all (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("efedllm-analysis"),
        help="folder for the PNG plots and JSON results (default: %(default)s)",
    )
    parser.add_argument(
        "--model", default=DEFAULT_MODEL, help="packaged model name or Hugging Face folder (default: %(default)s)"
    )
    add_dataclass_options(parser, ImpactOptions)
    parser.set_defaults(run=run)


def say(text: str = "") -> None:
    print(text, flush=True)


def run(args: argparse.Namespace) -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    state = {}
    for section in SECTIONS if args.what == "all" else (args.what,):
        say(f"== {section} ==")
        RUNNERS[section](args, state)
        say()
    if args.what in ("all", "theorem", "eq10", "table3"):
        say("== the paper's numbers, checked against its own formulas ==")
        say(table(["statement", "formulas give", "verdict"], [list(c) for c in A.claims()]))
    return 0


def theorem(args, state) -> None:
    rows = A.table2()
    say(
        table(
            ["dim", "centralized 2d^3", "federated 2d^2", "reduction", "eq. 6", "paper"],
            [
                [
                    r["dim"],
                    f"{r['centralized']:,}",
                    f"{r['federated']:,}",
                    f"{r['reduction']:.2%}",
                    f"{r['theorem']:.2%}",
                    f"{r['paper'][0]:,} / {r['paper'][1]:,} / {r['paper'][2]:.2%}",
                ]
                for r in rows
            ],
        )
    )
    say(
        "Theorem 4.1 counts element reads only: T_c = 2nmk assumes no cache or register reuse at all, which no "
        "real GEMM does; the reduction is an upper bound on what a memory hierarchy can save, not a measurement."
    )


def eq10(args, state) -> None:
    e = A.eq10()
    say(
        f"GPT-2 h.1.attn.c_attn.weight {e['m']}x{e['n']}, top 40% of singular values: k = {e['k']}, "
        f"ratio (m+n+1)k/mn = {e['ratio']:.2%} (paper: {A.PAPER_EQ10:.2%}); {e['saved']:.2%} of the bytes saved"
    )
    say(
        f"  the text's size m k + k^2 + k n would give {e['paper_text_ratio']:.2%}; its (m-k)(n-k) approximation of "
        f"the saving gives {e['paper_approx_saved']:.2%} instead of {e['saved']:.2%}"
    )
    rows = []
    for m, n in ((576, 576), (192, 576), (1536, 576), (576, 1536)):
        k = int(0.4 * min(m, n))
        rows.append([f"{m}x{n}", k, f"{(m + n + 1) * k / (m * n):.2%}", A.max_useful_rank(m, n)])
    say("the same rule on SmolLM2-135M's shapes:")
    say(table(["shape", "k at 40%", "ratio", "largest k that saves"], rows))


def table3(args, state) -> None:
    from efedllm.analysis import plots

    m, n = A.BERT_FFN
    rows = [A.Table3.of(m, n, A.BERT_SEQUENCE, r) for r in A.TABLE3_RATIOS]
    mb = lambda x: f"{x:,} ({x * A.BYTES_PER_ELEMENT / 1e6:.1f} MB)"  # noqa: E731
    say(f"Table 3 for W {m}x{n}, X {n}x{A.BERT_SEQUENCE} (elements, float32 MB); original WX first")
    say(
        table(
            ["ratio", "k (eq. 15)", "storage", "reads without hierarchy", "reads with hierarchy"],
            [["WX", "-", mb(rows[0].storage[0]), mb(rows[0].reads_plain[0]), mb(rows[0].reads_hierarchy[0])]]
            + [[f"{r.ratio:.1f}", r.k, mb(r.storage[1]), mb(r.reads_plain[1]), mb(r.reads_hierarchy[1])] for r in rows],
        )
    )
    rates = [A.bandwidth_reduce(r) for r in A.TABLE3_RATIOS]
    say(
        f"eq. 16 bandwidth reduce rate, batch {A.BERT_BATCH} (X is {n}x{A.BERT_SEQUENCE * A.BERT_BATCH}), for each "
        "reading of 'original' and 'optimized':"
    )
    say(
        table(
            ["ratio", *A.READINGS],
            [[f"{r:.1f}", *(f"{x[name]:.1%}" for name in A.READINGS)] for r, x in zip(A.TABLE3_RATIOS, rates)],
        )
    )
    ratio, claim = A.PAPER_FIG7_CLAIM
    say(
        f"paper: ratio {ratio} -> {claim:.0%} reduction. Its formulas give {A.bandwidth_reduce(ratio)['svd, no hierarchy']:.1%} "
        f"(SVD alone) or {A.bandwidth_reduce(ratio)['svd+hierarchy vs hierarchy']:.1%} (both with hierarchy); "
        f"{claim:.0%} is reached at ratio {A.ratio_for_reduce(claim, 'svd, no hierarchy'):.2f}. The claim does not follow."
    )
    say(f"wrote {plots.figure6(rows, args.out / 'figure6-memory-reads.png')}")
    say(f"wrote {plots.figure7(list(A.TABLE3_RATIOS), rates, A.PAPER_FIG7_CLAIM, args.out / 'figure7-bandwidth.png')}")


def _spectra(args, state) -> dict:
    if "spectra" not in state:
        from efedllm.analysis.impact import layer_tensors, singular_values
        from efedllm.model.source import resolve

        source = resolve(args.model, progress=say)
        say(f"singular values of every matrix of {source.name} (full SVD) ...")
        started = time.monotonic()
        tensors = layer_tensors(source.folder, source.num_layers)
        state["shapes"] = {n: tuple(w.shape) for n, w in tensors.items() if w.dim() == 2}
        state["spectra"] = singular_values(tensors, progress=say)
        say(f"  done in {time.monotonic() - started:.0f}s")
    return state["spectra"]


def _kind(name: str) -> str:
    return name.split(".")[-2]


def energy(args, state) -> None:
    from efedllm.analysis import plots
    from efedllm.compression.svd import energy_curve, k_for_energy, saves_bytes

    spectra = _spectra(args, state)
    kinds: dict[str, list[str]] = {}
    for name in spectra:
        kinds.setdefault(_kind(name), []).append(name)
    rows, curves = [], {}
    for kind, names in kinds.items():
        m, n = state["shapes"][names[0]]
        r = min(m, n)
        curves[kind] = []
        at = {f: [] for f in (0.1, 0.4, 0.5)}
        need = {e: [] for e in (0.9, 0.99)}
        for name in names:
            curve = energy_curve(spectra[name])
            ks = range(1, r + 1)
            curves[kind].append(([(m + n + 1) * k / (m * n) for k in ks], curve.tolist()))
            for f in at:
                at[f].append(float(curve[int(f * r) - 1]))
            for e in need:
                need[e].append(k_for_energy(spectra[name], e))
        rows.append(
            [
                kind,
                f"{m}x{n}",
                A.max_useful_rank(m, n),
                *(f"{statistics.mean(v):.3f}" for v in at.values()),
                f"{(m + n + 1) * int(0.4 * r) / (m * n):.2f}",
                *(
                    f"{int(statistics.median(v))} ({sum(saves_bytes(m, n, k) for k in v)}/{len(v)})"
                    for v in need.values()
                ),
            ]
        )
    say(
        "eq. 9 on every layer of the model: mean retained energy when keeping the top 10/40/50% of singular values; "
        "median k for e = 0.90 / 0.99 (eq. 12) and in how many layers that k still saves bytes"
    )
    say(
        table(
            [
                "matrix",
                "shape",
                "largest k that saves",
                "P@10%",
                "P@40%",
                "P@50%",
                "ratio@40%",
                "k(0.90) saves",
                "k(0.99) saves",
            ],
            rows,
        )
    )
    say(f"wrote {plots.figure5(curves, (A.PAPER_EQ10, 0.9132), args.out / 'figure5-energy-vs-ratio.png')}")


def ptotal(args, state) -> None:
    from efedllm.compression.svd import energy_curve, k_for_energy, saves_bytes

    spectra = _spectra(args, state)
    layers: dict[int, list[str]] = {}
    for name in spectra:
        layers.setdefault(int(name.split(".")[2]), []).append(name)
    rows = []
    for e in args.energy:
        paper, sent, factored, bytes_sent, bytes_raw = [], [], 0, 0, 0
        for names in layers.values():
            got, used = [], []
            for name in names:
                m, n = state["shapes"][name]
                k = k_for_energy(spectra[name], e)
                p = float(energy_curve(spectra[name])[k - 1])
                got.append(p)
                useful = saves_bytes(m, n, k)
                used.append(p if useful else 1.0)
                factored += useful
                bytes_sent += (m + n + 1) * k if useful else m * n
                bytes_raw += m * n
            paper.append(got)
            sent.append(used)
        rows.append(
            [
                e,
                f"{e ** len(layers):.4f}",
                f"{A.p_total(paper):.4f}",
                f"{A.p_total(sent):.4f}",
                f"{factored}/{len(spectra)}",
                f"{bytes_sent / bytes_raw:.1%}",
            ]
        )
    say(
        f"eq. 13 over {len(layers)} layers, the mean over each layer's {len(next(iter(layers.values())))} matrices "
        "standing in for heads (weights travel per matrix):"
    )
    say(
        table(
            [
                "e",
                "e^L (uniform)",
                "P_total, every matrix cut to e",
                "P_total as sent (raw where SVD saves nothing)",
                "factored",
                "matrix bytes sent",
            ],
            rows,
        )
    )
    say("P_total is a product of energy fractions, not an accuracy: see model-impact for what the model actually does.")


def model_impact(args, state) -> None:
    from efedllm.analysis import impact, plots
    from efedllm.model.source import resolve

    source = resolve(args.model, progress=say)
    specs = impact.settings(tuple(args.energy), tuple(args.ratio))
    say(f"{len(specs)} settings, each through encode -> checksum -> decode and a full evaluation of {source.name} ...")
    started = time.monotonic()
    result = impact.measure(source.folder, specs, link_mbps=args.link_mbps, progress=say)
    rows = result["rows"]
    base, f16 = rows[0], next((r for r in rows if r["setting"] == "float16"), rows[0])
    say(
        f"all {result['matrices']} matrices of 30 layers; text {result['tokens']} tokens; greedy: {len(result['prompts'])} "
        f"prompts x {impact.GREEDY_TOKENS} tokens; full SVD of every matrix took {result['svd_seconds']:.1f}s (once)"
    )
    say(
        table(
            [
                "setting",
                "MB sent",
                "vs float32",
                "vs float16",
                "factored",
                "min energy",
                "P_total",
                "perplexity",
                "top-1 agree",
                "greedy agree",
                "encode s",
                "reconstruct s",
                f"transfer s @{args.link_mbps:g} Mbit/s",
            ],
            [
                [
                    r["setting"],
                    f"{r['bytes'] / 1e6:.1f}",
                    f"{r['bytes'] / base['bytes']:.1%}",
                    f"{r['bytes'] / f16['bytes']:.1%}",
                    f"{r['factored']}/{result['matrices']}",
                    f"{r['min_energy']:.3f}",
                    f"{r['p_total']:.3g}",
                    f"{r['perplexity']:.4g}",
                    f"{r['top1_agreement']:.1%}",
                    f"{r['greedy_prefix']:.1%}",
                    f"{r['encode_s']:.1f}",
                    f"{r['reconstruct_s']:.1f}",
                    f"{r['transfer_s']:.1f}",
                ]
                for r in rows
            ],
        )
    )
    say(f"answers to {result['prompts'][0]!r}:")
    for r in rows:
        say(f"  {r['setting']:<18} {r['greedy_first_prompt'][:70]!r}")
    (args.out / "model-impact.json").write_text(json.dumps(result, indent=1))
    say(
        f"wrote {plots.model_impact(rows, args.out / 'model-impact.png')} and {args.out / 'model-impact.json'} "
        f"in {time.monotonic() - started:.0f}s"
    )


RUNNERS = {
    "theorem": theorem,
    "eq10": eq10,
    "table3": table3,
    "energy": energy,
    "ptotal": ptotal,
    "model-impact": model_impact,
}
