"""Can the verifier tell an honest low-precision server from a cheat? Measured, per declared serving configuration.

    python bench/precision.py [--verifier float32|declared] [--steps 16 | --decode 304] [--spans few|wide] [--quick]
                              [--k 32] [--headroom 2]

Serving configurations: float32, bfloat16, float16, int8 weights with float32 compute, int8 with bfloat16
compute (efedllm/model/quantize.py). For each, a server span serves every prompt (chat, code, a ~500-token
document) as one prefill step and then ``steps`` decode steps (the prompt's last tokens fed one at a time through
the KV cache, as a real session's generated tokens are; with ``--decode N``, N tokens of the model's own greedy
continuation after the whole prompt), for spans of 1, 5 and 10 layers at the start, middle and
end of the model. Its inputs are the float32 model's hidden states at the span's first layer, cast to the served
dtype. The verifier recomputes every position from 0 in one pass, in one of two modes:

- ``--verifier float32`` (default; what ``ReferenceModel.recompute`` does today): in float32, from the float
  weights (for an int8 declaration from the same int8 weights, quantized again by itself, in float32 compute);
- ``--verifier declared`` (as TOPLOC does): in the declared configuration's own dtype, from the same weights the
  server holds (for an int8 declaration the same int8 weights in the declared compute dtype). The honest
  difference is then only the order of accumulation (the server decodes token by token through its KV cache, the
  verifier runs all positions at once), not the rounding of every value to the served dtype, so a small cheat
  has a chance to stand out of it (docs/PRECISION.md: it does in float16, not in bfloat16, where one flipped
  rounding is already as large as the cheats).

Each step is scored with these statistics:

- ``deviation``: the verifier's current check (efedllm/verifier/checks.py): worst per-token relative L2 error, the
  expected output first cast to the served dtype, as ``check_opening`` does;
- TOPLOC-inspired, over the k largest |expected| values of each token: ``topk-miss``, the fraction of those k
  indices missing from the served output's own top k (worst token), and ``topk-err``, the mean relative error
  |served - expected| / |expected| at those indices (worst token);
- TOPLOC-like bit-level comparisons, at the same k indices with both values in the declared dtype: ``topk-exp``,
  the number of coordinates whose sign or exponent differ (worst token), and ``topk-ulp``, the mean distance in
  units in the last place of the declared dtype (worst token). Where the exponents agree the distance is TOPLOC's
  mantissa difference; unlike TOPLOC's mean, which skips the coordinates whose exponent differs (so that a token
  whose every exponent moved scores 0), it counts the representable values between the two across a power of two
  or zero. Both count rounding steps, the unit in which an honest run in the same precision differs.

Cheats, each scored against the declared configuration's verifier: ``noise`` (Gaussian noise at 0.5% of each
token's RMS added to the honest output), ``skip`` (the span's last layer not run), ``lower`` (a lower precision
than declared: bfloat16 for float32, float16 and int8 for bfloat16, bfloat16 for float16, int8/bfloat16 and 4-bit
weights for int8/float32, 4-bit weights for int8/bfloat16; outputs cast back to the declared dtype) and ``model``
(every weight tensor perturbed by Gaussian noise at 1% of its std). ``skip`` and ``model`` run each sequence in
one pass (the decode steps' outputs taken at their positions): a cheat's error is far above the kernel-path
difference that this saves. Honest runs and ``lower`` take the real prefill-then-decode path.

Per configuration and statistic the table gives the honest max / p99.9 / median, each cheat's min / p0.1 /
median, whether one threshold separates every honest step from every cheat step (margin = the weakest cheat's min
over the honest max), and the fraction of each cheat's steps caught at ``headroom`` x the honest max. Raw values
go to bench/results/precision[-declared][-quick].json. CPU only; batched serving and CUDA kernels are not measured
here (on a GPU the server's and the verifier's kernels may accumulate in other orders than the CPU's).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from efedllm.openmp import OPENMP_ENV

os.environ.update({k: os.environ.get(k, v) for k, v in OPENMP_ENV.items()})  # before torch loads

import numpy as np
import torch
from transformers import AutoTokenizer

from efedllm.cli.common import table
from efedllm.model.head import ModelEnds
from efedllm.model.quantize import quantize_int8
from efedllm.model.source import resolve
from efedllm.model.span import LayerSpan
from efedllm.verifier.checks import deviation

CPU = torch.device("cpu")
F32, BF16, F16 = torch.float32, torch.bfloat16, torch.float16
STATS = ("deviation", "topk-miss", "topk-err", "topk-exp", "topk-ulp")
VERIFIERS = ("float32", "declared")
BITS = {F32: (torch.int32, 32, 23), BF16: (torch.int16, 16, 7), F16: (torch.int16, 16, 10)}
"""dtype -> (integer view, bits, mantissa bits): where TOPLOC's exponent and mantissa comparison reads them."""


