"""Disk a server's task records take, with and without pruning settled epochs, side by side in one run.

    python bench/records.py [--epochs 12 --sessions 8 --prompt 48 --steps 24 --settle-after 2]

Then, per declared compute dtype (issue 15: records are kept in the dtype the server declares and computes in,
the one its hidden states travel in), the bytes a pruned store holds per served token for the same load,
side by side with float32's.

Two task stores (efedllm/server/records.py, the server's own) record the same steady load every epoch: each
session a prompt of ``--prompt`` tokens, then ``--steps`` one-token decode steps, with hidden states of the default
model's width (576): real hidden states of the default model entering layer 10 for a real text, taken in turn
(records are compressed, so the values matter, not only the shapes). Epoch e settles ``--settle-after`` epochs later (the default parameters: a 60 s epoch
and 100 s of windows settle during the work period two epochs on). One store is pruned as the server prunes it
(``Committer.prune``: every closed session whose steps all lie in settled epochs), the other keeps everything,
as servers did before. Printed per epoch: tokens served so far, bytes in use in each file, and bytes per token.
Bytes are the pages in use (the file less its free pages, which the next records reuse).
"""

from __future__ import annotations

import argparse
import functools
import tempfile
from pathlib import Path

import torch

from efedllm import wire
from efedllm.cli.common import table
from efedllm.server.records import TaskStore

WIDTH = 576  # SmolLM2-135M's hidden size
SERVER = "0x" + "11" * 20


TEXT = (
    "The keeper climbed the hundred steps at dusk to light the lamp, as he had done for forty years. Below him the "
    "harbour emptied: the fishing boats came in one by one, their lanterns swinging, and the gulls settled on the "
    "breakwater. He trimmed the wick, polished the great lens until it shone, and wrote in the log the wind, the "
    "sea and the names of the ships that passed. Then he sat by the window with his tea and watched the beam sweep "
    "over the water, counting the seconds between the flashes of the lighthouse across the bay."
)


@functools.cache
def activations() -> torch.Tensor:
    """Hidden states [tokens, WIDTH] of the default model entering layer 10 for TEXT (float32)."""
    from transformers import AutoTokenizer

    from efedllm.verifier.reference import ReferenceModel

    model = ReferenceModel("smollm2-135m-instruct", device="cpu", progress=lambda *a: None)
    ids = AutoTokenizer.from_pretrained(model.folder)(TEXT)["input_ids"]
    return model.recompute(model.embed(ids), 0, 10)[0]


def hidden_states(n: int, *, dtype: torch.dtype, _cursor=[0]) -> torch.Tensor:  # noqa: B006 (a running cursor)
    """The next ``n`` real hidden states, [1, n, WIDTH] in ``dtype``."""
    rows = activations()
    picked = [rows[(_cursor[0] + i) % len(rows)] for i in range(n)]
    _cursor[0] += n
    return torch.stack(picked)[None].to(dtype)


def serve_epoch(
    store: TaskStore, epoch: int, *, sessions: int, prompt: int, steps: int, dtype: torch.dtype = torch.float32
) -> int:
    tokens = 0
    for s in range(sessions):
        session, past = f"{epoch}-{s}", 0
        for n in [prompt] + [1] * steps:
            x = hidden_states(n, dtype=dtype)
            store.record(epoch=epoch, session=session, start=0, end=30, past=past, inputs=x, outputs=x)
            past += n
            tokens += n
    return tokens


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--prompt", type=int, default=48)
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--settle-after", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pruned = TaskStore(Path(tmp) / "pruned.sqlite", server=SERVER)
        kept = TaskStore(Path(tmp) / "kept.sqlite", server=SERVER)
        rows, served = [], 0
        for epoch in range(args.epochs):
            for store in (pruned, kept):
                tokens = serve_epoch(store, epoch, sessions=args.sessions, prompt=args.prompt, steps=args.steps)
            served += tokens
            pruned.prune(settled_before=epoch + 1 - args.settle_after)
            p, k = pruned.stored_bytes(), kept.stored_bytes()
            rows.append([epoch, served, f"{k:,}", f"{k / served:,.0f}", f"{p:,}", f"{p / served:,.0f}"])
        print(table(["epoch", "tokens served", "kept: bytes", "bytes/token", "pruned: bytes", "bytes/token"], rows))
        per_epoch = tokens
        in_flight = args.settle_after  # epochs not settled yet when the pruning runs
        print(
            f"\nnot pruned: {k / served:,.0f} bytes per served token, for ever; pruned: the file holds about "
            f"{in_flight} epochs of records ({p / (in_flight * per_epoch):,.0f} bytes per token of the last "
            f"{in_flight} epochs), {p / k:.2f}x the unpruned file after {args.epochs} epochs"
        )
        print(f"\nby declared dtype (pruned as above, after {args.epochs} epochs):")
        rows, base = [], None
        for name, dtype in wire.DTYPES.items():
            store, served = TaskStore(Path(tmp) / f"{name}.sqlite", server=SERVER), 0
            for epoch in range(args.epochs):
                served += serve_epoch(
                    store, epoch, sessions=args.sessions, prompt=args.prompt, steps=args.steps, dtype=dtype
                )
                store.prune(settled_before=epoch + 1 - args.settle_after)
            per_token = store.stored_bytes() / served
            base = base or per_token
            rows.append([name, f"{store.stored_bytes():,}", f"{per_token:,.0f}", f"{per_token / base:.2f}x"])
        print(table(["records in", "bytes in use", "bytes/served token", "vs float32"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
