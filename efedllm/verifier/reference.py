"""The verifier's own, trusted copy of the whole model: what it recomputes opened tasks and canaries with."""

from __future__ import annotations

import threading
from functools import partial

import torch

from efedllm.chain.views import FLOAT32_FULL, Serving
from efedllm.model.decoder import KVCache, Softmax
from efedllm.model.head import ModelEnds
from efedllm.model.serving import served_copy
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
        self._served: dict[Serving, LayerSpan] = {}
        self._building = threading.Lock()
        progress(
            f"verifier model: {source.name}, {self.num_layers} layers on {self.device}"
            + (" with the decomposed softmax" if softmax else "")
        )

    def run(
        self, hidden: torch.Tensor, cache: KVCache, *, past: int, start: int, end: int, serving: Serving = FLOAT32_FULL
    ) -> torch.Tensor:
        """``hidden`` through layers [start, end) computed as ``serving`` declares (its dtype, its weights)."""
        if start == end:
            return hidden
        layers = self.served(serving)
        kwargs = {"softmax": self.softmax} if self.softmax is not None else {}
        hidden = hidden.to(device=self.device, dtype=layers.dtype)
        return layers(hidden, cache, past=past, start=start, end=end, **kwargs).to("cpu")

    def recompute(self, inputs: torch.Tensor, start: int, end: int, *, serving: Serving = FLOAT32_FULL) -> torch.Tensor:
        """Outputs of layers [start, end) for a whole session prefix, computed from scratch as ``serving``."""
        return self.run(inputs, KVCache(), past=0, start=start, end=end, serving=serving)

    def recompute_as(self, serving: Serving):
        """``recompute`` in ``serving``'s configuration (verifier/checks.py ``Recompute``)."""
        return partial(self.recompute, serving=serving)

    def served(self, serving: Serving) -> LayerSpan:
        """The whole model in ``serving``'s configuration: built once from the float32 copy, then kept (under a
        lock: grouped canaries run on threads of their own, and each would build its copy)."""
        if serving == FLOAT32_FULL:
            return self.layers
        with self._building:
            if serving not in self._served:
                self._served[serving] = served_copy(self.layers, serving)
            return self._served[serving]

    @torch.inference_mode()
    def embed(self, token_ids: list[int]) -> torch.Tensor:
        return self.ends.embed_tokens(torch.tensor([token_ids])).to("cpu")

    @torch.inference_mode()
    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """The next token's logits ([vocab], float32 on the CPU) after the last position of ``hidden``."""
        return self.ends.logits(hidden[:, -1:].to(self.device))[0, -1].float().cpu()

    def next_token(self, hidden: torch.Tensor) -> int:
        return int(self.logits(hidden).argmax(-1).item())
