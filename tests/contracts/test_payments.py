"""Payments (issue 14): client deposits, cumulative client-signed receipts redeemed once per epoch by the server, a
withdrawal delay that keeps every signed receipt redeemable, prices announced on chain. Every wei is accounted for.
Receipts are signed in Python as a client signs them (efedllm/receipts.py)."""

import pytest
from brownie import web3
from conftest import ETHER, Phase, balance, reverts

from efedllm.chain.connection import Signer
from efedllm.receipts import Receipt, ReceiptDomain, typed_signer


def signed(payments, client, server, epoch: int, amount: int, signer=None) -> tuple[tuple, bytes]:
    receipt = Receipt(client=str(client), server=str(server), epoch=epoch, amount=amount)
    data = ReceiptDomain(chain_id=web3.eth.chain_id, contract=str(payments)).data(receipt)
    return receipt.as_tuple(), typed_signer(web3, Signer(str(signer or client), None))(data)


@pytest.fixture(autouse=True)
def balance_invariant(payments):
    yield
    assert balance(payments) == payments.totalAvailable() + payments.totalPending() + payments.totalFees()


@pytest.fixture
def server(servers, protocol):
    protocol.register(servers[0])
    return servers[0]


def test_a_server_redeems_the_latest_cumulative_receipt_once(payments, server, client, clock):
    payments.deposit({"from": client, "value": ETHER})
    receipts = [signed(payments, client, server, 0, amount) for amount in (10, 25, 40)]  # one per served step
    with reverts("EpochNotOver", 0):
        payments.redeem(*receipts[-1], {"from": server})
    clock.to_phase(0, Phase.COMMIT_WORK)
    tx = payments.redeem(*receipts[-1], {"from": server})
    assert tx.return_value == 40
    assert tx.events["Redeemed"] == {"server": server, "client": client, "epoch": 0, "amount": 40, "paid": 40}
    with reverts("AlreadyRedeemed", 0, client, server):  # an earlier receipt of the same epoch: nothing more
        payments.redeem(*receipts[0], {"from": server})
    assert payments.accountOf(client)["available"] == ETHER - 40
    before = balance(server)
    payments.withdrawFees({"from": server})
    assert balance(server) == before + 40
    with reverts("NothingToWithdraw"):
        payments.withdrawFees({"from": server})


def test_forged_and_misdirected_receipts_are_refused(payments, server, servers, client, stranger, clock):
    payments.deposit({"from": client, "value": ETHER})
    clock.to_phase(0, Phase.COMMIT_WORK)
    receipt, signature = signed(payments, client, server, 0, 100, signer=stranger)  # not the client's signature
    with reverts("BadSignature", client, stranger):
        payments.redeem(receipt, signature, {"from": server})
    receipt, signature = signed(payments, client, server, 0, 100)
    with reverts("NotTheServer", server, servers[1]):  # another server cannot redeem it
        payments.redeem(receipt, signature, {"from": servers[1]})
    inflated = (receipt[0], receipt[1], receipt[2], 10**18)
    with reverts("BadSignature"):
        payments.redeem(inflated, signature, {"from": server})


def test_a_pending_withdrawal_still_pays_receipts(payments, server, client, params, clock):
    """A client signs receipts and then tries to leave with its deposit before the server redeems."""
    payments.deposit({"from": client, "value": 100})
    receipt, signature = signed(payments, client, server, 0, 70)
    tx = payments.requestWithdrawal(100, {"from": client})
    unlock = tx.events["WithdrawalRequested"]["unlockTime"]
    assert unlock == clock.now() + params.client_withdrawal_delay  # 0 in the params: the unbonding period
    assert unlock > clock.start(0, Phase.SETTLED)  # the delay outlasts the epoch's windows
    clock.to_phase(0, Phase.COMMIT_WORK)
    assert payments.redeem(receipt, signature, {"from": server}).return_value == 70
    clock.goto(unlock - 1)
    with reverts("StillLocked", unlock):
        payments.withdraw({"from": client})
    clock.goto(unlock)
    before = balance(client)
    assert payments.withdraw({"from": client}).return_value == 30
    assert balance(client) == before + 30


def test_an_underfunded_receipt_pays_what_is_there(payments, server, client, clock):
    payments.deposit({"from": client, "value": 50})
    receipt, signature = signed(payments, client, server, 0, 80)
    clock.to_phase(0, Phase.COMMIT_WORK)
    tx = payments.redeem(receipt, signature, {"from": server})
    assert (tx.events["Redeemed"]["amount"], tx.events["Redeemed"]["paid"]) == (80, 50)
    clock.to_phase(1, Phase.COMMIT_WORK)
    with reverts("ZeroAmount"):
        payments.redeem(*signed(payments, client, server, 1, 5), {"from": server})  # epoch 1: nothing left


def test_prices_are_announced_by_servers(payments, server, stranger):
    with reverts("NotAServer", stranger):
        payments.announcePrice(5, {"from": stranger})
    assert payments.announcePrice(5, {"from": server}).events["PriceAnnounced"] == {
        "server": server,
        "pricePerTokenLayer": 5,
    }
    assert payments.priceOf(server) == 5


def test_the_withdrawal_delay_must_outlast_an_epoch(payments, gov):
    from brownie import Payments

    schedule = payments.schedule()
    with reverts("ParameterOutOfBounds"):
        Payments.deploy(gov, schedule, payments.registry(), 180, {"from": gov})  # epoch 100 + windows 80
    assert Payments.deploy(gov, schedule, payments.registry(), 181, {"from": gov}).WITHDRAWAL_DELAY() == 181
