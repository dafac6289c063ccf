"""Steps of several sessions as one forward pass (issue 16: continuous batching on the server).

A decode step carries one new token per session. Run alone, each step pays the whole cost of reading the span's
weights for a single row; run together, B sessions share that read: every linear layer and norm runs once on all
their rows. A prompt's prefill (several tokens) gains less, since its product already has many rows, but still:
16 prefills of 35 tokens through 10 layers of SmolLM2 took 765 ms one by one and 362 ms as one pass on the 2-core
machine. So the steps are laid end to end, [1, total tokens, hidden] (a ragged batch: no padding), and attention
stays per session, over that session's own KV cache and its own new tokens (its causal mask, no attention across
sessions), so each session's keys, values and attention are computed exactly as when it runs alone; only the
matrix products see more rows than its own, which changes their floating-point summation at most in the last bits
(the verifier's float32 bound is 1e-3; `tests/python/test_batching.py` measures the difference).
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from efedllm.model.decoder import KVCache, _rotate_half, attention_mask, one_thread, rotary
from efedllm.model.span import LayerSpan


@torch.inference_mode()
def forward_batch(
    span: LayerSpan, hidden: list[torch.Tensor], caches: list[KVCache], pasts: list[int], *, start: int, end: int
) -> list[torch.Tensor]:
    """Outputs ([1, n_i, hidden] each) of the steps of ``len(hidden)`` sessions through layers [start, end):
    session i's ``hidden[i]`` ([1, n_i, hidden]: one token for a decode step, more for a prefill or a replay) after
    the ``pasts[i]`` earlier tokens its ``caches[i]`` holds (appended to, as ``span.forward`` does)."""
    if not all(h.dim() == 3 and h.shape[0] == 1 and h.shape[1] >= 1 for h in hidden):
        raise ValueError("forward_batch takes one session's step each: hidden states of shape [1, tokens, hidden]")
    lengths = [h.shape[1] for h in hidden]
    offsets = [sum(lengths[:i]) for i in range(len(lengths))]
    x = torch.cat(hidden, dim=1).to(span.device)  # [1, N, H]
    total = x.shape[1]
    positions = torch.cat([torch.arange(p, p + n, device=x.device) for p, n in zip(pasts, lengths)]).unsqueeze(0)
    cos, sin = rotary(span.config, positions, x.dtype)  # [1, N, head_dim]
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)  # [1, 1 (heads), N, head_dim]
    # A decode step's attention is a few dozen tiny operations per session: one thread (decoder.one_thread says
    # why). A prefill's attention is a real product: every thread.
    threads = one_thread if total == len(hidden) else contextlib.nullcontext
    for index in range(start - span.first, end - span.first):
        layer = span.layers[index]
        attn = layer.self_attn
        h = layer.input_layernorm(x)
        q = attn.q_proj(h).view(1, total, attn.heads, attn.head_dim).transpose(1, 2)
        k = attn.k_proj(h).view(1, total, attn.kv_heads, attn.head_dim).transpose(1, 2)
        v = attn.v_proj(h).view(1, total, attn.kv_heads, attn.head_dim).transpose(1, 2)
        q, k = q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin
        groups = attn.heads // attn.kv_heads
        outs = []
        with threads():
            for i, (o, n) in enumerate(zip(offsets, lengths)):  # per session, over its own cache: as it runs alone
                ki, vi = caches[i].append(index, k[:, :, o : o + n], v[:, :, o : o + n])
                if groups > 1:
                    ki, vi = ki.repeat_interleave(groups, dim=1), vi.repeat_interleave(groups, dim=1)
                mask = attention_mask(pasts[i], n, layer.sliding_window, device=x.device)
                outs.append(
                    F.scaled_dot_product_attention(
                        q[:, :, o : o + n], ki, vi, attn_mask=mask, scale=attn.head_dim**-0.5
                    )
                )
            out = torch.cat(outs, dim=2)  # [1, heads, N, head_dim]
        x = x + attn.o_proj(out.transpose(1, 2).reshape(1, total, -1))
        x = x + layer.mlp(layer.post_attention_layernorm(x))
    return list(x.split(lengths, dim=1))
