"""A contiguous span of transformer layers, loaded alone: what a server holds and runs.

The layers are built on PyTorch's ``meta`` device (no memory) and their tensors are read from the safetensors
files straight into the parameters, so a server never holds more than its span, not even while loading.
"""

from __future__ import annotations

from pathlib import Path

import torch

from efedllm.errors import EfedError
from efedllm.model.decoder import DecoderConfig, DecoderLayer, KVCache, Softmax, rotary
from efedllm.model.weights import read_tensors


def pick_device(requested: str | None = None) -> torch.device:
    """CUDA when present (or as requested), else CPU."""
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class LayerSpan(torch.nn.Module):
    """Layers ``[first, first + count)``; ``forward`` runs new hidden states through them with a KV cache."""

    def __init__(self, folder: Path, first: int, count: int, *, device: torch.device, dtype=torch.float32):
        super().__init__()
        config = DecoderConfig.from_folder(folder)
        total = config.num_hidden_layers
        if count < 1 or first < 0 or first + count > total:
            raise EfedError(f"layers {first}:{first + count} are outside the model's 0:{total}")
        self.config, self.first, self.count, self.device, self.dtype = config, first, count, device, dtype
        with torch.device("meta"):
            self.layers = torch.nn.ModuleList(
                DecoderLayer(config, config.sliding_windows[first + i]) for i in range(count)
            )
        for i, layer in enumerate(self.layers):
            # The tensors read from disk become the parameters (assign=True): no second copy at any moment.
            names = {f"model.layers.{first + i}.{k}": k for k in layer.state_dict()}
            tensors = read_tensors(folder, names, device=device, dtype=dtype)
            layer.load_state_dict({k: tensors[n] for n, k in names.items()}, strict=True, assign=True)
        self.eval()

    def new_cache(self) -> KVCache:
        return KVCache()

    @torch.inference_mode()
    def forward(
        self,
        hidden: torch.Tensor,
        cache: KVCache,
        *,
        past: int,
        start: int | None = None,
        end: int | None = None,
        softmax: Softmax | None = None,
    ) -> torch.Tensor:
        """Run ``hidden`` ([batch, new tokens, hidden size]) through layers ``[start, end)`` (absolute indices,
        default: the whole span) after the ``past`` tokens that ``cache`` already holds for those layers.
        ``softmax``: compute attention explicitly with this softmax instead of the fused SDPA kernel (a
        verifier's recomputation); None keeps the kernel."""
        start = self.first if start is None else start
        end = self.first + self.count if end is None else end
        positions = torch.arange(past, past + hidden.shape[1], device=hidden.device).unsqueeze(0)
        cos, sin = rotary(self.config, positions, hidden.dtype)
        for index in range(start - self.first, end - self.first):
            hidden = self.layers[index](hidden, cos, sin, cache, index, past, softmax=softmax)
        return hidden

    def kv_bytes_per_token(self) -> int:
        """Cache bytes one token costs in this span: keys and values of every layer."""
        c = self.config
        return 2 * self.count * c.num_key_value_heads * c.head_dim * (torch.finfo(self.dtype).bits // 8)
