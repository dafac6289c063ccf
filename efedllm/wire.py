"""How tensors travel between clients, servers and verifiers: safetensors bytes, never pickle.

A message is a safetensors file holding one tensor named ``hidden`` ([batch, tokens, hidden size]); string
metadata may ride along in the safetensors header. Decoding validates everything a peer could get wrong, so
a server can answer bad input with a 4xx and keep serving everyone else.
"""

from __future__ import annotations

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

CONTENT_TYPE = "application/vnd.efedllm.safetensors"
KEY = "hidden"


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
"""The dtypes hidden states travel in, by name: a server's compute dtype (``--dtype``, ``/info``, a session)."""


def dtype_named(name: str) -> torch.dtype:
    """The torch dtype of a wire dtype's name (``bfloat16``); WireError for any other name."""
    if name not in DTYPES:
        raise WireError(f"unknown dtype {name!r}: one of {', '.join(DTYPES)}")
    return DTYPES[name]


class WireError(ValueError):
    """A message that does not decode into a valid hidden-state tensor; the text says why."""


def encode(hidden: torch.Tensor, metadata: dict[str, str] | None = None) -> bytes:
    return st_save({KEY: hidden.detach().to("cpu").contiguous()}, metadata=metadata)


def load(data: bytes) -> torch.Tensor:
    """The ``hidden`` tensor of a message this process wrote itself (no checks: not for network input)."""
    return st_load(data)[KEY]


def decode(data: bytes, *, hidden_size: int, dtype: torch.dtype, max_tokens: int) -> torch.Tensor:
    """The ``hidden`` tensor of ``data``, checked: one tensor, [1, 1..max_tokens, hidden_size], dtype, finite."""
    if not data:
        raise WireError("empty body: expected a safetensors message with a 'hidden' tensor")
    try:
        tensors = st_load(data)
    except (SafetensorError, ValueError, RuntimeError, OverflowError) as exc:
        raise WireError(f"body is not a valid safetensors message ({exc})") from None
    if set(tensors) != {KEY}:
        raise WireError(f"expected exactly one tensor named {KEY!r}, got {sorted(tensors)[:5]}")
    hidden = tensors[KEY]
    if hidden.dtype != dtype:
        raise WireError(
            f"hidden states must be {str(dtype).removeprefix('torch.')}, got {str(hidden.dtype).removeprefix('torch.')}"
        )
    if hidden.dim() != 3 or hidden.shape[0] != 1 or hidden.shape[2] != hidden_size:
        raise WireError(f"hidden states must have shape [1, tokens, {hidden_size}], got {list(hidden.shape)}")
    if not 1 <= hidden.shape[1] <= max_tokens:
        raise WireError(f"a step carries 1 to {max_tokens} tokens, got {hidden.shape[1]}")
    if not torch.isfinite(hidden).all():
        raise WireError("hidden states contain NaN or Inf")
    return hidden
