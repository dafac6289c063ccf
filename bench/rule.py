"""The verifier's rule per declared configuration (efedllm/verifier/rules.py) scored on measured deviations: honest
false fraud, and the detection of each cheat per opened step and per epoch.

    python bench/precision.py --verifier declared --spans wide --decode 304 --out bench/results/precision-declared-10k.json
    python bench/gpu.py --device cpu --verifiers cpu --spans wide --decode 300 --out bench/results/gpu-cpu-10k.json
    python bench/rule.py                              # this: tables, and docs/precision-rule.png

(The first run: honest and cheats, 10,065 steps per configuration and case; the second: honest, 9,933.)

Reads the raw values those two runs wrote (``--cheats``, ``--honest``): every step's ``deviation`` from the
verifier's recomputation in the declared configuration, with its span length. A step is fraud when its deviation
exceeds ``rules.tolerance(serving, layers)``, as ``check_opening`` decides. Per epoch: a server that cheats on every
step is caught when any of the verifier's ``--openings`` opened steps is (1 - (1 - p)^n; canaries come on top).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from efedllm.chain.views import Serving
from efedllm.cli.common import table
from efedllm.verifier import rules
from efedllm.verifier.sampling import DEFAULT_SAMPLES

LABELS = {"int8/f32": "int8/float32", "int8/bf16": "int8/bfloat16"}


def serving(label: str) -> Serving:
    weights, _, dtype = LABELS.get(label, label).rpartition("/")
    return Serving.named(dtype=dtype, quantize=weights or None)


def ratio(record: dict, label: str) -> float:
    """deviation / the bound for its configuration and span length (> 1: fraud)."""
    layers = record.get("count") or record.get("layers")
    return record["deviation"] / rules.tolerance(serving(label), layers)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cheats", type=Path, default=Path("bench/results/precision-declared-10k.json"))
    parser.add_argument("--honest", type=Path, default=Path("bench/results/gpu-cpu-10k.json"))
    parser.add_argument("--openings", type=int, default=DEFAULT_SAMPLES)
    parser.add_argument("--plot", type=Path, default=Path("docs/precision-rule.png"))
    args = parser.parse_args()
    cheats = json.loads(args.cheats.read_text())["values"]
    rows, ratios = [], {}
    for label, cases in cheats.items():
        for case, records in cases.items():
            r = [ratio(x, label) for x in records]
            ratios[(LABELS.get(label, label), case)] = r
            caught = sum(x > 1 for x in r) / len(r)
            per_epoch = 1 - (1 - caught) ** args.openings
            if case == "honest":
                rows.append(
                    [
                        LABELS.get(label, label),
                        case,
                        len(r),
                        f"max {max(r):.2f}",
                        f"false fraud {sum(x > 1 for x in r)}",
                        "-",
                    ]
                )
            else:
                rows.append(
                    [LABELS.get(label, label), case, len(r), f"min {min(r):.2f}", f"{caught:.1%}", f"{per_epoch:.1%}"]
                )
    print(f"cheats ({args.cheats}): deviation / bound; caught per opened step and per epoch ({args.openings} openings)")
    print(table(["declared", "case", "steps", "dev / bound", "caught per step", "per epoch"], rows))
    if args.honest.exists():
        honest = json.loads(args.honest.read_text())["records"]
        rows = []
        for label in dict.fromkeys(r["config"] for r in honest):
            for layers in sorted({r["layers"] for r in honest}):
                mine = [r for r in honest if r["config"] == label and r["layers"] == layers]
                worst = max(r["deviation"] for r in mine)
                bound = rules.tolerance(serving(label), layers)  # the rule now, not the one the run used
                over = sum(r["deviation"] > bound for r in mine)
                rows.append(
                    [
                        label,
                        layers,
                        len(mine),
                        f"{worst:.2e}",
                        f"{bound:.1e}",
                        f"{bound / worst:.1f}x" if worst else "inf",
                        over,
                    ]
                )
            ratios[(label, "honest (10k)")] = [ratio(r, label) for r in honest if r["config"] == label]
        print(f"\nhonest steps ({args.honest}, {len(honest)} in all): the worst per span length against its bound")
        print(table(["declared", "layers", "steps", "honest max", "bound", "margin", "false fraud"], rows))
    plot(ratios, args.plot)
    print(f"\nplot: {args.plot}")
    return 0


def plot(ratios: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels = list(dict.fromkeys(label for label, _ in ratios))
    fig, axes = plt.subplots(len(labels), 1, figsize=(9, 2.1 * len(labels)), sharex=True)
    bins = np.logspace(-8, 2, 81)
    for ax, label in zip(axes, labels):
        for (of, case), values in ratios.items():
            if of != label:
                continue
            honest = case.startswith("honest")
            ax.hist(
                np.clip(values, 1.01e-8, 99),
                bins=bins,
                histtype="step" if not honest else "stepfilled",
                alpha=0.35 if honest else 0.9,
                label=case,
                linewidth=1.2,
            )
        ax.axvline(1.0, color="black", linestyle="--", linewidth=1)
        ax.set_xscale("log")
        ax.set_ylabel(label, rotation=0, ha="right", va="center")
        ax.legend(fontsize=6, ncol=4, loc="upper left")
    axes[-1].set_xlabel("deviation / the verifier's bound (right of the dashed line: fraud)")
    fig.suptitle("Verifier's statistic per opened step, honest and cheating, by declared configuration (CPU)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    raise SystemExit(main())
