"""Canary prompts are written anew for every canary (verifier/prompts.py): a server cannot keep a list of them.

Two verifiers, each drawing its seeds as the daemon does, write four canary prompts each (four epochs): all eight
differ, so they cannot come from any list of fewer than eight (the old fixed list had six), and none is one of the
old list's. Each is what a client sends for its text: the chat template's user turn, as ``generate(prompt=...)``
encodes it.
"""

from __future__ import annotations

import random
import secrets

import pytest
from transformers import AutoTokenizer

from efedllm.client.model import encode
from efedllm.model.source import DEFAULT_MODEL
from efedllm.verifier import scoring
from efedllm.verifier.prompts import MAX_TOKENS, fresh_prompt
from efedllm.verifier.reference import ReferenceModel

OLD_FIXED_LIST = (
    "The capital of France is",
    "Water boils at a temperature of",
    "Once upon a time, in a small village,",
    "The three primary colours are",
    "A prime number is a number that",
    "def fibonacci(n):",
)
EPOCHS = 4


@pytest.fixture(scope="module")
def model():
    return ReferenceModel(DEFAULT_MODEL, device="cpu", progress=lambda m: None)


@pytest.fixture(scope="module")
def tokenizer(model):
    return AutoTokenizer.from_pretrained(model.folder)


def test_every_canary_prompt_is_new(model, tokenizer):
    verifiers = [random.Random(secrets.randbits(64)) for _ in range(2)]  # as verifier/daemon.py seeds its rng
    prompts = [fresh_prompt(model, tokenizer, seed=rng.getrandbits(64)) for rng in verifiers for _ in range(EPOCHS)]
    texts = [p.text for p in prompts]
    assert len(set(texts)) == len(texts) == 2 * EPOCHS, texts
    assert not set(texts) & set(OLD_FIXED_LIST)
    assert not hasattr(scoring, "CANARY_TEXTS")
    for prompt in prompts:
        assert prompt.text.strip() and len(tokenizer(prompt.text)["input_ids"]) <= 2 * MAX_TOKENS
        assert prompt.ids == encode(tokenizer, prompt=prompt.text)[0].tolist()  # a client's chat prompt
        assert tokenizer.decode(prompt.ids).count("<|im_start|>user") == 1
