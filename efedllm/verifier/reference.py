"""The verifier's own, trusted copy of the whole model: what it recomputes opened tasks and canaries with."""

from __future__ import annotations

import torch

from efedllm.model.decoder import KVCache, Softmax
from efedllm.model.head import ModelEnds
from efedllm.model.source import resolve
from efedllm.model.span import LayerSpan, pick_device


class ReferenceModel:
    def __init__(self, model: str, *, device: str | None = None, softmax: Softmax | None = None, progress=print):
        source = resolve(model, progress=progress)
        self.device = pick_device(device)
        self.ends = ModelEnds(source.folder, device=self.device)
        self.layers = LayerSpan(source.folder, 0, source.num_layers, device=self.device)
        self.num_layers, self.dtype, self.softmax = source.num_layers, self.layers.dtype, softmax
        self.folder = source.folder
        progress(
            f"verifier model: {source.name}, {self.num_layers} layers on {self.device}"
            + (" with the decomposed softmax" if softmax else "")
        )

    def run(self, hidden: torch.Tensor, cache: KVCache, *, past: int, start: int, end: int) -> torch.Tensor:
        if start == end:
            return hidden
        kwargs = {"softmax": self.softmax} if self.softmax is not None else {}
        return self.layers(hidden.to(self.device), cache, past=past, start=start, end=end, **kwargs).to("cpu")

    def recompute(self, inputs: torch.Tensor, start: int, end: int) -> torch.Tensor:
        """Outputs of layers [start, end) for a whole session prefix, computed from scratch."""
        return self.run(inputs.to(self.dtype), KVCache(), past=0, start=start, end=end)

    @torch.inference_mode()
    def embed(self, token_ids: list[int]) -> torch.Tensor:
        return self.ends.embed_tokens(torch.tensor([token_ids])).to("cpu")

    @torch.inference_mode()
    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """The next token's logits ([vocab], float32 on the CPU) after the last position of ``hidden``."""
        return self.ends.logits(hidden[:, -1:].to(self.device))[0, -1].float().cpu()

    def next_token(self, hidden: torch.Tensor) -> int:
        return int(self.logits(hidden).argmax(-1).item())
