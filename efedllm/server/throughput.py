"""How fast this server runs its span: measured at start, announced in /info and used by clients' routing."""

from __future__ import annotations

import time

import torch

from efedllm.model.span import LayerSpan


def measure(span: LayerSpan, *, prompt_tokens: int = 32, decode_steps: int = 8) -> dict[str, float]:
    """Decode tokens/s (one token per step after a prompt) and prefill tokens/s of the whole span."""
    hidden = torch.randn(1, prompt_tokens, span.config.hidden_size, dtype=span.dtype, device=span.device) * 0.1
    cache = span.new_cache()
    span(hidden, cache, past=0)  # warm-up
    cache = span.new_cache()
    started = time.perf_counter()
    span(hidden, cache, past=0)
    prefill = prompt_tokens / (time.perf_counter() - started)
    step = hidden[:, -1:]
    started = time.perf_counter()
    for i in range(decode_steps):
        span(step, cache, past=prompt_tokens + i)
    decode = decode_steps / (time.perf_counter() - started)
    return {"decode_tokens_per_s": round(decode, 2), "prefill_tokens_per_s": round(prefill, 2)}
