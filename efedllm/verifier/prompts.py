"""Fresh canary prompts: each one written anew by the verifier's own model, never taken from a list (issue 14).

A fixed list of canary prompts is trivially recognised: a cheating server keeps the list (the first span sees the
token embeddings, so it reads the prompt; a later span can precompute the hidden states that the list's prompts
reach it with), answers those honestly and cheats everyone else. So no canary prompt is written down anywhere:
for each canary the verifier lets its reference model write a user's message, sampled with temperature from the
opening of a user turn of the chat template (a fresh random seed, a random length), and sends that message
through the chat template exactly as a client's ``generate(prompt=...)`` encodes it (client/model.py ``encode``).
A model without a chat template writes plain text instead, from its first token on.

What this does not hide: the prompts are the model's own writing, so a server that runs the whole model could
score how likely each prompt is under it and suspect the likeliest (docs/SECURITY.md).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from efedllm.client.model import encode
from efedllm.model.decoder import KVCache

MIN_TOKENS, MAX_TOKENS = 4, 24
"""The length of the user's message a canary writes, in tokens (drawn between the two; it may stop sooner)."""
TEMPERATURE, TOP_K = 1.0, 50
_MARK = "\x00canary\x00"


@dataclass(frozen=True, kw_only=True)
class Prompt:
    text: str
    """The user's message the model wrote."""
    ids: list[int]
    """What a client sends for it: the message through the chat template (or the text alone without one)."""


def fresh_prompt(model, tokenizer, *, seed: int) -> Prompt:
    """A canary prompt written by ``model`` (verifier/reference.py) from ``seed``: the same seed, the same prompt;
    the caller draws each seed at random."""
    rng = random.Random(seed)
    generator = torch.Generator().manual_seed(rng.getrandbits(63))
    start, stop = _opening(tokenizer)
    written = _write(model, start, stop, length=rng.randint(MIN_TOKENS, MAX_TOKENS), generator=generator)
    text = tokenizer.decode(written, skip_special_tokens=True).strip() or tokenizer.decode(written)
    return Prompt(text=text, ids=encode(tokenizer, prompt=text)[0].tolist())


def _opening(tokenizer) -> tuple[list[int], set[int]]:
    """The tokens a user's message follows, and those that end it (the template's end of turn, any special)."""
    stop = set(tokenizer.all_special_ids)
    if tokenizer.chat_template:
        rendered = tokenizer.apply_chat_template(
            [{"role": "user", "content": _MARK}], tokenize=False, add_generation_prompt=True
        )
        before, after = rendered.split(_MARK, 1)
        start = tokenizer(before, add_special_tokens=False)["input_ids"]
        return start, stop | set(tokenizer(after, add_special_tokens=False)["input_ids"][:1])
    first = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    return [first if first is not None else 0], stop


@torch.inference_mode()
def _write(model, start: list[int], stop: set[int], *, length: int, generator: torch.Generator) -> list[int]:
    """Up to ``length`` tokens sampled after ``start`` (top-k, with temperature), none of ``stop`` before
    ``MIN_TOKENS``."""
    cache, past, new, written = KVCache(), 0, list(start), []
    banned = torch.tensor(sorted(stop), dtype=torch.long)
    while len(written) < length:
        hidden = model.run(model.embed(new), cache, past=past, start=0, end=model.num_layers)
        past += len(new)
        logits = model.logits(hidden) / TEMPERATURE
        if len(written) < MIN_TOKENS and len(banned):
            logits[banned] = float("-inf")
        top = torch.topk(logits, TOP_K)
        token = int(top.indices[torch.multinomial(torch.softmax(top.values, -1), 1, generator=generator)])
        if token in stop:
            break
        written.append(token)
        new = [token]
    return written
