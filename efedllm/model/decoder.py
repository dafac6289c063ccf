"""The decoder layers a server runs, in plain PyTorch: Llama, Mistral and Qwen2.

Servers do not import transformers: its model machinery alone costs a process about 115 MB before any weight,
which for a small model is more than the span itself. These modules compute what transformers' own layers
compute (tests compare against them within 1e-4), take the same tensor names from the same safetensors files,
and refuse configurations they do not implement rather than computing something else.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from efedllm.errors import EfedError
from efedllm.model.linear import Linear
from efedllm.model.source import SUPPORTED_ARCHITECTURES


@dataclass(frozen=True, kw_only=True)
class DecoderConfig:
    model_type: str
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    intermediate_size: int
    rms_norm_eps: float
    rope_theta: float
    qkv_bias: bool
    out_bias: bool
    mlp_bias: bool
    sliding_windows: tuple[int | None, ...]
    """Per layer: attend to at most this many most recent tokens (None: the whole sequence)."""

    @classmethod
    def from_folder(cls, folder: Path) -> DecoderConfig:
        return cls.from_dict(json.loads((Path(folder) / "config.json").read_text()))

    @classmethod
    def from_dict(cls, c: dict) -> DecoderConfig:
        model_type = c.get("model_type")
        if model_type not in SUPPORTED_ARCHITECTURES:
            raise EfedError(
                f"architecture {model_type!r} is not supported (supported: {', '.join(SUPPORTED_ARCHITECTURES)})"
            )
        if c.get("hidden_act", "silu") != "silu":
            raise EfedError(f"activation {c.get('hidden_act')!r} is not supported (only silu)")
        rope = c.get("rope_parameters") or {}
        rope_type = (
            rope.get("rope_type")
            or (c.get("rope_scaling") or {}).get("rope_type")
            or (c.get("rope_scaling") or {}).get("type")
            or "default"
        )
        if rope_type != "default":
            raise EfedError(f"RoPE type {rope_type!r} is not supported by the server runtime (only default RoPE)")
        heads = c["num_attention_heads"]
        layers = c["num_hidden_layers"]
        return cls(
            model_type=model_type,
            hidden_size=c["hidden_size"],
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=c.get("num_key_value_heads") or heads,
            head_dim=c.get("head_dim") or c["hidden_size"] // heads,
            intermediate_size=c["intermediate_size"],
            rms_norm_eps=c.get("rms_norm_eps", 1e-6),
            rope_theta=rope.get("rope_theta", c.get("rope_theta", 10000.0)),
            qkv_bias=True if model_type == "qwen2" else bool(c.get("attention_bias", False)),
            out_bias=False if model_type == "qwen2" else bool(c.get("attention_bias", False)),
            mlp_bias=bool(c.get("mlp_bias", False)),
            sliding_windows=_sliding_windows(c, model_type, layers),
        )


def _sliding_windows(c: dict, model_type: str, layers: int) -> tuple[int | None, ...]:
    window = c.get("sliding_window")
    if model_type == "mistral":
        return (window,) * layers
    if model_type == "qwen2":
        types = c.get("layer_types") or ["full_attention"] * layers
        if not c.get("use_sliding_window", False):
            return (None,) * layers
        return tuple(window if t == "sliding_attention" else None for t in types)
    return (None,) * layers


Softmax = Callable[[torch.Tensor], torch.Tensor]
"""A softmax over the last dimension of attention scores whose masked entries are -inf (``torch.softmax`` with
dim=-1 is one); verifiers pass their own (efedllm/verifier/softmax.py) to recompute attention with it."""


@contextlib.contextmanager
def one_thread():
    """Run the enclosed operations on one CPU thread. A batched decode step's attention (model/batched.py) is a
    few dozen operations per session on tensors of a few kilobytes; split over the intra-op threads, each of them
    pays for waking the others, which sleep between operations (``OMP_WAIT_POLICY=PASSIVE``, as the CLI runs, so
    that the processes of one machine do not spin against each other): measured on the 2-core machine, 16
    sessions' decode steps through 10 layers took 55 ms on 2 threads, 35 ms on one, and 33-39 ms with only the
    attention on one thread (the linear layers keep both). One session's step alone gained nothing measurable, so
    it is left as it was. No effect on a GPU."""
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.to(torch.float32)
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


class Attention(nn.Module):
    def __init__(self, c: DecoderConfig):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = c.num_attention_heads, c.num_key_value_heads, c.head_dim
        self.q_proj = Linear(c.hidden_size, self.heads * self.head_dim, bias=c.qkv_bias)
        self.k_proj = Linear(c.hidden_size, self.kv_heads * self.head_dim, bias=c.qkv_bias)
        self.v_proj = Linear(c.hidden_size, self.kv_heads * self.head_dim, bias=c.qkv_bias)
        self.o_proj = Linear(self.heads * self.head_dim, c.hidden_size, bias=c.out_bias)

    def forward(self, x, cos, sin, cache: KVCache, index: int, mask, *, softmax: Softmax | None = None):
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        q, k = q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin
        k, v = cache.append(index, k, v)
        groups = self.heads // self.kv_heads
        if groups > 1:
            k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
        if softmax is None:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.head_dim**-0.5)
        else:
            out = _explicit_attention(q, k, v, mask, self.head_dim**-0.5, softmax)
        return self.o_proj(out.transpose(1, 2).reshape(b, t, -1))


class MLP(nn.Module):
    def __init__(self, c: DecoderConfig):
        super().__init__()
        self.gate_proj = Linear(c.hidden_size, c.intermediate_size, bias=c.mlp_bias)
        self.up_proj = Linear(c.hidden_size, c.intermediate_size, bias=c.mlp_bias)
        self.down_proj = Linear(c.intermediate_size, c.hidden_size, bias=c.mlp_bias)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    """Parameter names match transformers' ``model.layers.N.*``, so its checkpoints load as they are."""

    def __init__(self, c: DecoderConfig, sliding_window: int | None):
        super().__init__()
        self.sliding_window = sliding_window
        self.input_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.self_attn = Attention(c)
        self.post_attention_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.mlp = MLP(c)

    def forward(self, x, cos, sin, cache: KVCache, index: int, past: int, *, softmax: Softmax | None = None):
        mask = attention_mask(past, x.shape[1], self.sliding_window, device=x.device)
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, cache, index, mask, softmax=softmax)
        return x + self.mlp(self.post_attention_layernorm(x))


