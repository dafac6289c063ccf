"""What verification costs and what it catches, on the real model.

    python bench/verify.py [--sessions 20 --steps 24 --layers 10:20 --trials 2000]

1. Overhead. A server span serves ``sessions`` sessions (a chat-sized prompt, then ``steps`` decode steps each),
   recording every task as the real server does. A verifier then does its per-epoch work for that server at the
   default sampling rate (verifier/sampling.py: DEFAULT_SAMPLES openings, checked as the verifier does: each
   session's longest opened prefix recomputed once, plus one canary prompt through its whole model). Both are timed
   in this run; the ratio is the verifier's compute as a fraction of the server's. The verifier's cost per epoch
   does not grow with the server's load, so the table also gives the ratio for a server busy for a whole epoch,
   pessimistically (every opening in a session of its own, so nothing is shared).
2. Detection. The same workload served again by a server that adds noise to 10% of its outputs
   (aids/faults.py). Every task is checked once for real (checks are deterministic), then ``trials`` random seeds
   draw the verifier's sample: the fraction of seeds whose sample holds at least one failed task is the observed
   probability of catching the server within one epoch, printed beside the computed one. The honest run's checks
   give the false-positive count (honest tasks that fail) and the largest honest deviation seen.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

from efedllm.openmp import OPENMP_ENV

os.environ.update({k: os.environ.get(k, v) for k, v in OPENMP_ENV.items()})  # before torch loads

import torch
from transformers import AutoTokenizer

from efedllm import merkle
from efedllm.aids.config import FaultConfig
from efedllm.aids.faults import Fault
from efedllm.chain.params import ProtocolParams
from efedllm.layers import parse_span
from efedllm.model.decoder import KVCache
from efedllm.model.source import DEFAULT_MODEL
from efedllm.receipts import ReceiptDomain
from efedllm.server.records import TaskStore
from efedllm.verifier.checks import check_opening, deviation
from efedllm.verifier.config import FLOAT32_TOLERANCE
from efedllm.verifier.reference import ReferenceModel
from efedllm.verifier.sampling import DEFAULT_SAMPLES, detection_probability, sample_indices
from efedllm.verifier.scoring import check_openings

SERVER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
RECEIPTS = ReceiptDomain(chain_id=31337, contract="0x" + "22" * 20)
"""Where receipts would be signed: the workload is unpaid (no receipts), so no deployment is needed."""
PROMPTS = [
    "Explain why the sky is blue to a child.",
    "Write a short poem about autumn leaves.",
    "What are the main causes of inflation?",
    "Give me three tips for learning a new language.",
    "Describe how a bicycle works.",
]


def serve(
    model: ReferenceModel,
    tokenizer,
    store: TaskStore,
    *,
    first: int,
    end: int,
    sessions: int,
    steps: int,
    fault: Fault | None,
) -> float:
    """Serve the workload through layers [first, end) and record it; returns the span's compute seconds."""
    compute = 0.0
    for s in range(sessions):
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": PROMPTS[s % len(PROMPTS)]}], add_generation_prompt=True, tokenize=False
        )
        tokens = tokenizer(text)["input_ids"]
        front_cache, span_cache, back_cache, past = KVCache(), KVCache(), KVCache(), 0
        new = tokens
        for _ in range(steps + 1):
            hidden = model.run(model.embed(new), front_cache, past=past, start=0, end=first)
            started = time.perf_counter()
            out = model.run(hidden, span_cache, past=past, start=first, end=end)
            compute += time.perf_counter() - started
            answered = fault.apply(inputs=hidden, outputs=out) if fault else out
            store.record(epoch=1, session=f"s{s}", start=first, end=end, past=past, inputs=hidden, outputs=answered)
            final = model.run(answered, back_cache, past=past, start=end, end=model.num_layers)
            past += len(new)
            new = [model.next_token(final)]
    records, _ = store.tree(1)
    store.save_commitment(1, merkle.root([r.leaf(SERVER) for r in records]), len(records), None)
    return compute


def check_all(model: ReferenceModel, store: TaskStore) -> tuple[list[bool], list[float], float]:
    """Every task's verdict, honest deviations, and the mean seconds per check."""
    root, units, _ = store.commitment(1)
    verdicts, deviations, seconds = [], [], 0.0
    recomputed = []

    def recompute(inputs, start, end):
        recomputed.append(model.recompute(inputs, start, end))
        return recomputed[-1]

    model.recompute(store.opening(1, 0).inputs, 0, 1)  # warm up
    for index in range(units):
        opening = store.opening(1, index)  # reading the opening is the server's work, not the verifier's
        started = time.perf_counter()
        verdict = check_opening(
            opening,
            server=SERVER,
            epoch=1,
            index=index,
            root=root,
            work_units=units,
            num_layers=model.num_layers,
            recompute=recompute,
            tolerance=lambda layers: FLOAT32_TOLERANCE,
            receipts=RECEIPTS,
        )
        seconds += time.perf_counter() - started
        verdicts.append(verdict.passed)
        deviations.append(deviation(opening.output, recomputed[-1][:, -opening.steps[-1] :]))
    return verdicts, deviations, seconds / units


