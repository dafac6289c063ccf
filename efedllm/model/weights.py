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
            names.update({name: file for name in f.keys()})
    return names


def read_tensors(folder: Path, names: Iterable[str], *, device: torch.device, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The named tensors, read one at a time onto ``device`` as ``dtype``."""
    where = weight_files(folder)
    wanted = list(names)
    missing = [n for n in wanted if n not in where]
    if missing:
        raise EfedError(f"{folder}: weights missing: {', '.join(missing[:5])}")
    out: dict[str, torch.Tensor] = {}
    by_file: dict[Path, list[str]] = {}
    for name in wanted:
        by_file.setdefault(where[name], []).append(name)
    for file, file_names in by_file.items():
        with safe_open(file, framework="pt") as f:
            for name in file_names:
                out[name] = f.get_tensor(name).to(device=device, dtype=dtype)
    return out


def has_tensor(folder: Path, name: str) -> bool:
    return name in weight_files(folder)
