"""One decode step of several sessions as one forward pass (issue 16: continuous batching on the server).

A decode step carries one new token per session. Run alone, each step pays the whole cost of reading the span's
weights for a single row; run together, B sessions share that read: every linear layer and norm runs once on a
[B, 1, hidden] batch. Attention stays per session, over that session's own KV cache (no padding, no mask across
sessions), so each session's keys, values and attention are computed exactly as when it runs alone; only the
matrix products see B rows instead of one, which changes their floating-point summation at most in the last bits
(the verifier's float32 bound is 1e-3; `tests/python/test_batching.py` measures the difference).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from efedllm.model.decoder import KVCache, _rotate_half, attention_mask, one_thread, rotary
from efedllm.model.span import LayerSpan


@torch.inference_mode()
def decode_batch(
    span: LayerSpan, hidden: list[torch.Tensor], caches: list[KVCache], pasts: list[int], *, start: int, end: int
) -> list[torch.Tensor]:
    """Outputs ([1, 1, hidden] each) of one-token steps of ``len(hidden)`` sessions through layers [start, end),
    session i with ``caches[i]`` holding its ``pasts[i]`` earlier tokens (appended to, as ``span.forward`` does)."""
    if not all(h.shape[:2] == (1, 1) for h in hidden):
        raise ValueError("decode_batch takes one-token steps: hidden states of shape [1, 1, hidden]")
    x = torch.cat(hidden, dim=0).to(span.device)  # [B, 1, H]
    positions = torch.tensor(pasts, device=x.device).unsqueeze(1)  # [B, 1]
    cos, sin = rotary(span.config, positions, x.dtype)  # [B, 1, head_dim]
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)  # [B, 1 (heads), 1, head_dim]
    for index in range(start - span.first, end - span.first):
        layer = span.layers[index]
        attn = layer.self_attn
        h = layer.input_layernorm(x)
        b = h.shape[0]
        q = attn.q_proj(h).view(b, 1, attn.heads, attn.head_dim).transpose(1, 2)
        k = attn.k_proj(h).view(b, 1, attn.kv_heads, attn.head_dim).transpose(1, 2)
        v = attn.v_proj(h).view(b, 1, attn.kv_heads, attn.head_dim).transpose(1, 2)
        q, k = q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin
        groups = attn.heads // attn.kv_heads
        outs = []
        with one_thread():  # tiny operations, one session at a time (decoder.one_thread says why)
            for i in range(b):  # per session, over its own cache: exactly what it computes alone
                ki, vi = caches[i].append(index, k[i : i + 1], v[i : i + 1])
                if groups > 1:
                    ki, vi = ki.repeat_interleave(groups, dim=1), vi.repeat_interleave(groups, dim=1)
                mask = attention_mask(pasts[i], 1, layer.sliding_window, device=x.device)
                outs.append(
                    F.scaled_dot_product_attention(q[i : i + 1], ki, vi, attn_mask=mask, scale=attn.head_dim**-0.5)
                )
            out = torch.cat(outs, dim=0)
        x = x + attn.o_proj(out.transpose(1, 2).reshape(b, 1, -1))
        x = x + layer.mlp(layer.post_attention_layernorm(x))
    return list(x.split(1, dim=0))
