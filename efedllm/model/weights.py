"""Reading selected tensors from a safetensors folder without loading the rest."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import torch
from safetensors import safe_open

from efedllm.errors import EfedError


def weight_files(folder: Path) -> dict[str, Path]:
    """Tensor name -> the safetensors file that holds it (single file or sharded with an index)."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text())["weight_map"]
        return {name: folder / file for name, file in weight_map.items()}
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise EfedError(f"{folder} has no .safetensors weights")
    names: dict[str, Path] = {}
    for file in files:
        with safe_open(file, framework="pt") as f:
            names.update({name: file for name in f.keys()})  # noqa: SIM118 - safe_open has keys(), no __iter__
    return names


def read_tensors(
    folder: Path, names: Iterable[str], *, device: torch.device, dtype: torch.dtype
) -> dict[str, torch.Tensor]:
    """The named tensors, each read from disk straight into its own buffer.

    Reading with plain file reads rather than a memory map keeps the peak memory of a server at what it keeps:
    a memory-mapped read would hold the file's pages and the copy at once.
    """
    where = weight_files(folder)
    wanted = list(names)
    missing = [n for n in wanted if n not in where]
    if missing:
        raise EfedError(f"{folder}: weights missing: {', '.join(missing[:5])}")
    by_file: dict[Path, list[str]] = {}
    for name in wanted:
        by_file.setdefault(where[name], []).append(name)
    out: dict[str, torch.Tensor] = {}
    for file, file_names in by_file.items():
        with open(file, "rb") as f:
            header_len = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(header_len))
            data_start = 8 + header_len
            for name in sorted(file_names, key=lambda n: header[n]["data_offsets"][0]):
                entry = header[name]
                begin, end = entry["data_offsets"]
                tensor = torch.empty(entry["shape"], dtype=_DTYPES[entry["dtype"]])
                if tensor.numel() * tensor.element_size() != end - begin:
                    raise EfedError(f"{file}: tensor {name} has {end - begin} bytes for shape {entry['shape']}")
                f.seek(data_start + begin)
                if f.readinto(memoryview(tensor.view(torch.uint8).reshape(-1).numpy())) != end - begin:
                    raise EfedError(f"{file}: truncated at tensor {name}")
                out[name] = tensor.to(device=device, dtype=dtype)
    return out


_DTYPES = {
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "F64": torch.float64,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


def has_tensor(folder: Path, name: str) -> bool:
    return name in weight_files(folder)
