"""Task records survive a restart and commit to the session prefix a verifier needs."""

import torch

from efedllm import merkle
from efedllm.server.records import TaskStore
from efedllm.tasks import tensor_hash

SERVER = "0x" + "11" * 20


def step(store, epoch, session, past, tokens):
    x = torch.randn(1, tokens, 8)
    return store.record(epoch=epoch, session=session, start=0, end=4, past=past, inputs=x, outputs=x * 2), x


def test_records_chain_each_session_and_number_each_epoch(tmp_path):
    store = TaskStore(tmp_path / "tasks.sqlite", server=SERVER)
    a0, xa0 = step(store, 5, "a", 0, 6)
    _b0, _ = step(store, 5, "b", 0, 3)
    a1, xa1 = step(store, 5, "a", 6, 1)
    a2, _ = step(store, 6, "a", 7, 1)  # the session goes on in the next epoch
    assert [r.index for r in store.records(5)] == [0, 1, 2] and [r.index for r in store.records(6)] == [0]
    assert (a0.step, a1.step, a2.step) == (0, 1, 2)
    assert a0.prefix_hash == b"\0" * 32
    assert a1.prefix_hash != a2.prefix_hash != a0.prefix_hash
    assert a0.input_hash == tensor_hash(xa0)
    prefix = store.session_inputs("a", up_to_step=1)
    assert [t.shape[1] for t in prefix] == [6, 1]
    assert torch.equal(prefix[1], xa1)


def test_a_restart_loses_nothing(tmp_path):
    path = tmp_path / "tasks.sqlite"
    store = TaskStore(path, server=SERVER)
    for i in range(5):
        step(store, 1, "s", i, 1)
    records, tree = store.tree(1)
    root = merkle.root([r.leaf(SERVER) for r in records])
    store.save_commitment(1, root, len(records), None)
    store.close()

    reopened = TaskStore(path, server=SERVER)
    assert reopened.records(1) == records
    assert reopened.commitment(1) == (root, 5, None)
    nxt, _ = step(reopened, 1, "s", 5, 1)  # numbering and the session chain continue after the restart
    assert (nxt.index, nxt.step) == (5, 5)
    records, tree = reopened.tree(1)
    assert merkle.verify(
        merkle.root([r.leaf(SERVER) for r in records]), records[3].leaf(SERVER), 3, 6, merkle.proof(tree, 3)
    )


def test_prune_keeps_every_prefix_an_openable_leaf_or_an_open_session_needs(tmp_path):
    """Epochs 0 and 1 settled, epoch 2 still being verified: a closed session whose steps all lie in settled
    epochs goes; one with a step in epoch 2 keeps its earlier steps (the opening of that step carries them); an
    open session keeps everything, and its next step still chains to the last one."""
    store = TaskStore(tmp_path / "tasks.sqlite", server=SERVER)
    step(store, 0, "done", 0, 4)
    step(store, 1, "done", 4, 1)
    step(store, 0, "spans", 0, 5)
    step(store, 2, "spans", 5, 1)
    step(store, 1, "open", 0, 3)
    records, _ = store.tree(2)
    store.save_commitment(2, merkle.root([r.leaf(SERVER) for r in records]), len(records), None)

    assert store.prune(settled_before=2, keep={"open"}) == 2
    assert store.session_inputs("done", up_to_step=9) == []
    opening = store.opening(2, 0)
    assert opening.steps == [5, 1]  # the settled step of epoch 0 is still there for epoch 2's opening
    nxt, _ = step(store, 3, "open", 3, 1)
    assert nxt.step == 1 and nxt.prefix_hash != b"\0" * 32
    assert store.prune(settled_before=2, keep=set()) == 0  # "open" now has a step in epoch 3
    assert store.prune(settled_before=4, keep=set()) == 4


def test_a_steadily_serving_store_stops_growing_when_pruned(tmp_path):
    """The file of a server that serves the same load every epoch reaches a plateau once settled epochs are
    pruned (freed pages are reused); without pruning it grows by the same amount every epoch."""
    pruned = TaskStore(tmp_path / "pruned.sqlite", server=SERVER)
    kept = TaskStore(tmp_path / "kept.sqlite", server=SERVER)
    sizes = []
    for epoch in range(8):
        for store in (pruned, kept):
            for s in range(4):
                step(store, epoch, f"{epoch}-{s}", 0, 64)
        pruned.prune(settled_before=epoch - 1)
        sizes.append((pruned.stored_bytes(), kept.stored_bytes()))
    assert sizes[-1][0] <= sizes[3][0] * 1.1
    assert sizes[-1][1] > 1.5 * sizes[3][1]
