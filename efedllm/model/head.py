"""The client's part of the model: token embeddings in, final norm and LM head out. Nothing else is loaded.

The client runs transformers' own modules here (it needs transformers for the tokenizer and chat template anyway).
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM

from efedllm.model.weights import has_tensor, read_tensors


def load_config(folder: Path):
    config = AutoConfig.from_pretrained(folder)
    config._attn_implementation = "sdpa"
    return config


def skeleton(config):
    """The whole model on the meta device: structure without memory."""
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")


class ModelEnds(torch.nn.Module):
    def __init__(self, folder: Path, *, device: torch.device, dtype=torch.float32):
        super().__init__()
        self.config = config = load_config(folder)
        model = skeleton(config)
        self.embed = model.model.embed_tokens
        self.norm = model.model.norm
        self.lm_head = model.lm_head
        tied = getattr(config, "tie_word_embeddings", False) or not has_tensor(folder, "lm_head.weight")
        names = ["model.embed_tokens.weight", "model.norm.weight"] + ([] if tied else ["lm_head.weight"])
        t = read_tensors(folder, names, device=device, dtype=dtype)
        self.embed.load_state_dict({"weight": t["model.embed_tokens.weight"]}, assign=True)
        self.norm.load_state_dict({"weight": t["model.norm.weight"]}, assign=True)
        if tied:
            self.lm_head.weight = self.embed.weight
        else:
            self.lm_head.load_state_dict({"weight": t["lm_head.weight"]}, assign=True)
        self.device, self.dtype = device, dtype
        self.eval()

    @torch.inference_mode()
    def embed_tokens(self, token_ids: torch.Tensor) -> torch.Tensor:
        return self.embed(token_ids.to(self.device))

    @torch.inference_mode()
    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.norm(hidden))
