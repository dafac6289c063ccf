"""The client's part of the model: token embeddings in, final norm and LM head out. Nothing else is loaded."""

from __future__ import annotations

from pathlib import Path

import torch

from efedllm.model.span import load_config, skeleton
from efedllm.model.weights import has_tensor, read_tensors


class ModelEnds(torch.nn.Module):
    def __init__(self, folder: Path, *, device: torch.device, dtype=torch.float32):
        super().__init__()
        self.config = config = load_config(folder)
        model = skeleton(config)
        self.embed = model.model.embed_tokens
        self.norm = model.model.norm
        self.lm_head = model.lm_head
        for module in (self.embed, self.norm, self.lm_head):
            module.to_empty(device=device)
        tied = getattr(config, "tie_word_embeddings", False) or not has_tensor(folder, "lm_head.weight")
        names = ["model.embed_tokens.weight", "model.norm.weight"] + ([] if tied else ["lm_head.weight"])
        t = read_tensors(folder, names, device=device, dtype=dtype)
        self.embed.weight.data.copy_(t["model.embed_tokens.weight"])
        self.norm.weight.data.copy_(t["model.norm.weight"])
        self.lm_head.weight = self.embed.weight if tied else torch.nn.Parameter(t["lm_head.weight"])
        self.device, self.dtype = device, dtype
        self.eval()

    @torch.inference_mode()
    def embed_tokens(self, token_ids: torch.Tensor) -> torch.Tensor:
        return self.embed(token_ids.to(self.device))

    @torch.inference_mode()
    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.norm(hidden))
