"""Clients pay for the steps they ask for (issue 14), end to end on Anvil with real server processes.

Two servers announce prices on chain (``--price``: wei per token-layer). A client deposits into Payments, finds the
servers and their prices on chain, and generates: each step carries its signed cumulative receipt, which the
server checks before computing. Once the epoch's work period is over each server redeems the client's latest
receipt by itself; the fees equal, to the wei, price x tokens x layers of the steps served, and leave the client's
deposit. A client that does not pay is refused (402) and cannot generate.

Each paid step's signed answer and committed task leaf name the digest of the receipt that paid for it: verifiers
who open the leaves get the client's signed receipts with them, count the work as client-paid, and catch an
opening whose receipt is not the one committed. A client refuses an answer that names another receipt than the
one it sent.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import torch
from eth_account import Account
from eth_utils import keccak
from test_cli import run

from efedllm import wire
from efedllm.chain.anvil import free_port
from efedllm.chain.connection import Signer, message_signer
from efedllm.chain.params import ETHER
from efedllm.chain.protocol import Protocol
from efedllm.client import DistributedModel
from efedllm.client.answers import AnswerChecker
from efedllm.errors import EfedError
from efedllm.localnet import ServerProcess, Walker, start_all, stop_all, wait_for
from efedllm.model.source import DEFAULT_MODEL
from efedllm.receipts import (
    ANSWER_HEADER,
    RECEIPT_HEADER,
    RECEIPT_SIGNATURE_HEADER,
    SIGNATURE_HEADER,
    UNPAID,
    Answer,
    AnswerDomain,
    Receipt,
    ReceiptDomain,
    SignedReceipt,
    digest,
)
from efedllm.rpc import routes
from efedllm.rpc.client import ServerFailure
from efedllm.tasks import TaskRecord, tensor_hash
from efedllm.verifier.config import FLOAT32_TOLERANCE
from efedllm.verifier.reference import ReferenceModel
from efedllm.verifier.remote import Target, fetch_opening
from efedllm.verifier.scoring import Tally, check_openings

CLIENT, VERIFIER = 7, 9
PRICES = {"0:12": 1_000, "12:30": 3_000}


@pytest.fixture(scope="module")
def network(network_files):
    root, chain = network_files.root, network_files.args
    servers = [
        ServerProcess(layers, free_port(), [*chain(1 + i), "--price", str(price)], log_path=root / f"s{i}.log")
        for i, (layers, price) in enumerate(PRICES.items())
    ]
    start_all(servers)
    yield servers
    stop_all(servers)


def test_a_paying_client_is_served_and_the_servers_redeem_its_receipts(anvil, w3, deployment, network, network_files):
    protocol = Protocol(w3, deployment)
    client = Protocol(w3, deployment, Signer(w3.eth.accounts[CLIENT]))
    walker = Walker(protocol, network)
    servers = {w3.eth.accounts[1]: (12, 1_000), w3.eth.accounts[2]: (18, 3_000)}
    for address, (_, price) in servers.items():
        assert client.payments.functions.priceOf(address).call() == price  # announced at start
    client.tx.send(client.payments.functions.deposit(), value=ETHER, label="deposit")

    epoch = walker.fresh_epoch()
    with pytest.raises(EfedError):  # no account to sign receipts with: every priced server refuses it (402)
        DistributedModel.from_pretrained(protocol=protocol).generate(prompt="Hi", max_new_tokens=1)

    model = DistributedModel.from_pretrained(protocol=client)
    prompt = "Tell me about the sea."
    model.generate(prompt=prompt, max_new_tokens=4, eos_token_id=[])
    tokens = model.encode(prompt=prompt).shape[1] + 3  # the prefill, then three decode steps of one token
    owed = {address: tokens * layers * price for address, (layers, price) in servers.items()}
    assert {s: a for (s, e), a in model.payer.owed.items() if e == epoch} == owed

    walker.commitments(epoch, servers)  # the work period is over: the servers redeem
    redeemed = lambda s: client.payments.functions.redeemed(epoch, client.signer.address, s).call()  # noqa: E731
    wait_for(
        lambda: all(redeemed(s) for s in servers), "the servers to redeem the client's receipts", processes=network
    )
    for address, amount in owed.items():
        assert redeemed(address) == amount
        assert client.payments.functions.feesOf(address).call() == amount
    account = client.payments.functions.accountOf(client.signer.address).call()
    assert account[0] == ETHER - sum(owed.values())  # available: what it deposited less what it was served
    steps = [model.encode(prompt=prompt).shape[1], 1, 1, 1]
    server_withdraws_its_fees(anvil, w3, network_files, server=1, fees=owed[w3.eth.accounts[1]])
    leaves_carry_the_receipts(w3, deployment, network, model=model, epoch=epoch, servers=servers, steps=steps)


def server_withdraws_its_fees(anvil, w3, network_files, *, server: int, fees: int) -> None:
    """``efedllm server status`` shows the price and the fees; ``efedllm server claim`` withdraws them, to the wei."""
    env = {"EFEDLLM_DEPLOYMENTS": str(network_files.deployment_path.parent)}
    account = ("--rpc-url", anvil.url, "--node-account", str(server))
    me = w3.eth.accounts[server]
    status = run("server", "status", *account, env=env)
    assert status.returncode == 0, status.stderr
    assert "price 1,000 wei per token-layer" in status.stdout and "client fees to withdraw" in status.stdout
    before = w3.eth.get_balance(me)
    claimed = run("server", "claim", *account, env=env)
    assert claimed.returncode == 0, claimed.stderr
    assert f"withdrew {fees / ETHER:.6f} ETH of client fees to {me}" in claimed.stdout
    receipt = w3.eth.get_transaction_receipt(w3.eth.get_block("latest")["transactions"][-1])
    gas = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert w3.eth.get_balance(me) - before == fees - gas
    again = run("server", "claim", *account, env=env)
    assert again.returncode == 0 and f"nothing to claim for {me}" in again.stdout


def leaves_carry_the_receipts(w3, deployment, network, *, model, epoch: int, servers: dict, steps: list[int]) -> None:
    """Every answer the client kept names the digest of its cumulative receipt for that step; every committed leaf
    does too, and the verifier's check of the openings (the real one, on its own copy of the model) accepts them
    as client-paid, and catches an opening whose receipt is swapped for another one the client signed."""
    domain = Protocol(w3, deployment).receipt_domain
    me = model.payer.client
    reference = ReferenceModel(DEFAULT_MODEL, progress=lambda _: None)
    sign = message_signer(w3, Signer(w3.eth.accounts[VERIFIER]))
    for process, (address, (layers, price)) in zip(network, servers.items(), strict=True):
        kept = [a.answer for a in model.answers.kept if a.server == address]
        amounts = itertools.accumulate(price * layers * tokens for tokens in steps)
        assert [a.receipt for a in kept] == [
            domain.digest(Receipt(client=me, server=address, epoch=epoch, amount=amount)) for amount in amounts
        ]
        work = Protocol(w3, deployment).commitment_of(epoch, address)
        assert work.work_units == len(kept)
        first = process.info().first_layer
        target = Target(address=address, endpoint=process.url, first_layer=first, num_layers=layers)
        opened = {
            a.index: fetch_opening(
                requests.Session(), target, sign=sign, chain_id=w3.eth.chain_id, epoch=epoch, index=a.index
            )
            for a in kept
        }
        for a in kept:
            assert opened[a.index].record["receipt"] == "0x" + a.receipt.hex()
            assert domain.digest(opened[a.index].receipt.receipt) == a.receipt
        tally = Tally(address)
        check = dict(server=address, epoch=epoch, root=work.root, work_units=work.work_units, model=reference)
        for verdict in check_openings(opened, **check, tolerance=FLOAT32_TOLERANCE, receipts=domain):
            tally.add(verdict)
        assert (tally.passed, tally.paid, tally.unpaid, tally.frauds) == (len(kept), len(kept), 0, [])

        index, opening = next(iter(opened.items()))
        other = Receipt(**{**opening.receipt.receipt.__dict__, "amount": opening.receipt.receipt.amount + 1})
        signed = SignedReceipt(receipt=other, signature=model.payer.sign(domain.data(other)))  # the client's own
        swapped = {index: dataclasses.replace(opening, receipt=signed)}
        (verdict,) = check_openings(swapped, **check, tolerance=FLOAT32_TOLERANCE, receipts=domain)
        assert verdict.fraud and "not the one the leaf commits" in verdict.reason


def test_a_client_pays_from_the_command_line(anvil, w3, deployment, network, network_files):
    """``efedllm client deposit`` then ``efedllm generate --pay``: the servers are paid from that deposit; without
    --pay the priced servers refuse the client, in one line."""
    env = {"EFEDLLM_DEPLOYMENTS": str(network_files.deployment_path.parent)}
    account = ("--rpc-url", anvil.url, "--node-account", "8")
    deposited = run("client", "deposit", "--amount", "0.5", *account, env=env)
    assert deposited.returncode == 0, deposited.stderr
    assert "0.500000 ETH to pay servers with" in deposited.stdout
    refused = run("generate", "Hi", "--max-new-tokens", "1", "--rpc-url", anvil.url, env=env)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    paid = run("generate", "Hi", "--max-new-tokens", "2", "--pay", *account, env=env)
    assert paid.returncode == 0, paid.stderr
    status = run("client", "status", *account, env=env)
    available = Protocol(w3, deployment).payments.functions.accountOf(w3.eth.accounts[8]).call()[0]
    assert available == ETHER // 2  # receipts are redeemed after the epoch: nothing taken yet
    assert "0.500000 ETH to pay servers with" in status.stdout


def test_a_client_refuses_an_answer_that_names_another_receipt():
    """The client checks that the signed answer names the receipt it sent with the step (zero when it sent none):
    a server that signs the step as unpaid, as paid by another receipt, or as paid when it was not (its leaf would
    say so to verifiers) gives a bad answer, and the session fails over as for any server failure."""
    server, domain = Account.create(), AnswerDomain(chain_id=31337, contract="0x" + "33" * 20)
    receipts = ReceiptDomain(chain_id=31337, contract="0x" + "22" * 20)
    sent = receipts.digest(Receipt(client="0x" + "44" * 20, server=server.address, epoch=2, amount=12_000))
    output = torch.ones(1, 3, 8)
    checker = AnswerChecker(domain)

    def answer(*, names: bytes, sent_with: bytes):
        signed = Answer.of(TaskRecord(2, 0, "sess", 0, 0, 12, 0, UNPAID, keccak(b"in"), tensor_hash(output), names))
        signature = server.unsafe_sign_hash(digest(domain.data(signed))).signature
        headers = {ANSWER_HEADER: signed.to_header(), SIGNATURE_HEADER: "0x" + bytes(signature).hex()}
        return checker.check(
            endpoint="http://server",
            address=server.address,
            session="sess",
            start=0,
            end=12,
            past=0,
            output=output,
            receipt=sent_with,
            headers=headers,
        )

    assert answer(names=sent, sent_with=sent).answer.receipt == sent
    assert answer(names=UNPAID, sent_with=UNPAID).answer.receipt == UNPAID
    for names, sent_with in ((UNPAID, sent), (keccak(b"another receipt"), sent), (sent, UNPAID)):
        with pytest.raises(ServerFailure) as refused:
            answer(names=names, sent_with=sent_with)
        assert refused.value.cause == "bad-answer" and "receipt" in str(refused.value)
    assert len(checker.kept) == 2


def receipt_headers(domain, client: Account, *, server: str, epoch: int, amount: int) -> dict[str, str]:
    receipt = Receipt(client=client.address, server=server, epoch=epoch, amount=amount)
    signature = client.unsafe_sign_hash(domain.digest(receipt)).signature
    return {RECEIPT_HEADER: receipt.to_header(), RECEIPT_SIGNATURE_HEADER: "0x" + bytes(signature).hex()}


def test_several_steps_at_once_cannot_be_served_for_the_price_of_one(w3, deployment, network):
    """The attack, as a client would run it over HTTP against the priced server of layers 0:12: several decode steps
    sent at once, each with a receipt for one step on top of the last receipt the server booked. Checked before any
    of them was booked, each used to pass, and the client had all of them served for the price of one. The server
    counts the steps it is running: in one ``POST /steps`` the request is refused (402) before any step runs; sent
    as concurrent requests, one is served and the others are refused. Receipts that add up in the request's order
    (what an honest client sends, client/steps.py) are served."""
    server, address = network[0], w3.eth.accounts[1]
    protocol = Protocol(w3, deployment)
    domain, epoch, attacker = protocol.receipt_domain, protocol.current_epoch(), Account.create()
    cost = PRICES["0:12"] * 12  # one token through the server's 12 layers
    pay = lambda amount: receipt_headers(domain, attacker, server=address, epoch=epoch, amount=amount)  # noqa: E731
    binary = {"Content-Type": wire.CONTENT_TYPE}
    sessions = []
    for i in range(4):
        opened = requests.post(server.url + routes.SESSIONS, json={"start": 0, "end": 12}, timeout=30)
        assert opened.status_code == 201, opened.text
        sessions.append(opened.json()["session"])
        step = requests.post(
            server.url + routes.forward(sessions[-1]),
            data=wire.encode(torch.randn(1, 1, 576)),
            headers={**binary, **pay((i + 1) * cost)},
            timeout=60,
        )
        assert step.status_code == 200, step.text
    booked = 4 * cost

    def steps(amounts: list[int]) -> requests.Response:
        body = wire.encode_steps(torch.randn(4, 1, 576), headers=[pay(a) for a in amounts], sessions=sessions)
        return requests.post(server.url + routes.STEPS, data=body, headers=binary, timeout=60)

    refused = steps([booked + cost] * 4)
    assert refused.status_code == 402, refused.text
    assert "running or sent before it" in refused.json()["error"]
    together = steps([booked + (i + 1) * cost for i in range(4)])  # cumulative in the request's order
    assert together.status_code == 200, together.text
    booked += 4 * cost

    start = threading.Barrier(4)

    def alone(session: str) -> int:
        body = wire.encode(torch.randn(1, 1, 576))
        start.wait()
        answer = requests.post(
            server.url + routes.forward(session), data=body, headers={**binary, **pay(booked + cost)}, timeout=60
        )
        return answer.status_code

    with ThreadPoolExecutor(4) as pool:
        statuses = sorted(pool.map(alone, sessions))
    assert statuses == [200, 402, 402, 402], statuses


def test_concurrent_paid_generations_travel_grouped_and_pay_every_step(anvil, w3, deployment, network):
    """One paying client process, four generations at once (as ``efedllm api --pay`` runs them): their decode steps
    travel grouped (``POST /steps``), each with its own receipt, cumulative in the request's order; every step is
    paid, and each server redeems, to the wei, price x tokens x layers of all four generations."""
    protocol = Protocol(w3, deployment)
    client = Protocol(w3, deployment, Signer(w3.eth.accounts[CLIENT]))
    client.tx.send(client.payments.functions.deposit(), value=ETHER, label="deposit")
    walker = Walker(protocol, network)
    servers = {w3.eth.accounts[1]: (12, 1_000), w3.eth.accounts[2]: (18, 3_000)}
    epoch = walker.fresh_epoch()
    model = DistributedModel.from_pretrained(protocol=client)
    prompts = ["Tell me about the sea.", "Name a colour.", "What is two plus two?", "Say hello in French."]
    groups, new = model.lockstep.groups, 5
    with ThreadPoolExecutor(len(prompts)) as pool:
        list(pool.map(lambda p: model.generate(prompt=p, max_new_tokens=new, eos_token_id=[]), prompts))
    assert model.lockstep.groups > groups  # decode steps went to the servers grouped
    tokens = sum(model.encode(prompt=p).shape[1] + new - 1 for p in prompts)
    owed = {address: tokens * layers * price for address, (layers, price) in servers.items()}
    assert {s: a for (s, e), a in model.payer.owed.items() if e == epoch} == owed
    kept = [a.answer for a in model.answers.kept]
    assert len({a.receipt for a in kept}) == len(kept)  # every answer names its own receipt

    walker.commitments(epoch, servers)
    redeemed = lambda s: client.payments.functions.redeemed(epoch, client.signer.address, s).call()  # noqa: E731
    wait_for(lambda: all(redeemed(s) for s in servers), "the servers to redeem the receipts", processes=network)
    assert {s: redeemed(s) for s in servers} == owed