@dataclass(frozen=True)
class Config:
    name: str
    dtype: torch.dtype
    levels: int = 0
    """0: float weights; 127: int8 weights (quantize.py); 7: the 4-bit cheat, same format on a coarser grid."""


CONFIGS = {
    c.name: c
    for c in (
        Config("float32", F32),
        Config("bfloat16", BF16),
        Config("float16", F16),
        Config("int8/f32", F32, 127),
        Config("int8/bf16", BF16, 127),
        Config("int4/f32", F32, 7),
        Config("int4/bf16", BF16, 7),
    )
}
FEW = ((0, 1), (15, 1), (29, 1), (0, 5), (12, 5), (25, 5), (0, 10), (10, 10), (20, 10))
WIDE = ((0, 1), (7, 1), (15, 1), (22, 1), (29, 1), (0, 5), (12, 5), (25, 5), (0, 10), (10, 10), (20, 10))
"""``--spans wide`` (bench/gpu.py's): with 3 prompts and ``--decode 304``, 10,065 steps per configuration and case."""
DECLARED = ("float32", "bfloat16", "float16", "int8/f32", "int8/bf16")
LOWER = {
    "float32": ("bfloat16",),
    "bfloat16": ("float16", "int8/bf16"),
    "float16": ("bfloat16",),
    "int8/f32": ("int8/bf16", "int4/f32"),
    "int8/bf16": ("int4/bf16",),
}
CHAT = "Explain in a few sentences why the sky is blue, and then say why sunsets are red."
CODE = '''def merge(a: list[int], b: list[int]) -> list[int]:
    """Merge two sorted lists into one sorted list."""
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        if a[i] <= b[j]:
            out.append(a[i]); i += 1
        else:
            out.append(b[j]); j += 1
    return out + a[i:] + b[j:]
'''
DOCUMENT = (
    "The lighthouse stood on a spit of black rock at the mouth of the harbour, and for forty years its keeper had "
    "climbed the hundred and twelve steps at dusk to light the lamp. The town below lived by the sea: its boats "
    "left before dawn for the cod banks, its women mended nets on the quay, and its children learned the names of "
    "the winds before they learned to read. In winter the storms came from the north-west, and the keeper logged "
    "each one: the hour, the height of the swell, the ships that passed and the ones that did not come back. "
)


