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
