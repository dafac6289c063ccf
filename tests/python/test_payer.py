"""A client's receipts follow the epoch (client/payments.py): within a generation a server's signed answers say
which epoch its steps are booked under; a later generation learns the epoch afresh, because the server redeems
an epoch's receipts as soon as its work period ends and would refuse (402) a receipt for it after that.

End to end (one client generating in two epochs, paying both) this runs in tests/python/test_demo.py.
"""

from __future__ import annotations

import time

from efedllm.client import payments
from efedllm.client.payments import Payer
from efedllm.client.routing import Peer
from efedllm.receipts import RECEIPT_HEADER, Receipt, ReceiptDomain

CLIENT = "0x" + "c1" * 20
SERVER = "0x" + "5e" * 20
PRICE = 7


def receipt(paid) -> Receipt:
    return Receipt.from_header(paid.headers[RECEIPT_HEADER])


def test_a_later_generation_pays_for_the_chains_epoch_not_the_last_answers(monkeypatch):
    chain_epoch = [4]
    payer = Payer(
        client=CLIENT,
        sign=lambda data: b"\x01" * 65,
        domain=ReceiptDomain(chain_id=31337, contract="0x" + "aa" * 20),
        epoch=lambda: chain_epoch[0],
    )
    peer = Peer(endpoint="http://s", first=0, end=10, address=SERVER, price=PRICE)

    payer.start()  # the first generation
    paid = payer.pay(peer=peer, tokens=3, layers=10)
    assert (receipt(paid).epoch, receipt(paid).amount) == (4, 3 * 10 * PRICE)
    paid.served()
    payer.saw_epoch(SERVER, 4)
    chain_epoch[0] = 5  # the chain moved on mid-generation; the client has not read it again yet
    paid = payer.pay(peer=peer, tokens=1, layers=10)
    assert (receipt(paid).epoch, receipt(paid).amount) == (4, 4 * 10 * PRICE)  # cumulative
    paid.served()

    payer.start()  # the next generation: epoch 4 is over (and redeemed); it pays for 5 from nothing
    paid = payer.pay(peer=peer, tokens=2, layers=10)
    assert (receipt(paid).epoch, receipt(paid).amount) == (5, 2 * 10 * PRICE)
    paid.served()
    assert payer.owed == {(SERVER, 4): 4 * 10 * PRICE, (SERVER, 5): 2 * 10 * PRICE}

    # a long generation: once its read of the chain is older than EPOCH_TTL_S it moves on to the chain's epoch
    # (the server redeems 5 as soon as 5's work is over and would refuse a receipt for it); the read goes on in
    # the background, so the steps meanwhile go under 5 (the server takes a receipt for epoch +- 1)
    payer.saw_epoch(SERVER, 5)
    chain_epoch[0] = 6
    monkeypatch.setattr(payments, "EPOCH_TTL_S", -1.0)
    deadline = time.monotonic() + 10
    while (paid := payer.pay(peer=peer, tokens=1, layers=10)) and receipt(paid).epoch == 5:
        assert time.monotonic() < deadline, "the chain's epoch was never read again"
        time.sleep(0.01)
    assert (receipt(paid).epoch, receipt(paid).amount) == (6, 1 * 10 * PRICE)
