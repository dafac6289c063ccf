"""How tensors travel between clients, servers and verifiers: safetensors bytes, never pickle.

A message is a safetensors file holding one tensor named ``hidden`` ([batch, tokens, hidden size]); string
metadata may ride along in the safetensors header. Decoding validates everything a peer could get wrong, so
a server can answer bad input with a 4xx and keep serving everyone else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

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
    hidden = _hidden(data, dtype)
    if hidden.dim() != 3 or hidden.shape[0] != 1 or hidden.shape[2] != hidden_size:
        raise WireError(f"hidden states must have shape [1, tokens, {hidden_size}], got {list(hidden.shape)}")
    if not 1 <= hidden.shape[1] <= max_tokens:
        raise WireError(f"a step carries 1 to {max_tokens} tokens, got {hidden.shape[1]}")
    return _finite(hidden)


def _hidden(data: bytes, dtype: torch.dtype) -> torch.Tensor:
    """The one tensor of a message, named ``hidden``, in ``dtype``; its shape is the caller's to check."""
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
    return hidden


def _finite(hidden: torch.Tensor) -> torch.Tensor:
    if not torch.isfinite(hidden).all():
        raise WireError("hidden states contain NaN or Inf")
    return hidden


# ---------------------------------------------------------------- several sessions' steps in one message

STEPS_KEY = "headers"
"""Metadata key of a steps message: a JSON list, one object of string headers per step (a payment's receipt on the
way in, a signed answer on the way out)."""
SESSIONS_KEY = "sessions"
"""Metadata key of a steps request: a JSON list of the sessions the rows belong to, one each."""
MAX_HEADER_BYTES = 1 << 20
"""Largest safetensors header a message may declare (metadata included)."""


@dataclass(frozen=True)
class Steps:
    """One decode step of each of several sessions (``POST /steps``), or their answers: row ``i`` of ``hidden``
    ([steps, 1, hidden size]) and ``headers[i]`` belong to ``sessions[i]`` (empty in an answer)."""

    hidden: torch.Tensor
    headers: list[dict[str, str]]
    sessions: list[str]


def encode_steps(hidden: torch.Tensor, *, headers: list[dict[str, str]], sessions: list[str] | None = None) -> bytes:
    metadata = {STEPS_KEY: json.dumps(headers)}
    if sessions is not None:
        metadata[SESSIONS_KEY] = json.dumps(sessions)
    return encode(hidden, metadata)


def decode_steps(data: bytes, *, hidden_size: int, dtype: torch.dtype, max_steps: int, sessions: bool = True) -> Steps:
    """A steps message, checked as ``decode`` checks one step (one tensor, dtype, finite), plus: shape
    [1..max_steps, 1, hidden_size], one headers object per row, and (``sessions``: a request) one distinct session
    id per row."""
    hidden = _hidden(data, dtype)
    if hidden.dim() != 3 or not 1 <= hidden.shape[0] <= max_steps or hidden.shape[1:] != (1, hidden_size):
        raise WireError(
            f"steps must have shape [1..{max_steps} steps, 1 token, {hidden_size}], got {list(hidden.shape)}"
        )
    _finite(hidden)
    metadata = _metadata(data)
    count = hidden.shape[0]
    headers = _json_list(metadata, STEPS_KEY, count)
    if not all(isinstance(h, dict) and all(isinstance(v, str) for v in h.values()) for h in headers):
        raise WireError(f"metadata {STEPS_KEY!r}: each step's headers must be an object of strings")
    ids: list[str] = []
    if sessions:
        ids = _json_list(metadata, SESSIONS_KEY, count)
        if not all(isinstance(s, str) for s in ids) or len(set(ids)) != count:
            raise WireError(f"metadata {SESSIONS_KEY!r}: one distinct session id (a string) per step")
    return Steps(hidden=hidden, headers=headers, sessions=ids)


def _json_list(metadata: dict[str, str], key: str, count: int) -> list:
    try:
        value = json.loads(metadata[key])
    except KeyError:
        raise WireError(f"metadata {key!r} is missing") from None
    except (ValueError, RecursionError):
        raise WireError(f"metadata {key!r} is not JSON") from None
    if not isinstance(value, list) or len(value) != count:
        raise WireError(f"metadata {key!r} must be a list of {count} entries, one per step")
    return value


def _metadata(data: bytes) -> dict[str, str]:
    """The string metadata of a safetensors message's header (safetensors' loader drops it)."""
    if len(data) < 8:
        raise WireError("body is not a valid safetensors message (shorter than its header length)")
    size = int.from_bytes(data[:8], "little")
    if not 0 < size <= min(MAX_HEADER_BYTES, len(data) - 8):
        raise WireError("body is not a valid safetensors message (bad header length)")
    try:
        header = json.loads(data[8 : 8 + size])
    except (ValueError, RecursionError):
        raise WireError("body is not a valid safetensors message (header is not JSON)") from None
    metadata = header.get("__metadata__", {}) if isinstance(header, dict) else None
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise WireError("body is not a valid safetensors message (bad metadata)")
    return metadata
