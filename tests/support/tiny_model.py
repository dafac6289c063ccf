"""A tiny random model written as a Hugging Face folder (safetensors), the way a user's own model folder is.

Where the logic under test is the same for any model (spans, handlers, codecs), six layers of hidden size 64
compute in microseconds instead of the real model's seconds.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM

HIDDEN, LAYERS, VOCAB = 64, 6, 300


def write_tiny_model(folder: Path, model_type: str = "llama"):
    """A random ``model_type`` model (seeded: the same weights every run) saved to ``folder``; returns it."""
    config = AutoConfig.for_model(
        model_type,
        hidden_size=HIDDEN,
        intermediate_size=128,
        num_hidden_layers=LAYERS,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=VOCAB,
        max_position_embeddings=128,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).eval()
    model.save_pretrained(folder, safe_serialization=True)
    return model
