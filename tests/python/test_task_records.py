"""Task records survive a restart and commit to the session prefix a verifier needs, and to the client's receipt
that paid for each step."""

import torch
from eth_account import Account

from efedllm import merkle
from efedllm.client.payments import Payer
from efedllm.client.routing import Peer
from efedllm.openings import decode_opening, encode_opening
from efedllm.receipts import UNPAID, ReceiptDomain, digest
from efedllm.server.payments import Paywall, ReceiptBook
from efedllm.server.records import TaskStore
from efedllm.tasks import TaskRecord, tensor_hash

SERVER = "0x" + "11" * 20


def step(store, epoch, session, past, tokens, width: int = 8):
    x = torch.randn(1, tokens, width)
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
                step(store, epoch, f"{epoch}-{s}", 0, 64, width=128)  # far more than a 16 KiB page per epoch
        pruned.prune(settled_before=epoch - 1)
        sizes.append((pruned.stored_bytes(), kept.stored_bytes()))
    assert sizes[-1][0] <= sizes[3][0] * 1.1
    assert sizes[-1][1] > 1.5 * sizes[3][1]


CLIENT = Account.create()
RECEIPTS = ReceiptDomain(chain_id=31337, contract="0x" + "22" * 20)
PRICE = 5


def paying(tmp_path, epoch: int):
    """A paying client's step as it reaches the recorder: the client's Payer signs the cumulative receipt, the
    server's Paywall checks it (server/app.py's forward), and the checked Payment goes to TaskStore.record."""
    payer = Payer(
        client=CLIENT.address,
        sign=lambda data: bytes(CLIENT.unsafe_sign_hash(digest(data)).signature),
        domain=RECEIPTS,
        epoch=lambda: epoch,
    )
    paywall = Paywall(
        price=PRICE, me=SERVER, domain=RECEIPTS, epoch=lambda: epoch, book=ReceiptBook(tmp_path / "receipts.sqlite")
    )
    peer = Peer(endpoint="http://server", first=0, end=4, address=SERVER, price=PRICE)

    def pay(tokens: int):
        paid = payer.pay(peer=peer, tokens=tokens, layers=4)
        payment = paywall.check(tokens=tokens, layers=4, headers=paid.headers)
        assert payment.digest == paid.digest  # what the client will expect in the signed answer
        paywall.accept(payment)
        paid.served()
        return payment

    return pay


def test_a_paid_step_commits_its_receipt_and_keeps_it_for_openings(tmp_path):
    """The leaf of a paid step commits to the digest of the client's receipt; the record keeps the signed receipt
    across a restart, an opening shows it, and an unpaid step's leaf commits to zero and shows none."""
    path = tmp_path / "tasks.sqlite"
    store, pay = TaskStore(path, server=SERVER), paying(tmp_path, 4)
    first, second = pay(6), pay(1)
    x = torch.randn(1, 6, 8)
    store.record(epoch=4, session="a", start=0, end=4, past=0, inputs=x, outputs=x * 2, payment=first)
    step(store, 4, "free", 0, 2)
    y = torch.randn(1, 1, 8)
    paid = store.record(epoch=4, session="a", start=0, end=4, past=6, inputs=y, outputs=y * 2, payment=second)
    assert paid.receipt == second.digest == RECEIPTS.digest(second.signed.receipt) != first.digest
    assert second.signed.receipt.amount == PRICE * 7 * 4  # cumulative: both steps
    records = store.records(4)
    store.save_commitment(4, merkle.root([r.leaf(SERVER) for r in records]), len(records), None)
    store.close()

    reopened = TaskStore(path, server=SERVER)
    assert [r.receipt for r in reopened.records(4)] == [first.digest, UNPAID, second.digest]
    assert reopened.records(4)[2] == paid
    opening = reopened.opening(4, 2)
    assert opening.receipt == second.signed and opening.record["receipt"] == "0x" + second.digest.hex()
    assert decode_opening(encode_opening(opening)).receipt == second.signed  # as it travels to a verifier
    assert reopened.opening(4, 1).receipt is None and reopened.opening(4, 1).record["receipt"] == "0x" + "00" * 32
    unpaid = TaskRecord(**{**paid.__dict__, "receipt": UNPAID})
    assert unpaid.leaf(SERVER) != paid.leaf(SERVER)  # the claim of payment is part of what was committed


def test_pruning_a_paid_step_prunes_its_receipt(tmp_path):
    store, pay = TaskStore(tmp_path / "tasks.sqlite", server=SERVER), paying(tmp_path, 0)
    x = torch.randn(1, 3, 8)
    store.record(epoch=0, session="done", start=0, end=4, past=0, inputs=x, outputs=x, payment=pay(3))
    assert store.paid_by(0, 0) is not None
    assert store.prune(settled_before=1) == 1
    assert store.paid_by(0, 0) is None  # else a later step numbered (0, 0) would show it


def test_records_keep_the_served_dtype_compressed_and_older_stores_stay_readable(tmp_path, monkeypatch):
    """Issue 15: a bfloat16 server's records are bfloat16 (half a float32 server's bytes), zlib-compressed, in
    16 KiB pages; a store written before (plain tensors, no format row) still opens and reads as it was."""
    import sqlite3

    from efedllm.server import records

    store = TaskStore(tmp_path / "new.sqlite", server=SERVER)
    assert store.format == records.FORMAT == 2
    assert store._db.execute("PRAGMA page_size").fetchone()[0] == records.PAGE_SIZE
    x = torch.randn(1, 5, 8).to(torch.bfloat16)
    store.record(epoch=1, session="s", start=0, end=4, past=0, inputs=x, outputs=x * 2)
    store.save_commitment(1, merkle.root([r.leaf(SERVER) for r in store.records(1)]), 1, None)
    opening = store.opening(1, 0)
    assert opening.inputs.dtype == torch.bfloat16 and torch.equal(opening.inputs, x)
    assert torch.equal(opening.output, x * 2)
    blob = store._db.execute("SELECT output FROM tasks").fetchone()[0]
    assert blob[:1] == b"x"  # a zlib stream, not safetensors bytes
    store.close()

    monkeypatch.setattr(records, "FORMAT", 1)  # a store as version 1 wrote it: plain tensors, then no format row
    old = TaskStore(tmp_path / "old.sqlite", server=SERVER)
    y = torch.randn(1, 3, 8)
    old.record(epoch=1, session="s", start=0, end=4, past=0, inputs=y, outputs=y)
    old.close()
    with sqlite3.connect(tmp_path / "old.sqlite") as db:
        db.execute("DELETE FROM meta")
    monkeypatch.setattr(records, "FORMAT", 2)
    reopened = TaskStore(tmp_path / "old.sqlite", server=SERVER)
    assert reopened.format == 1
    assert torch.equal(reopened.session_inputs("s", up_to_step=0)[0], y)
