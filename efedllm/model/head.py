"""The client's part of the model: token embeddings in, final norm and LM head out. Nothing else is loaded.

The client runs transformers' own modules here (it needs transformers for the tokenizer and chat template anyway).

One client process often runs many generations at once (``efedllm api``, bench/load.py): their next-token logits
are computed together (``next_logits``), because the LM head is the largest matrix the client holds (vocabulary x
hidden: 113 MB in float32 for SmolLM2-135M) and one pass over it serves a whole batch of rows as cheaply as one.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM

from efedllm.model.linear import linear
from efedllm.model.weights import has_tensor, read_tensors


def load_config(folder: Path):
    config = AutoConfig.from_pretrained(folder)
    config._attn_implementation = "sdpa"
    return config


def skeleton(config):
    """The whole model on the meta device: structure without memory."""
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")


class ModelEnds(torch.nn.Module):
    def __init__(self, folder: Path, *, device: torch.device, dtype=torch.float32):
        super().__init__()
        self.config = config = load_config(folder)
        model = skeleton(config)
        self.embed = model.model.embed_tokens
        self.norm = model.model.norm
        self.lm_head = model.lm_head
        tied = getattr(config, "tie_word_embeddings", False) or not has_tensor(folder, "lm_head.weight")
        names = ["model.embed_tokens.weight", "model.norm.weight"] + ([] if tied else ["lm_head.weight"])
        t = read_tensors(folder, names, device=device, dtype=dtype)
        self.embed.load_state_dict({"weight": t["model.embed_tokens.weight"]}, assign=True)
        self.norm.load_state_dict({"weight": t["model.norm.weight"]}, assign=True)
        if tied:
            self.lm_head.weight = self.embed.weight
        else:
            self.lm_head.load_state_dict({"weight": t["lm_head.weight"]}, assign=True)
        self.device, self.dtype = device, dtype
        self._head_batch = _Combiner(
            lambda rows: linear(self.norm(rows), self.lm_head.weight, self.lm_head.bias).float().cpu()
        )
        self.eval()

    @torch.inference_mode()
    def next_logits(self, hidden: torch.Tensor, *, together: int = 1) -> torch.Tensor:
        """Float32 logits ([1, vocabulary], on the CPU) of the last position of ``hidden`` ([1, tokens, hidden]).

        Safe to call from many threads: calls that arrive while the head is busy wait and then run as one batch
        (the first waiting caller computes it for all), so N concurrent generations read the head's weights once
        per round instead of N times. Only the last position goes through the head: a prompt's other positions
        would cost a vocabulary-wide row each and are never used.

        ``together``: how many callers (this one included) are known to come at once, e.g. the sessions whose
        decode steps one server answered in one request (client/lockstep.py). They wake one after the other, and
        the first would otherwise run the head alone while the rest queue for a second pass (bench/load.py, 16
        sessions: 83 passes of 1 row and 61 of 15); the caller that computes waits up to ``GATHER_S`` for that
        many rows. A caller alone never waits."""
        return self._head_batch.run(hidden[:, -1, :].to(self.device), together=together)

    @torch.inference_mode()
    def embed_tokens(self, token_ids: torch.Tensor) -> torch.Tensor:
        return self.embed(token_ids.to(self.device))

    @torch.inference_mode()
    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.norm(hidden))


GATHER_S = 0.005
"""The longest the head waits for callers known to come at once (``next_logits(together=)``). They are woken
together: in bench/load.py's load (16 sessions, 64 decode rounds, 32 prompts) the head ran 90 passes with it against
152-154 without. One that does not come (its session failed meanwhile) costs the others this much once."""


class _Waiter:
    __slots__ = ("error", "lead", "ready", "result", "row")

    def __init__(self, row: torch.Tensor):
        self.row, self.result, self.error, self.lead = row, None, None, False
        self.ready = threading.Event()


class _Combiner:
    """Runs ``compute`` ([B, hidden] -> [B, out]) over the rows of concurrent callers in one call (flat combining).

    The caller that finds the combiner idle computes the batch of everything queued, its own row included; rows
    that arrive meanwhile queue, and when the batch is done the first of them is woken to compute the next batch.
    So no thread computes for others longer than one batch, and a caller alone pays no wait at all."""

    def __init__(self, compute):
        self.compute = compute
        self.lock = threading.Condition()
        self.queue: list[_Waiter] = []
        self.busy = False

    def run(self, row: torch.Tensor, *, together: int = 1) -> torch.Tensor:
        """``compute`` of ``row`` ([1, hidden]), batched with the rows of concurrent callers; the caller that
        computes first waits (up to ``GATHER_S``) until ``together`` rows are queued."""
        me = _Waiter(row)
        with self.lock:
            self.queue.append(me)
            me.lead = not self.busy
            self.busy = True
            self.lock.notify_all()
        if not me.lead:
            me.ready.wait()
            if not me.lead:  # computed by another caller's batch
                if me.error is not None:
                    raise me.error
                return me.result
        with self.lock:
            deadline = time.monotonic() + GATHER_S
            while len(self.queue) < together and (left := deadline - time.monotonic()) > 0:
                self.lock.wait(left)
            batch, self.queue = self.queue, []
        try:
            out = self.compute(torch.cat([w.row for w in batch], dim=0))
            for i, w in enumerate(batch):
                w.result = out[i : i + 1]
        except BaseException as exc:  # noqa: BLE001 - every caller of the batch sees the error, raised below
            for w in batch:
                w.error = exc
        finally:
            with self.lock:
                if self.queue:
                    self.queue[0].lead = True  # the next batch is the first waiter's to compute
                    self.queue[0].ready.set()
                else:
                    self.busy = False
            for w in batch:
                if w is not me:
                    w.ready.set()
        if me.error is not None:
            raise me.error
        return me.result
