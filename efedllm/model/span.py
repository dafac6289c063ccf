"""A contiguous span of transformer layers, loaded alone: what a server holds and runs.

The full model is instantiated on PyTorch's ``meta`` device (no memory), the span's layers are materialized
on the real device, and only their tensors are read from the safetensors files. The layers are the model's own
transformers modules, so a chain of spans computes exactly what the whole model computes.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, DynamicCache

from efedllm.errors import EfedError
from efedllm.model.weights import read_tensors


def pick_device(requested: str | None = None) -> torch.device:
    """CUDA when present (or as requested), else CPU."""
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_config(folder: Path):
    config = AutoConfig.from_pretrained(folder)
    config._attn_implementation = "sdpa"
    return config


def skeleton(config):
    """The whole model on the meta device: structure without memory."""
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")


class LayerSpan(torch.nn.Module):
    """Layers ``[first, first + count)``; ``forward`` runs new hidden states through them with a KV cache."""

    def __init__(self, folder: Path, first: int, count: int, *, device: torch.device, dtype=torch.float32):
        super().__init__()
        config = load_config(folder)
        total = config.num_hidden_layers
        if count < 1 or first < 0 or first + count > total:
            raise EfedError(f"layers {first}:{first + count} are outside the model's 0:{total}")
        self.config, self.first, self.count, self.device, self.dtype = config, first, count, device, dtype
        model = skeleton(config)
        self.layers = torch.nn.ModuleList(model.model.layers[first:first + count])
        prefix = "model.layers."
        for i, layer in enumerate(self.layers):
            # The tensors read from disk become the parameters (assign=True): no second copy at any moment.
            names = {f"{prefix}{first + i}.{k}": k for k in layer.state_dict()}
            tensors = read_tensors(folder, names, device=device, dtype=dtype)
            layer.load_state_dict({k: tensors[n] for n, k in names.items()}, strict=True, assign=True)
            layer.self_attn.layer_idx = i  # the session cache holds this span's layers only
        with torch.device(device):
            self.rotary = type(model.model.rotary_emb)(config=config)
        self.to(dtype)
        self.eval()

    def new_cache(self) -> DynamicCache:
        return DynamicCache()

    @torch.inference_mode()
    def forward(self, hidden: torch.Tensor, cache: DynamicCache, *, past: int, start: int | None = None,
                end: int | None = None) -> torch.Tensor:
        """Run ``hidden`` ([batch, new tokens, hidden size]) through layers ``[start, end)`` (absolute indices,
        default: the whole span) after the ``past`` tokens that ``cache`` already holds for those layers."""
        start = self.first if start is None else start
        end = self.first + self.count if end is None else end
        new = hidden.shape[1]
        positions = torch.arange(past, past + new, device=self.device).unsqueeze(0)
        embeddings = self.rotary(hidden, positions)
        mask = causal_mask(past, new, device=self.device) if new > 1 else None
        for layer in self.layers[start - self.first:end - self.first]:
            hidden = layer(hidden, attention_mask=mask, position_ids=positions, past_key_values=cache,
                           use_cache=True, position_embeddings=embeddings)
        return hidden

    def kv_bytes_per_token(self) -> int:
        """Cache bytes one token costs in this span: keys and values of every layer."""
        c = self.config
        head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
        element = torch.finfo(self.dtype).bits // 8
        return 2 * self.count * c.num_key_value_heads * head_dim * element


def causal_mask(past: int, new: int, *, device) -> torch.Tensor:
    """Boolean [1, 1, new, past + new]: token i of the new ones sees every cached token and new tokens <= i."""
    rows = torch.arange(new, device=device).unsqueeze(1) + past
    cols = torch.arange(past + new, device=device).unsqueeze(0)
    return (cols <= rows).unsqueeze(0).unsqueeze(0)