def sampled_check_seconds(model: ReferenceModel, store: TaskStore, *, seeds: int) -> float:
    """Mean seconds of the verifier's real check of one epoch's sample (verifier/scoring.check_openings)."""
    root, units, _ = store.commitment(1)
    rng, total = random.Random(1), 0.0
    for _ in range(seeds):
        opened = {i: store.opening(1, i) for i in sample_indices(rng.randbytes(32), SERVER, units, DEFAULT_SAMPLES)}
        started = time.perf_counter()
        verdicts = check_openings(
            opened,
            server=SERVER,
            epoch=1,
            root=root,
            work_units=units,
            model=model,
            tolerance=FLOAT32_TOLERANCE,
            receipts=RECEIPTS,
        )
        total += time.perf_counter() - started
        assert all(v.passed for v in verdicts)
    return total / seeds


def canary_seconds(model: ReferenceModel, tokenizer, *, first: int, end: int) -> float:
    """A canary prompt and two decode steps through the verifier's whole model (what it computes itself)."""
    started = time.perf_counter()
    tokens, cache, past = tokenizer(PROMPTS[0])["input_ids"], KVCache(), 0
    new = tokens
    for _ in range(3):
        out = model.run(model.embed(new), cache, past=past, start=0, end=model.num_layers)
        past += len(new)
        new = [model.next_token(out)]
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--layers", default="10:20")
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--corrupted", type=float, default=0.1)
    args = parser.parse_args()
    first, count = parse_span(args.layers, 30)
    end = first + count
    torch.manual_seed(0)
    model = ReferenceModel(DEFAULT_MODEL, progress=print)
    tokenizer = AutoTokenizer.from_pretrained(model.folder)

    with tempfile.TemporaryDirectory() as tmp:
        honest = TaskStore(Path(tmp) / "honest.sqlite", server=SERVER)
        print(f"serving {args.sessions} sessions x ({args.steps} decode steps + prefill) on layers {first}:{end} ...")
        server_s = serve(
            model, tokenizer, honest, first=first, end=end, sessions=args.sessions, steps=args.steps, fault=None
        )
        units = honest.commitment(1)[1]
        print(f"checking all {units} honest tasks ...")
        honest_ok, honest_dev, per_check = check_all(model, honest)
        canary_s = canary_seconds(model, tokenizer, first=first, end=end)

        cheat = TaskStore(Path(tmp) / "cheat.sqlite", server=SERVER)
        fault = Fault(FaultConfig(kind="noise", rate=args.corrupted, scale=0.005, seed=7))
        print(f"serving the same workload with noise on {args.corrupted:.0%} of the outputs, checking every task ...")
        serve(model, tokenizer, cheat, first=first, end=end, sessions=args.sessions, steps=args.steps, fault=fault)
        cheat_ok, _, _ = check_all(model, cheat)

        sample_s = sampled_check_seconds(model, honest, seeds=3)

    samples = min(DEFAULT_SAMPLES, units)
    verifier_s = sample_s + canary_s
    per_task = server_s / units
    print("\n== verifier compute per epoch vs the server's (one server, default sampling) ==")
    print(f"server: {units} tasks in {server_s:.2f}s ({per_task * 1000:.1f} ms/task)")
    print(
        f"verifier: {samples} openings in {sample_s:.2f}s (each session's longest opened prefix recomputed once; "
        f"{per_check * 1000:.0f} ms per opening checked alone) + canary {canary_s:.2f}s = {verifier_s:.2f}s"
    )
    print(f"{'tasks per epoch':>16}  {'verifier / server':>17}")
    print(f"{units:>16}  {verifier_s / server_s:>16.1%}  this run")
    for seconds in (ProtocolParams().epoch_length, 600, 3600):
        w = int(seconds / per_task)  # more sessions, not longer ones: the sample still opens ~44 sessions
        ratio = (DEFAULT_SAMPLES * per_check + canary_s) / (w * per_task)
        print(f"{w:>16}  {ratio:>16.1%}  busy for a whole {seconds}s epoch (every opening its own session)")

    bad = [i for i, ok in enumerate(cheat_ok) if not ok]
    rng = random.Random(0)
    caught = sum(
        any(not cheat_ok[i] for i in sample_indices(rng.randbytes(32), SERVER, units, DEFAULT_SAMPLES))
        for _ in range(args.trials)
    )
    print("\n== detection within one epoch ==")
    print(
        f"corrupted tasks: {len(bad)} of {units} ({len(bad) / units:.1%}); faulted by the server: {fault.steps_faulted}"
    )
    print(
        f"computed probability (hypergeometric, {samples} of {units}): "
        f"{detection_probability(corrupted=len(bad) / units, samples=DEFAULT_SAMPLES, work_units=units):.4f}"
    )
    print(
        f"computed, large epoch (with replacement): {detection_probability(corrupted=args.corrupted, samples=DEFAULT_SAMPLES):.4f}"
    )
    print(f"observed over {args.trials} seeds: {caught / args.trials:.4f}")
    paper_acc = cheat_ok.count(True) / units
    print(
        f"the cheater's acc under --policy paper (passed / checked, expected over the sample): {paper_acc:.3f}, "
        f"above theta = {ProtocolParams().theta / 10**18:.1f}: never slashed; under --policy strict: 0 whenever caught"
    )
    print("\n== honest server ==")
    print(f"honest tasks failing their check: {honest_ok.count(False)} of {units} (false positives)")
    print(
        f"largest honest deviation: {max(honest_dev):.2e}; tolerance {FLOAT32_TOLERANCE:.0e} "
        f"({FLOAT32_TOLERANCE / max(max(honest_dev), 1e-12):.0f}x margin)"
    )


if __name__ == "__main__":
    main()