def prompts(tokenizer, quick: bool) -> dict[str, list[int]]:
    chat = lambda text: tokenizer.apply_chat_template(  # noqa: E731
        [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True, return_dict=True
    )["input_ids"]
    out = {"chat": list(chat(CHAT)), "code": tokenizer(CODE)["input_ids"]}
    if not quick:
        long = chat(f"Summarise this story, then continue it.\n\n{DOCUMENT * 6}\n{CODE}\n{DOCUMENT}")
        out["long"] = list(long)[:500]
    return out


def build(base: LayerSpan, config: Config, *, perturb: int | None = None) -> LayerSpan:
    """A copy of the float32 ``base`` span served as ``config``; ``perturb``: seed of the 1% weight noise."""
    span = copy.deepcopy(base)
    if perturb is not None:
        g = torch.Generator().manual_seed(perturb)
        for p in span.parameters():
            p.data += torch.randn(p.shape, generator=g) * 0.01 * p.data.float().std()
    if config.levels:
        return quantize_int8(span, compute_dtype=config.dtype, levels=config.levels)
    span.to(config.dtype)
    span.dtype = config.dtype
    return span


def serve(span: LayerSpan, x: torch.Tensor, prefill: int, *, one_pass: bool = False, drop: int = 0) -> torch.Tensor:
    """Outputs for every position: a prefill of ``prefill`` tokens, then one token at a time (or all at once)."""
    end = span.first + span.count - drop
    if end == span.first:
        return x.clone()
    if one_pass:
        return span(x, span.new_cache(), past=0, end=end)
    cache = span.new_cache()
    outs = [span(x[:, :prefill], cache, past=0, end=end)]
    for t in range(prefill, x.shape[1]):
        outs.append(span(x[:, t : t + 1], cache, past=t, end=end))
    return torch.cat(outs, dim=1)


def split_bits(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sign and exponent field, ordinal) of ``v``'s IEEE bits, as int64. The ordinal is the signed magnitude of
    the bit pattern: consecutive representable values of ``v``'s dtype have consecutive ordinals, so the difference
    of two ordinals is their distance in ulps, whether or not their exponents agree."""
    view, width, mantissa = BITS[v.dtype]
    b = v.contiguous().view(view).long() & ((1 << width) - 1)
    magnitude = b & ((1 << (width - 1)) - 1)
    return b >> mantissa, torch.where(b >> (width - 1) == 1, -magnitude, magnitude)


def step_stats(served: torch.Tensor, expected: torch.Tensor, k: int) -> dict[str, float]:
    """The statistics of one step: ``served`` in its own (the declared) dtype, ``expected`` the verifier's
    recomputation (float32, or already the declared dtype); bit-level comparisons are in ``served``'s dtype."""
    s, e = served.reshape(-1, served.shape[-1]).double(), expected.reshape(-1, expected.shape[-1]).double()
    idx_e, idx_s = e.abs().topk(k, dim=-1).indices, s.abs().topk(k, dim=-1).indices
    in_e = torch.zeros_like(e, dtype=torch.bool).scatter_(1, idx_e, True)
    in_s = torch.zeros_like(s, dtype=torch.bool).scatter_(1, idx_s, True)
    miss = 1 - (in_e & in_s).sum(-1).double() / k
    ev, sv = e.gather(1, idx_e), s.gather(1, idx_e)
    err = ((sv - ev).abs() / ev.abs().clamp_min(1e-12)).mean(-1)
    exp_s, ord_s = split_bits(served.reshape(s.shape).gather(1, idx_e))
    exp_e, ord_e = split_bits(expected.to(served.dtype).reshape(e.shape).gather(1, idx_e))
    same = exp_s == exp_e
    ulps = (ord_s - ord_e).abs().double().mean(-1)
    return {
        "deviation": deviation(served, expected.to(served.dtype)),
        "topk-miss": miss.max().item(),
        "topk-err": err.max().item(),
        "topk-exp": (~same).sum(-1).max().item(),
        "topk-ulp": ulps.max().item(),
    }


def measure_span(
    base: LayerSpan, x0: torch.Tensor, prefill: int, k: int, verifier: str = "float32"
) -> dict[str, dict[str, list[dict]]]:
    """Declared configuration -> case (honest or a cheat) -> the statistics of every step, for one span serving
    one prompt whose float32 inputs at the span's first layer are ``x0``; ``verifier``: the recomputation's
    precision, float32 or the declared configuration's own (see the module docstring)."""
    steps = [slice(0, prefill)] + [slice(t, t + 1) for t in range(prefill, x0.shape[1])]
    seed = 1000 * base.first + base.count
    built = {name: build(base, c) for name, c in CONFIGS.items()}
    served: dict = {}

    def honest(name: str, input_dtype: torch.dtype) -> torch.Tensor:
        """Served by ``name`` from inputs in ``input_dtype`` (memoised: a lower-precision cheat often receives
        exactly the inputs of that configuration's honest run)."""
        key = (name, input_dtype)
        if key not in served:
            served[key] = serve(built[name], x0.to(input_dtype).to(CONFIGS[name].dtype), prefill)
        return served[key]

    float32_verifier = {0: base, 127: built["int8/f32"]}
    result: dict = {}
    for dname in DECLARED:
        declared = CONFIGS[dname]
        x = x0.to(declared.dtype)
        if verifier == "declared":  # the verifier's own copy, built (and for int8 quantized) from the float weights
            expected = serve(build(base, declared), x, prefill, one_pass=True)
        else:
            expected = serve(float32_verifier[declared.levels], x.float(), prefill, one_pass=True)
        out = honest(dname, declared.dtype)
        g = torch.Generator().manual_seed(seed)
        rms = out.float().pow(2).mean(-1, keepdim=True).sqrt()
        cases = {
            "honest": out,
            "noise": (out.float() + torch.randn(out.shape, generator=g) * 0.005 * rms).to(declared.dtype),
            "skip": serve(built[dname], x, prefill, one_pass=True, drop=1),
            "model": serve(build(base, declared, perturb=seed), x, prefill, one_pass=True),
        }
        for lower in LOWER[dname]:
            key_dtype = declared.dtype if declared.dtype != F32 else CONFIGS[lower].dtype
            cases[f"lower:{lower}"] = honest(lower, key_dtype).to(declared.dtype)
        result[dname] = {
            case: [step_stats(output[:, sl], expected[:, sl], k) for sl in steps] for case, output in cases.items()
        }
    return result


@torch.inference_mode()
def continuation(ends: ModelEnds, full: LayerSpan, ids: list[int], n: int) -> list[int]:
    """``n`` tokens the float32 model generates greedily after ``ids`` (EOS included: the text goes on past it)."""
    cache, out = full.new_cache(), []
    h = full(ends.embed_tokens(torch.tensor([ids])), cache, past=0)
    for _ in range(n):
        out.append(int(ends.logits(h[:, -1:]).argmax(-1)))
        h = full(ends.embed_tokens(torch.tensor([[out[-1]]])), cache, past=len(ids) + len(out) - 1)
    return out


def collect(args) -> dict:
    source = resolve()
    tokenizer = AutoTokenizer.from_pretrained(source.folder)
    ends = ModelEnds(source.folder, device=CPU)
    full = LayerSpan(source.folder, 0, source.num_layers, device=CPU)
    spans = [(0, 1), (10, 5)] if args.quick else WIDE if args.spans == "wide" else FEW
    values: dict = {d: {} for d in DECLARED}
    for pname, ids in prompts(tokenizer, args.quick).items():
        if args.decode:  # the model's own greedy continuation, served one token at a time as a session's would be
            ids = ids + continuation(ends, full, ids, args.decode)
        hidden = [ends.embed_tokens(torch.tensor([ids]))]
        for i in range(source.num_layers):  # the float32 model's input to every layer, for every position
            hidden.append(full(hidden[-1], full.new_cache(), past=0, start=i, end=i + 1))
        steps = args.decode or args.steps
        prefill = len(ids) - steps
        print(f"{pname}: {len(ids)} tokens (prefill {prefill}, {steps} decode steps)", flush=True)
        for first, count in spans:
            base = LayerSpan(source.folder, first, count, device=CPU)
            for dname, cases in measure_span(base, hidden[first], prefill, args.k, args.verifier).items():
                for case, stats in cases.items():
                    rows = values[dname].setdefault(case, [])
                    rows += [
                        {"prompt": pname, "first": first, "count": count, "step": j, **r} for j, r in enumerate(stats)
                    ]
            print(f"  layers {first}:{first + count} done", flush=True)
    return values


def summarise(values: dict, headroom: float, k: int) -> tuple[list[list], list[list]]:
    fmt = lambda v: f"{v:.2e}"  # noqa: E731
    detail, summary = [], []
    for dname, cases in values.items():
        for stat in STATS:
            arr = {case: np.array([r[stat] for r in rows]) for case, rows in cases.items()}
            h = arr.pop("honest")
            hmax = h.max()
            if stat == "topk-miss":  # counts: at least two coordinates more than the worst honest step
                threshold = hmax + 2 / k
            elif stat == "topk-exp":
                threshold = max(headroom * hmax, hmax + 2)
            else:
                threshold = headroom * hmax
            detail.append(
                [dname, stat, "honest", len(h), fmt(hmax), fmt(np.quantile(h, 0.999)), fmt(np.median(h)), "", ""]
            )
            for case, a in arr.items():
                caught = (a > threshold).mean()
                detail.append(
                    [
                        dname,
                        stat,
                        case,
                        len(a),
                        fmt(a.min()),
                        fmt(np.quantile(a, 0.001)),
                        fmt(np.median(a)),
                        "",
                        f"{caught:.3f}",
                    ]
                )
            weakest = min(arr, key=lambda c: arr[c].min())
            cmin = arr[weakest].min()
            margin = cmin / hmax if hmax > 0 else float("inf")
            summary.append(
                [
                    dname,
                    stat,
                    fmt(hmax),
                    f"{weakest} {fmt(cmin)}",
                    f"{margin:.2f}",
                    "yes" if cmin > hmax else "NO",
                    fmt(threshold),
                    f"{min((a > threshold).mean() for a in arr.values()):.3f}",
                ]
            )
    return detail, summary


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--verifier",
        choices=VERIFIERS,
        default="float32",
        help="the recomputation's precision: float32, or the declared configuration's own (default: %(default)s)",
    )
    p.add_argument("--steps", type=int, default=16, help="decode steps per prompt and span (default: %(default)s)")
    p.add_argument(
        "--decode",
        type=int,
        default=0,
        help="decode steps of the model's own greedy continuation after each whole prompt, instead of --steps of "
        "the prompt's last tokens (default: off)",
    )
    p.add_argument("--spans", choices=("few", "wide"), default="few", help="9 spans, or 11 (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="two short prompts, two spans (a smoke run, < 3 minutes)")
    p.add_argument("--k", type=int, default=32, help="top-k size of the TOPLOC-like statistics (default: %(default)s)")
    p.add_argument(
        "--headroom", type=float, default=2.0, help="threshold = this x the honest max (default: %(default)s)"
    )
    p.add_argument(
        "--out", type=Path, default=None, help="JSON file (default: bench/results/precision[-declared][-quick].json)"
    )
    args = p.parse_args()
    if args.quick:
        args.steps = min(args.steps, 3)
    torch.manual_seed(0)
    began = time.perf_counter()
    values = collect(args)
    detail, summary = summarise(values, args.headroom, args.k)
    print()
    print(table(["declared", "statistic", "case", "steps", "max|min", "p99.9|p0.1", "median", "", "caught"], detail))
    print()
    headers = ["declared", "statistic", "honest max", "weakest cheat min", "margin", "separates", "threshold"]
    print(table([*headers, "worst caught"], summary))
    name = "precision" + ("-declared" if args.verifier == "declared" else "") + ("-quick" if args.quick else "")
    out = args.out or Path(__file__).parent / "results" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"verifier": args.verifier, "steps": args.decode or args.steps, "decode": args.decode, "quick": args.quick}
    meta |= {"spans": args.spans, "k": args.k}
    meta |= {"headroom": args.headroom}
    meta |= {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": "cpu"}
    out.write_text(json.dumps({"meta": meta, "values": values}, indent=1))
    print(f"\n{time.perf_counter() - began:.0f} s; raw values in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
