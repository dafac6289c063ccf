"""What weight compression does to the real model, beyond retained energy: bytes, perplexity, greedy tokens, time.

Every setting goes through the real transfer path: each tensor of all layers is encoded as a weight source would
(compression/codec.py), decoded and checked as a receiving server would, and the decoded weights replace the
layers of one LayerSpan of the whole model. The client's ends (efedllm.model.head) score a fixed English text
shipped with the package (data/english-sample.txt: Dickens, Austen, Lincoln and Melville, all public domain, and a
paragraph written for this project; about 1,500 tokens) and generate greedily from a few chat prompts.

The SVD of every matrix is computed once (full SVD) and truncated per setting, as a source serving many
settings would; its time is reported apart. Transfer time is bytes over an assumed link, not a loopback
measurement, because loopback speed says nothing about a network.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import torch
import torch.nn.functional as F

from efedllm.analysis.settings import DEFAULT_ENERGIES, DEFAULT_RATIOS, LINK_MBPS
from efedllm.compression import svd
from efedllm.compression.codec import CodecSpec, decode_tensor, encode_tensor
from efedllm.model.head import ModelEnds
from efedllm.model.span import LayerSpan
from efedllm.model.weights import read_tensors

CPU = torch.device("cpu")
PROMPTS = ("What is the capital of France?", "Write a haiku about the sea.", "List three prime numbers.")
GREEDY_TOKENS = 24


def sample_text() -> str:
    return files("efedllm.analysis").joinpath("data/english-sample.txt").read_text(encoding="utf-8")


def settings(energies=DEFAULT_ENERGIES, ratios=DEFAULT_RATIOS) -> list[CodecSpec]:
    return (
        [CodecSpec(), CodecSpec(codec="float16"), CodecSpec(codec="bfloat16")]
        + [CodecSpec(codec="svd", energy=e) for e in energies]
        + [CodecSpec(codec="svd", ratio=r) for r in ratios]
    )


def layer_tensors(folder: Path, num_layers: int) -> dict[str, torch.Tensor]:
    """Every tensor of every layer, float32, in model order."""
    from efedllm.model.weights import weight_files
    from efedllm.weights.source import layer_index

    names = sorted(
        (n for n in weight_files(folder) if 0 <= layer_index(n) < num_layers), key=lambda n: (layer_index(n), n)
    )
    return read_tensors(folder, names, device=CPU, dtype=torch.float32)


def singular_values(tensors: dict[str, torch.Tensor], *, progress=lambda m: None) -> dict[str, torch.Tensor]:
    """Singular values of every matrix (float64 for the energy sums)."""
    out = {}
    for i, (name, w) in enumerate(tensors.items()):
        if w.dim() == 2:
            out[name] = torch.linalg.svdvals(w).double()
        if i % 40 == 39:
            progress(f"  singular values: {i + 1}/{len(tensors)} tensors")
    return out


@dataclass(frozen=True, kw_only=True)
class Evaluator:
    """The whole model as client ends + one LayerSpan, a fixed text and prompts, and the float32 reference."""

    tokenizer: object
    ends: ModelEnds
    span: LayerSpan
    text_ids: torch.Tensor
    prompt_ids: list[torch.Tensor]

    @classmethod
    def load(cls, folder: Path) -> Evaluator:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(folder)
        ends = ModelEnds(folder, device=CPU)
        span = LayerSpan(folder, 0, ends.config.num_hidden_layers, device=CPU)
        text_ids = tokenizer(sample_text(), return_tensors="pt")["input_ids"]
        prompts = []
        for prompt in PROMPTS:
            ids = tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt"
            )
            prompts.append(ids if torch.is_tensor(ids) else ids["input_ids"])
        return cls(tokenizer=tokenizer, ends=ends, span=span, text_ids=text_ids, prompt_ids=prompts)

    @torch.no_grad()
    def set_weights(self, tensors: dict[str, torch.Tensor]) -> None:
        params = {
            f"model.layers.{self.span.first + i}.{k}": p
            for i, layer in enumerate(self.span.layers)
            for k, p in layer.named_parameters()
        }
        for name, tensor in tensors.items():
            params[name].copy_(tensor)

    @torch.inference_mode()
    def score_text(self) -> tuple[float, torch.Tensor]:
        """Perplexity of the text and the top-1 prediction at every position."""
        ids = self.text_ids
        hidden = self.span(self.ends.embed_tokens(ids), self.span.new_cache(), past=0)
        logits = self.ends.logits(hidden)[0, :-1].float()
        nll = F.cross_entropy(logits, ids[0, 1:].to(logits.device))
        return math.exp(nll.item()), logits.argmax(-1).cpu()

    @torch.inference_mode()
    def greedy(self, ids: torch.Tensor, n: int = GREEDY_TOKENS) -> list[int]:
        cache, past, tokens = self.span.new_cache(), 0, []
        step = ids
        for _ in range(n):
            hidden = self.span(self.ends.embed_tokens(step), cache, past=past)
            past += step.shape[1]
            token = int(self.ends.logits(hidden[:, -1:])[0, -1].argmax())
            tokens.append(token)
            step = torch.tensor([[token]])
        return tokens


def measure(folder: Path, specs: list[CodecSpec], *, link_mbps: float = LINK_MBPS, progress=print) -> dict:
    """One row per setting, compared with the first (which must be raw: the float32 reference)."""
    if not specs or specs[0] != CodecSpec():
        raise ValueError("the first setting must be raw, the reference")
    evaluator = Evaluator.load(folder)
    tensors = layer_tensors(folder, evaluator.span.count)
    started = time.perf_counter()
    thin = {}
    if any(s.codec == "svd" for s in specs):
        for i, (name, w) in enumerate(tensors.items()):
            if w.dim() == 2:
                thin[name] = svd.full_svd(w)
            if i % 60 == 59:
                progress(f"  SVD of every matrix: {i + 1}/{len(tensors)} tensors")
    svd_seconds = time.perf_counter() - started
    rows, ref_top1, ref_greedy = [], None, None
    for spec in specs:
        progress(f"  {spec.describe()} ...")
        row, top1, greedy = _run_setting(evaluator, tensors, thin, spec, link_mbps, reference=rows[0] if rows else None)
        if ref_top1 is None:
            ref_top1, ref_greedy = top1, greedy
        top1, greedy = (ref_top1, ref_greedy) if top1 is None else (top1, greedy)
        row["top1_agreement"] = float((top1 == ref_top1).float().mean())
        row["greedy_prefix"] = sum(map(_prefix, greedy, ref_greedy)) / (len(greedy) * GREEDY_TOKENS)
        eos = evaluator.tokenizer.eos_token_id
        answer = greedy[0][: greedy[0].index(eos)] if eos in greedy[0] else greedy[0]
        row["greedy_first_prompt"] = evaluator.tokenizer.decode(answer, skip_special_tokens=True)
        rows.append(row)
    evaluator.set_weights(tensors)
    return {
        "svd_seconds": svd_seconds,
        "link_mbps": link_mbps,
        "rows": rows,
        "prompts": list(PROMPTS),
        "matrices": sum(1 for w in tensors.values() if w.dim() == 2),
        "tokens": int(evaluator.text_ids.shape[1]),
    }


def _run_setting(
    evaluator: Evaluator, tensors: dict, thin: dict, spec: CodecSpec, link_mbps: float, *, reference: dict | None
):
    """The row of one setting, with the top-1 predictions and greedy tokens; where every decoded tensor is
    bit-identical to the original (an svd setting that factored nothing), the reference's results stand."""
    encode_s = decode_s = 0.0
    sent = raw = 0
    energies_by_layer: dict[int, list[float]] = {}
    factored = 0
    decoded = {}
    for name, w in tensors.items():
        t0 = time.perf_counter()
        enc = encode_tensor(name, w, spec, method="full", precomputed=thin.get(name))
        t1 = time.perf_counter()
        decoded[name] = decode_tensor(enc.entry, enc.data)
        decode_s += time.perf_counter() - t1
        encode_s += t1 - t0
        sent += len(enc.data)
        raw += 4 * w.numel()
        if w.dim() == 2:
            layer = int(name.split(".")[2])
            energies_by_layer.setdefault(layer, []).append(enc.entry.get("energy", 1.0))
            factored += enc.entry["codec"] == "svd"
    row = {"setting": spec.describe(), "bytes": sent, "raw_bytes": raw, "factored": factored}
    if reference is not None and all(torch.equal(decoded[n], w) for n, w in tensors.items()):
        ppl, top1, greedy = reference["perplexity"], None, None
    else:
        evaluator.set_weights(decoded)
        ppl, top1 = evaluator.score_text()
        greedy = [evaluator.greedy(ids) for ids in evaluator.prompt_ids]
    energies = [e for layer in energies_by_layer.values() for e in layer]
    return (
        {
            **row,
            "min_energy": min(energies),
            "p_total": math.prod(sum(v) / len(v) for v in energies_by_layer.values()),
            "perplexity": ppl,
            "encode_s": encode_s,
            "reconstruct_s": decode_s,
            "transfer_s": sent * 8 / (link_mbps * 1e6),
        },
        top1,
        greedy,
    )


def _prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n
