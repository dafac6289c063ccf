"""How one weight tensor travels: its bytes in a codec, the checksum over them, and the way back.

Each tensor is sent as a safetensors blob of its own (never pickle):

``raw``       ``weight`` in float32: lossless, the default
``float16``   ``weight`` in float16 (matrices only)
``bfloat16``  ``weight`` in bfloat16 (matrices only)
``svd``       ``u``, ``s``, ``vh`` in float32: truncated SVD factors (matrices only, where they are smaller)

Vectors (norm weights, biases) always travel raw: they are a tiny share of the bytes and lossy codecs buy nothing
there. A matrix whose factors would not be smaller than itself, or that float16 cannot represent, travels raw too,
and its manifest entry says so. The manifest lists every blob with its size and sha256, and carries a sha256 of
its own, so a receiver can refuse any tensor that did not arrive whole, and name it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from efedllm.compression import svd
from efedllm.compression.choices import CODECS
from efedllm.errors import EfedError, InvalidParameter

_CAST = {"float16": torch.float16, "bfloat16": torch.bfloat16, "raw": torch.float32}
_PARTS = {"raw": ("weight",), "float16": ("weight",), "bfloat16": ("weight",), "svd": ("s", "u", "vh")}


@dataclass(frozen=True, kw_only=True)
class CodecSpec:
    """What a receiver asks for. ``svd`` needs exactly one of ``energy`` (eq. 12) or ``ratio`` (eq. 15)."""

    codec: str = "raw"
    energy: float | None = None
    ratio: float | None = None

    def __post_init__(self):
        if self.codec not in CODECS:
            raise InvalidParameter(f"codec must be one of {', '.join(CODECS)}, got {self.codec!r}")
        if self.codec != "svd" and (self.energy is not None or self.ratio is not None):
            raise InvalidParameter("energy and ratio apply only to the svd codec")
        if self.codec == "svd" and (self.energy is None) == (self.ratio is None):
            raise InvalidParameter("the svd codec needs exactly one of energy or ratio")
        if self.energy is not None and not (math.isfinite(self.energy) and 0 < self.energy <= 1):
            raise InvalidParameter(f"energy must be in (0, 1], got {self.energy}")
        if self.ratio is not None and not (math.isfinite(self.ratio) and 0 < self.ratio < 1):
            raise InvalidParameter(f"ratio must be in (0, 1), got {self.ratio}")

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> CodecSpec:
        """From URL query parameters (``codec``, ``energy``, ``ratio``), as a weight source receives them."""

        def number(key):
            text = query.get(key)
            if text is None:
                return None
            try:
                return float(text)
            except ValueError:
                raise InvalidParameter(f"{key} must be a number, got {text[:40]!r}") from None

        return cls(codec=query.get("codec", "raw"), energy=number("energy"), ratio=number("ratio"))

    def query(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items() if v is not None}

    def describe(self) -> str:
        return (
            self.codec
            + (f" e={self.energy:g}" if self.energy else "")
            + (f" ratio={self.ratio:g}" if self.ratio else "")
        )

    @property
    def lossless(self) -> bool:
        return self.codec == "raw"


@dataclass(frozen=True, kw_only=True)
class Encoded:
    """One tensor ready to send: its blob and the manifest entry that describes it."""

    data: bytes
    entry: dict


def encode_tensor(
    name: str,
    tensor: torch.Tensor,
    spec: CodecSpec,
    *,
    method: svd.Method = "auto",
    precomputed: svd.Thin | None = None,
) -> Encoded:
    """``tensor`` as a blob in ``spec``'s codec (or raw where the codec does not apply); ``precomputed``: its thin
    SVD made earlier, when many settings are tried on one matrix."""
    tensor = tensor.detach().to("cpu", torch.float32).contiguous()
    codec, parts, extra = "raw", {"weight": tensor}, {}
    if tensor.dim() == 2 and spec.codec in ("float16", "bfloat16"):
        cast = tensor.to(_CAST[spec.codec])
        if torch.isfinite(cast).all():
            codec, parts = spec.codec, {"weight": cast}
    elif tensor.dim() == 2 and spec.codec == "svd":
        factors = svd.truncate(tensor, energy=spec.energy, ratio=spec.ratio, method=method, precomputed=precomputed)
        if factors is not None:
            codec, parts = "svd", {"u": factors.u, "s": factors.s, "vh": factors.vh}
            extra = {"k": factors.k, "energy": round(factors.energy, 6), "method": factors.method}
    data = st_save({k: v.contiguous() for k, v in parts.items()}, metadata={"name": name, "codec": codec})
    entry = {
        "name": name,
        "codec": codec,
        "shape": list(tensor.shape),
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        **extra,
    }
    return Encoded(data=data, entry=entry)


def decode_tensor(entry: Mapping, data: bytes) -> torch.Tensor:
    """The float32 tensor a blob stands for, after checking it is exactly the one its entry announced.

    Raises EfedError naming the tensor when the blob is truncated, altered, or not what the entry says."""
    name = entry["name"]
    if len(data) != entry["bytes"]:
        raise EfedError(f"tensor {name}: received {len(data)} of {entry['bytes']} bytes (truncated transfer)")
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise EfedError(f"tensor {name}: sha256 mismatch, the bytes were altered in transfer; refusing it")
    try:
        parts = st_load(data)
    except (SafetensorError, ValueError, RuntimeError, OverflowError) as exc:
        raise EfedError(f"tensor {name}: not a valid safetensors blob ({exc})") from None
    codec, shape = entry["codec"], tuple(entry["shape"])
    if codec not in CODECS or tuple(sorted(parts)) != _PARTS[codec]:
        raise EfedError(f"tensor {name}: codec {codec!r} with parts {sorted(parts)} is not a known encoding")
    if codec == "svd":
        k = entry.get("k")
        u, s, vh = parts["u"], parts["s"], parts["vh"]
        if (
            len(shape) != 2
            or not isinstance(k, int)
            or (u.shape, s.shape, vh.shape) != ((shape[0], k), (k,), (k, shape[1]))
        ):
            raise EfedError(
                f"tensor {name}: factor shapes {list(u.shape)}, {list(s.shape)}, {list(vh.shape)} do not match {list(shape)} at k={k}"
            )
        if not svd.saves_bytes(shape[0], shape[1], k):
            raise EfedError(f"tensor {name}: rank {k} factors are no smaller than the matrix")
        tensor = svd.Factors(u=u, s=s, vh=vh, energy=float(entry.get("energy", 0)), method="received").reconstruct()
    else:
        weight = parts["weight"]
        if weight.dtype != _CAST[codec] or tuple(weight.shape) != shape:
            raise EfedError(f"tensor {name}: expected {codec} {list(shape)}, got {weight.dtype} {list(weight.shape)}")
        tensor = weight.to(torch.float32)
    if not torch.isfinite(tensor).all():
        raise EfedError(f"tensor {name}: contains NaN or Inf")
    return tensor


def manifest_digest(manifest: Mapping) -> str:
    """sha256 over the manifest's canonical JSON, its own ``sha256`` field left out."""
    body = {k: v for k, v in manifest.items() if k != "sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def seal(manifest: dict) -> dict:
    return {**manifest, "sha256": manifest_digest(manifest)}


def check_seal(manifest: Mapping) -> str:
    """The manifest's digest, after checking it matches the one it carries."""
    digest = manifest_digest(manifest)
    if manifest.get("sha256") != digest:
        raise EfedError("weight manifest: sha256 mismatch, it was altered in transfer; refusing it")
    return digest
