"""A chain of layer spans computes what the whole model computes, for every supported architecture.

Each architecture is exercised on a tiny random model written as a Hugging Face folder (safetensors), the way
a user's own model folder would be: prefill plus decode steps through three spans and the model ends must give
the full model's logits.
"""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from efedllm.errors import EfedError
from efedllm.model.head import ModelEnds
from efedllm.model.source import SUPPORTED_ARCHITECTURES, resolve
from efedllm.model.span import LayerSpan
from tests.support.tiny_model import write_tiny_model

CPU = torch.device("cpu")


def tiny_model_folder(tmp_path, model_type: str):
    folder = tmp_path / model_type
    return folder, write_tiny_model(folder, model_type)


@pytest.mark.parametrize("model_type", SUPPORTED_ARCHITECTURES)
def test_spans_reproduce_the_full_model(tmp_path, model_type):
    folder, full = tiny_model_folder(tmp_path, model_type)
    source = resolve(str(folder))
    spans = [LayerSpan(source.folder, a, b - a, device=CPU) for a, b in ((0, 2), (2, 5), (5, 6))]
    ends = ModelEnds(source.folder, device=CPU)
    caches = [span.new_cache() for span in spans]
    ids = torch.randint(0, 300, (1, 9))
    steps = [ids, torch.tensor([[5]]), torch.tensor([[17]]), torch.tensor([[42]])]
    past = 0
    for i, step in enumerate(steps):
        hidden = ends.embed_tokens(step)
        for span, cache in zip(spans, caches):
            hidden = span(hidden, cache, past=past)
        past += step.shape[1]
        ours = ends.logits(hidden)
        with torch.no_grad():
            reference = full(torch.cat(steps[: i + 1], dim=1)).logits[:, -step.shape[1] :]
        assert (ours - reference).abs().max().item() < 1e-4


def test_span_reads_only_its_layers(tmp_path):
    folder, _ = tiny_model_folder(tmp_path, "llama")
    span = LayerSpan(folder, 2, 3, device=CPU)
    expected = sum(
        p.numel()
        for layer in AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(folder)).model.layers[2:5]
        for p in layer.parameters()
    )
    assert sum(p.numel() for p in span.layers.parameters()) == expected
    assert not any(p.is_meta for p in span.parameters())


def test_bad_spans_and_folders(tmp_path):
    folder, _ = tiny_model_folder(tmp_path, "llama")
    with pytest.raises(EfedError, match="outside the model's 0:6"):
        LayerSpan(folder, 4, 3, device=CPU)
    with pytest.raises(EfedError, match="not a Hugging Face model folder"):
        resolve(str(tmp_path))
    with pytest.raises(EfedError, match="unknown model"):
        resolve("no-such-model")
