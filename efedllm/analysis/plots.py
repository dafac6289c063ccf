"""PNG plots for ``efedllm analyze``: the paper's Figures 5, 6 and 7, recomputed, and the model-impact plot."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

from efedllm.analysis.paper import READINGS, Table3


def _save(fig, path: Path, rect=(0, 0, 1, 1)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout(rect=rect)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def figure5(
    curves: dict[str, list[tuple[list[float], list[float]]]], paper_point: tuple[float, float], path: Path
) -> Path:
    """Retained energy (eq. 9) against compression ratio (eq. 10) for k = 1..r, one colour per matrix type."""
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for i, (label, lines) in enumerate(curves.items()):
        for j, (ratios, energies) in enumerate(lines):
            ax.plot(
                ratios,
                energies,
                color=f"C{i}",
                alpha=0.35 if len(lines) > 1 else 1.0,
                lw=1,
                label=label if j == 0 else None,
            )
    ax.axvline(1.0, color="k", ls="--", lw=1, label="ratio 1: factors as big as the matrix")
    ax.plot(*paper_point, "k*", ms=12, label="paper: GPT-2 c_attn, top 40%")
    ax.set(
        xlabel="compression ratio (eq. 10)",
        ylabel="retained energy P (eq. 9)",
        xlim=(0, 2),
        ylim=(0, 1.01),
        title="Fig. 5 on SmolLM2-135M: every layer, each matrix type",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def figure6(rows: list[Table3], path: Path) -> Path:
    """Memory reads of WX and compressed WX, (a) without and (b) with the memory hierarchy."""
    ratios = [r.ratio for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, attr, title in (
        (axes[0], "reads_plain", "(a) without hierarchy"),
        (axes[1], "reads_hierarchy", "(b) with hierarchy"),
    ):
        ax.plot(ratios, [getattr(r, attr)[0] for r in rows], "o-", label="WX")
        ax.plot(ratios, [getattr(r, attr)[1] for r in rows], "s-", label="compressed WX")
        ax.set(xlabel="compression ratio", ylabel="memory reads (elements)", title=title)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"Fig. 6: BERT FFN {rows[0].m}x{rows[0].n}, {rows[0].t} columns of X")
    return _save(fig, path)


def figure7(ratios: list[float], rates: list[dict[str, float]], claim: tuple[float, float], path: Path) -> Path:
    """Bandwidth reduce rate (eq. 16, 17) against compression ratio, for each reading of 'original'."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in READINGS:
        ax.plot(ratios, [r[name] for r in rates], "o-", label=name)
    ax.plot(*claim, "k*", ms=12, label="paper's statement (0.7 -> 60%)")
    ax.set(
        xlabel="compression ratio",
        ylabel="bandwidth reduce rate",
        ylim=(0, 1.05),
        title="Fig. 7: BERT FFN 3072x768, sequence 30, batch 10",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def model_impact(rows: list[dict], path: Path) -> Path:
    """Perplexity and top-1 agreement against bytes sent, one marker per setting (legend below)."""
    base = rows[0]["bytes"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    markers = {"raw": "o", "float16": "^", "bfloat16": "v"}
    for i, row in enumerate(rows):
        x = row["bytes"] / base
        style = dict(marker=markers.get(row["setting"], "s"), ms=9, ls="none", color=f"C{i % 10}", alpha=0.8)
        axes[0].plot(x, row["perplexity"], label=row["setting"], **style)
        axes[1].plot(x, row["top1_agreement"], **style)
    axes[0].set(
        yscale="log",
        xlabel="bytes sent / raw float32",
        ylabel="perplexity on the shipped text (log)",
        title=f"perplexity (float32: {rows[0]['perplexity']:.2f})",
    )
    axes[1].set(
        xlabel="bytes sent / raw float32",
        ylabel="top-1 agreement with float32",
        ylim=(-0.02, 1.02),
        title="next-token agreement on the shipped text",
    )
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.legend(loc="lower center", ncol=min(len(rows), 5), fontsize=8)
    fig.suptitle("What weight compression does to SmolLM2-135M (all 30 layers)")
    return _save(fig, path, rect=(0, 0.1, 1, 1))
