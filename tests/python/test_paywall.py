"""A server's paywall counts the steps it is running (server/payments.py ``Paywall``): a receipt pays for a step only
on top of the latest receipt booked *and* of every step of that client checked and not yet served. Otherwise a
client could send several steps at once (concurrent requests, or one ``POST /steps``), each with a receipt for one
step more than the last booked one, have them all served and pay for one. End to end against a real priced server
process this runs in tests/python/test_paid_work.py; here the bookkeeping itself, case by case.
"""

from __future__ import annotations

import pytest
from eth_account import Account

from efedllm.receipts import RECEIPT_HEADER, RECEIPT_SIGNATURE_HEADER, Receipt, ReceiptDomain
from efedllm.server.payments import Paywall, ReceiptBook
from efedllm.server.sessions import SessionError

PRICE, LAYERS, EPOCH = 1_000, 10, 3
COST = PRICE * LAYERS  # one token through the server's layers
SERVER = Account.from_key(b"\x05" * 32).address
DOMAIN = ReceiptDomain(chain_id=31337, contract="0x" + "22" * 20)
CLIENT = Account.from_key(b"\x07" * 32)


def paying(amount: int, *, client=CLIENT) -> dict[str, str]:
    receipt = Receipt(client=client.address, server=SERVER, epoch=EPOCH, amount=amount)
    signature = client.unsafe_sign_hash(DOMAIN.digest(receipt)).signature
    return {RECEIPT_HEADER: receipt.to_header(), RECEIPT_SIGNATURE_HEADER: "0x" + bytes(signature).hex()}


@pytest.fixture
def wall(tmp_path):
    book = ReceiptBook(tmp_path / "receipts.sqlite")
    return Paywall(price=PRICE, me=SERVER, domain=DOMAIN, epoch=lambda: EPOCH, book=book)


def check(wall: Paywall, amount: int, **kw):
    return wall.check(tokens=1, layers=LAYERS, headers=paying(amount, **kw))


def refused(wall: Paywall, amount: int, **kw) -> str:
    with pytest.raises(SessionError) as caught:
        check(wall, amount, **kw)
    assert caught.value.status == 402
    return str(caught.value)


def test_steps_in_flight_count_so_that_one_receipt_pays_for_one_step(wall):
    first = check(wall, COST)
    assert "with 1 of its steps running" in refused(wall, COST)  # the same amount again, while the first runs
    second = check(wall, 2 * COST)  # cumulative on top of the one running: paid
    wall.accept(first)
    wall.accept(second)
    assert wall.book.owed(EPOCH, CLIENT.address) == 2 * COST
    refused(wall, 2 * COST)  # nothing in flight now: the booked receipt counts
    check(wall, 3 * COST)


def test_a_step_not_served_no_longer_counts(wall):
    first = check(wall, COST)
    wall.release([first])  # refused or failed after its check: the client's next receipt pays for it again
    wall.accept(check(wall, COST))
    assert wall.book.owed(EPOCH, CLIENT.address) == COST
    served = check(wall, 2 * COST)
    wall.accept(served)
    wall.release([served])  # too late: it was served and booked; nothing changes
    assert wall.book.owed(EPOCH, CLIENT.address) == 2 * COST
    refused(wall, 2 * COST)


def test_receipts_booked_out_of_order_keep_the_largest(wall):
    low, high = check(wall, COST), check(wall, 2 * COST)
    wall.accept(high)
    wall.accept(low)  # the lower amount is covered by the higher one: never booked over it
    assert wall.book.owed(EPOCH, CLIENT.address) == 2 * COST


def test_clients_are_counted_apart(wall):
    other = Account.from_key(b"\x08" * 32)
    check(wall, COST)
    check(wall, COST, client=other)  # another client's step in flight is no concern of this one's receipts
    refused(wall, COST)
