"""The JSON messages between a server and its clients, as frozen dataclasses: built in one place on the server,
parsed and checked in one place on the client, so a field is never read with ``.get()`` and a guess.

``from_json`` checks every field's presence and type and raises ``MessageError`` naming the field, so a peer that
answers something else is one warning, never a traceback. Unknown fields are ignored (a newer server may add some).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass


class MessageError(ValueError):
    """A message that is not what the protocol says; the text names the field."""


def _kind_name(kind) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "a boolean"}.get(kind, "an object")


def _parse_value(value, kind, where: str, message: str):
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        (kind,) = [k for k in options if k is not type(None)]
    if dataclasses.is_dataclass(kind):
        return _parse(kind, value, message=message, prefix=f"{where}.")
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
    if not ok:
        raise MessageError(f"{message}: field {where!r} must be {_kind_name(kind)}, got {type(value).__name__}")
    return value


def _parse(cls, body, *, message: str, prefix: str = ""):
    if not isinstance(body, dict):
        what = f"field {prefix.rstrip('.')!r}" if prefix else "the body"
        raise MessageError(f"{message}: {what} must be a JSON object, got {type(body).__name__}")
    hints = typing.get_type_hints(cls)
    values = {}
    for field in dataclasses.fields(cls):
        where = prefix + field.name
        if field.name not in body:
            if field.default is dataclasses.MISSING:
                raise MessageError(f"{message}: missing field {where!r}")
            continue
        values[field.name] = _parse_value(body[field.name], hints[field.name], where, message)
    return cls(**values)


@dataclass(frozen=True, kw_only=True)
class Throughput:
    """How fast the server ran its whole span when it started (server/throughput.py)."""

    decode_tokens_per_s: float
    prefill_tokens_per_s: float


@dataclass(frozen=True, kw_only=True)
class ServerInfo:
    """``GET /info``."""

    throughput: Throughput
    endpoint: str
    """The URL the server announces (on chain: its registered endpoint)."""
    address: str | None
    """Its chain account, or None off chain."""
    model: str
    first_layer: int
    num_layers: int
    hidden_size: int
    dtype: str
    """The compute dtype, also the wire's: hidden states go to it and come back from it in this dtype."""
    weights: str = "full"
    """``full`` or ``int8`` (weight-only): with ``dtype``, the serving configuration declared on chain."""
    device: str
    max_sequence: int
    max_step_tokens: int
    max_sessions: int
    epoch: int | None = None
    """The epoch it records work under (servers on chain only; left out of the JSON when None)."""
    sessions: int
    """Open sessions right now."""
    cache_bytes: int
    """Bytes of KV cache its open sessions hold right now."""
    free_cache_bytes: int = 0
    """KV-cache bytes still free under its limit (``--max-cache-bytes``): what a new session can take."""
    queued: int = 0
    """Steps waiting for the compute thread right now (its load)."""
    steps: int = 0
    batches: int = 0
    """Steps served since start, and the forward passes they took (``steps / batches``: the mean batch)."""

    def to_json(self) -> dict:
        body = dataclasses.asdict(self)
        if self.epoch is None:
            del body["epoch"]
        return body

    @classmethod
    def from_json(cls, body: object) -> ServerInfo:
        return _parse(cls, body, message="/info")


@dataclass(frozen=True, kw_only=True)
class OpenSession:
    """``POST /sessions``: layers [start, end) of the server's span; a missing bound is the span's own."""

    start: int | None = None
    end: int | None = None

    def to_json(self) -> dict:
        return {name: value for name, value in dataclasses.asdict(self).items() if value is not None}

    @classmethod
    def from_json(cls, body: object) -> OpenSession:
        if not isinstance(body, dict):
            raise MessageError("body must be a JSON object")
        for name in ("start", "end"):  # present means an integer: null is not "missing"
            if name in body and (not isinstance(body[name], int) or isinstance(body[name], bool)):
                raise MessageError("start and end must be integers")
        return cls(start=body.get("start"), end=body.get("end"))


@dataclass(frozen=True, kw_only=True)
class SessionOpened:
    """The answer to ``POST /sessions`` (201)."""

    session: str
    start: int
    end: int
    dtype: str = "float32"
    """What the session's hidden states travel in, both ways: the server's compute dtype (the client casts to it,
    and back from it)."""

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, body: object) -> SessionOpened:
        return _parse(cls, body, message="session opened")


@dataclass(frozen=True, kw_only=True)
class ErrorBody:
    """Every 4xx/5xx answer (efedllm/http.py)."""

    error: str
    status: int

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, body: object) -> ErrorBody:
        return _parse(cls, body, message="error body")
