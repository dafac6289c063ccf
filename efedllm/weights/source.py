"""A weight source's model: which tensors each layer has, their encodings, and a bounded cache of encoded blobs.

Encoding a span in the svd codec costs seconds of SVD, so blobs are kept once made (least recently used go first
past ``cache_bytes``). A blob that was dropped is encoded again on demand; full SVD and the seeded randomized SVD
give the same bytes again, and a receiver refuses any blob whose sha256 differs from the manifest's anyway.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import OrderedDict
from pathlib import Path

import torch

from efedllm.compression import svd
from efedllm.compression.codec import CodecSpec, Encoded, encode_tensor, seal
from efedllm.errors import InvalidParameter
from efedllm.model.weights import read_tensors, weight_files

FORMAT = "efedllm-weights/1"
_LAYER = re.compile(r"^model\.layers\.(\d+)\.")
CPU = torch.device("cpu")


class WeightSource:
    def __init__(
        self,
        folder: Path,
        *,
        name: str,
        method: svd.Method = "auto",
        cache_bytes: int = 1 << 30,
        progress=lambda message: None,
    ):
        svd.pick_method(1, 1, method)  # validates
        self.folder, self.name, self.method, self.cache_bytes, self.progress = (
            folder,
            name,
            method,
            cache_bytes,
            progress,
        )
        self.config = json.loads((folder / "config.json").read_text())
        self.num_layers = int(self.config["num_hidden_layers"])
        self.layers: dict[int, list[str]] = {i: [] for i in range(self.num_layers)}
        for tensor_name in sorted(weight_files(folder)):
            if 0 <= layer_index(tensor_name) < self.num_layers:
                self.layers[layer_index(tensor_name)].append(tensor_name)
        self.layer_of = {n: i for i, names in self.layers.items() for n in names}
        self._cache: OrderedDict[tuple[CodecSpec, str], Encoded] = OrderedDict()
        self._cached_bytes = 0
        self._lock = threading.Lock()

    def check_span(self, first: int, count: int) -> None:
        if not (0 <= first < self.num_layers and 1 <= count <= self.num_layers - first):
            raise InvalidParameter(f"layers {first}:{first + count} are outside the model's 0:{self.num_layers}")

    def manifest(self, first: int, count: int, spec: CodecSpec) -> dict:
        """Every tensor of layers [first, first + count) encoded in ``spec``, listed with sizes and sha256, sealed."""
        self.check_span(first, count)
        started = time.monotonic()
        entries = []
        for layer in range(first, first + count):
            missing = [n for n in self.layers[layer] if (spec, n) not in self._cache]
            tensors = read_tensors(self.folder, missing, device=CPU, dtype=torch.float32) if missing else {}
            for tensor_name in self.layers[layer]:
                entries.append(self._encoded(tensor_name, spec, tensors.get(tensor_name)).entry)
        raw_bytes = sum(4 * _numel(e["shape"]) for e in entries)
        self.progress(
            f"manifest for layers {first}:{first + count} in {spec.describe()}: "
            f"{sum(e['bytes'] for e in entries):,} bytes in {time.monotonic() - started:.1f}s"
        )
        return seal(
            {
                "format": FORMAT,
                "model": self.name,
                "first": first,
                "count": count,
                "codec": spec.query(),
                "config": self.config,
                "tensors": entries,
                "bytes": sum(e["bytes"] for e in entries),
                "raw_float32_bytes": raw_bytes,
            }
        )

    def blob(self, tensor_name: str, spec: CodecSpec) -> bytes:
        if tensor_name not in self.layer_of:
            raise KeyError(tensor_name)
        return self._encoded(tensor_name, spec, None).data

    def _encoded(self, tensor_name: str, spec: CodecSpec, tensor: torch.Tensor | None) -> Encoded:
        key = (spec, tensor_name)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        if tensor is None:
            tensor = read_tensors(self.folder, [tensor_name], device=CPU, dtype=torch.float32)[tensor_name]
        encoded = encode_tensor(tensor_name, tensor, spec, method=self.method)
        with self._lock:
            if key not in self._cache:
                self._cache[key] = encoded
                self._cached_bytes += len(encoded.data)
            while self._cached_bytes > self.cache_bytes and len(self._cache) > 1:
                _, dropped = self._cache.popitem(last=False)
                self._cached_bytes -= len(dropped.data)
        return encoded


def layer_index(tensor_name: str) -> int:
    """N for a tensor named ``model.layers.N.*``, else -1."""
    match = _LAYER.match(tensor_name)
    return int(match.group(1)) if match else -1


def _numel(shape: list[int]) -> int:
    total = 1
    for size in shape:
        total *= size
    return total