BLOCK_TOKENS = 16
"""A session's KV cache grows by whole blocks of this many positions (server/sessions.py counts its memory so)."""


class KVCache:
    """Keys and values of one session, per layer of the span, in buffers preallocated a block at a time.

    A decode step writes its one position into the buffer in place; only when a block fills are the buffers
    reallocated one block larger (a copy every ``BLOCK_TOKENS`` steps, not a ``torch.cat`` of the whole cache at
    every step). ``append`` returns views of the filled part, so attention reads exactly what a concatenation
    would have held."""

    def __init__(self):
        self.keys: dict[int, torch.Tensor] = {}
        self.values: dict[int, torch.Tensor] = {}
        self.lengths: dict[int, int] = {}

    @staticmethod
    def blocks(tokens: int) -> int:
        """Positions allocated for ``tokens``: rounded up to whole blocks."""
        return -(-tokens // BLOCK_TOKENS) * BLOCK_TOKENS

    @property
    def capacity(self) -> int:
        """Positions allocated per layer (the largest over the layers; all grow together)."""
        return max((buf.shape[2] for buf in self.keys.values()), default=0)

    def filled(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer ``index``'s keys and values so far (views, without the block's unused tail)."""
        n = self.lengths[index]
        return self.keys[index][:, :, :n], self.values[index][:, :, :n]

    def append(self, index: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, new = self.lengths.get(index, 0), k.shape[2]
        keys, values = self.keys.get(index), self.values.get(index)
        if keys is None or n + new > keys.shape[2]:
            size = self.blocks(n + new)
            grown_k = k.new_empty((*k.shape[:2], size, k.shape[3]))
            grown_v = v.new_empty((*v.shape[:2], size, v.shape[3]))
            if n:
                grown_k[:, :, :n], grown_v[:, :, :n] = keys[:, :, :n], values[:, :, :n]
            self.keys[index], self.values[index] = keys, values = grown_k, grown_v
        keys[:, :, n : n + new], values[:, :, n : n + new] = k, v
        self.lengths[index] = n + new
        return keys[:, :, : n + new], values[:, :, : n + new]


def rotary(c: DecoderConfig, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of default RoPE at ``positions`` ([batch, tokens]), computed in float32 as transformers does."""
    inv_freq = 1.0 / (
        c.rope_theta ** (torch.arange(0, c.head_dim, 2, dtype=torch.float, device=positions.device) / c.head_dim)
    )
    freqs = positions[..., None].float() * inv_freq
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def attention_mask(past: int, new: int, window: int | None, *, device) -> torch.Tensor | None:
    """Boolean [1, 1, new, past + new]: new token i sees cached and new tokens up to itself (and, with a sliding
    window, only the last ``window`` of them). None when every token may see everything before it."""
    if new == 1 and (window is None or past + 1 <= window):
        return None
    rows = torch.arange(new, device=device).unsqueeze(1) + past
    cols = torch.arange(past + new, device=device).unsqueeze(0)
    allowed = cols <= rows
    if window is not None:
        allowed &= rows - cols < window
    return allowed.unsqueeze(0).unsqueeze(0)


def _explicit_attention(q, k, v, mask, scale: float, softmax: Softmax) -> torch.Tensor:
    """softmax(q k^T * scale, masked) @ v spelled out, so that ``softmax`` replaces the fused kernel's own."""
    scores = (q @ k.transpose(-2, -1)) * scale
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return softmax(scores).to(v.dtype) @ v


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)
