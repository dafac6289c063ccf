"""Openings: only a verifier's fresh, signed request opens a committed task, and what it opens checks out.

The server's ``POST /openings`` handler runs in-process over a real task store, asking the real chain who holds
the verifier role; the verifier's checks run on what it answers, untouched and tampered with.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time

import pytest
import requests
import torch
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from eth_account import Account
from eth_account.messages import encode_defunct

from efedllm import merkle
from efedllm.chain.connection import Signer, message_signer
from efedllm.chain.protocol import Protocol
from efedllm.client.payments import Payer
from efedllm.client.routing import Peer
from efedllm.openings import OpeningRequest, decode_opening, sign_request
from efedllm.receipts import Receipt, SignedReceipt, typed_signer
from efedllm.server import openings
from efedllm.server.app import errors_as_json
from efedllm.server.payments import Payment, Paywall, ReceiptBook
from efedllm.server.records import TaskStore
from efedllm.verifier.checks import Verdict, check_opening
from efedllm.verifier.remote import Target, fetch_opening
from efedllm.verifier.scoring import Tally

SERVER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"  # dev account 1
EPOCH, HIDDEN = 3, 8
CLIENT, PRICE = 7, 1_000


def layers(x: torch.Tensor) -> torch.Tensor:
    """What the fake "layers" compute (position-wise, so a prefix recomputation gives the same outputs)."""
    return torch.tanh(x) * 2 + 1


def receipt_signer(w3, account: int):
    return typed_signer(w3, Signer(w3.eth.accounts[account]))


def committed(store: TaskStore, steps, *, payments=None) -> TaskStore:
    """``store`` after serving ``steps`` ((session, tokens), each paid by ``payments[i]`` or unpaid) and committing."""
    torch.manual_seed(0)
    past = {}
    for i, (session, n) in enumerate(steps):
        x = torch.randn(1, n, HIDDEN)
        payment = (payments or {}).get(i)
        start = past.setdefault(session, 0)
        store.record(
            epoch=EPOCH, session=session, start=4, end=9, past=start, inputs=x, outputs=layers(x), payment=payment
        )
        past[session] += n
    records, _ = store.tree(EPOCH)
    store.save_commitment(EPOCH, merkle.root([r.leaf(SERVER) for r in records]), len(records), None)
    return store


@pytest.fixture
def store(tmp_path, w3, deployment):
    """Five steps of two sessions; s2's step (task 2) paid by client 7, checked by the server's Paywall."""
    domain = Protocol(w3, deployment).receipt_domain
    payer = Payer(client=w3.eth.accounts[CLIENT], sign=receipt_signer(w3, CLIENT), domain=domain, epoch=lambda: EPOCH)
    paywall = Paywall(
        price=PRICE, me=SERVER, domain=domain, epoch=lambda: EPOCH, book=ReceiptBook(tmp_path / "receipts.sqlite")
    )
    peer = Peer(endpoint="http://server", first=4, end=9, address=SERVER, price=PRICE)
    payment = paywall.check(tokens=3, layers=5, headers=payer.pay(peer=peer, tokens=3, layers=5).headers)
    steps = (("s1", 5), ("s1", 1), ("s2", 3), ("s1", 1), ("s1", 1))
    return committed(TaskStore(tmp_path / "tasks.sqlite", server=SERVER), steps, payments={2: payment})


def serve(w3, deployment, store, requests_: list[dict]) -> list[tuple[int, bytes]]:
    protocol = Protocol(w3, deployment)

    async def go():
        app = web.Application(middlewares=[errors_as_json])
        app.router.add_post(
            "/openings", openings.handler(store=store, roles=openings.VerifierRoles(protocol), chain_id=w3.eth.chain_id)
        )
        async with TestClient(TestServer(app)) as client:
            out = []
            for body in requests_:
                response = await client.post("/openings", data=json.dumps(body) if not isinstance(body, str) else body)
                out.append((response.status, await response.read()))
            return out

    return asyncio.run(go())


def request(w3, account: int, **changes) -> dict:
    sign = message_signer(w3, Signer(w3.eth.accounts[account]))
    if "expires" in changes:  # re-sign with the changed expiry
        unsigned = sign_request(sign=sign, chain_id=w3.eth.chain_id, server=SERVER, epoch=EPOCH, index=0)
        req = dataclasses.replace(unsigned, **changes)
        req = dataclasses.replace(req, signature="0x" + sign(req.message()).hex())
        return req.to_json()
    req = sign_request(
        sign=sign,
        chain_id=changes.pop("chain_id", w3.eth.chain_id),
        server=changes.pop("server", SERVER),
        epoch=changes.pop("epoch", EPOCH),
        index=changes.pop("index", 0),
    )
    return req.to_json()


def test_only_fresh_signed_requests_of_verifiers_open_tasks(w3, deployment, store):
    verifier = 9  # granted the role by the deployment fixture
    good = request(w3, verifier, index=1)
    outsider_key = Account.create()
    outsider = sign_request(
        sign=lambda text: bytes(outsider_key.sign_message(encode_defunct(text=text)).signature),
        chain_id=w3.eth.chain_id,
        server=SERVER,
        epoch=EPOCH,
        index=1,
    ).to_json()
    tampered = {**request(w3, verifier, index=1), "index": 2}  # signature no longer matches: another signer
    cases = [
        good,
        good,  # the second is a replay
        request(w3, 1, index=1),  # a server, not a verifier
        outsider,
        tampered,
        request(w3, verifier, expires=int(time.time()) - 1),
        request(w3, verifier, expires=int(time.time()) + 3600),
        request(w3, verifier, server="0x" + "11" * 20),
        request(w3, verifier, chain_id=1),
        request(w3, verifier, index=99),
        "not json",
        {"epoch": "3"},
    ]
    statuses = [status for status, _ in serve(w3, deployment, store, cases)]
    assert statuses == [200, 409, 403, 403, 403, 403, 403, 400, 400, 404, 400, 400]


def checker(w3, deployment, store, index: int):
    """The verifier's check of ``store``'s leaf ``index`` against its commitment (keyword overrides)."""
    commitment = store.commitment(EPOCH)

    def check(o, **kw):
        args = dict(
            server=SERVER,
            epoch=EPOCH,
            index=index,
            root=commitment[0],
            work_units=commitment[1],
            num_layers=30,
            recompute=lambda x, start, end: layers(x),
            tolerance=lambda layers: 1e-3,
            receipts=Protocol(w3, deployment).receipt_domain,
        )
        return check_opening(o, **{**args, **kw})

    return check


def test_an_opening_checks_out_and_every_tampering_is_caught(w3, deployment, store):
    ((status, body),) = serve(w3, deployment, store, [request(w3, 9, index=3)])  # s1's third step
    assert status == 200
    opening = decode_opening(body)
    assert opening.steps == [5, 1, 1] and opening.record["past"] == 6
    commitment = store.commitment(EPOCH)
    check = checker(w3, deployment, store, 3)

    assert check(opening) == Verdict.ok(paid=False)
    wrong = dataclasses.replace(opening, output=opening.output + 1e-2)
    assert "hashes" in check(wrong).reason and check(wrong).fraud
    prefix = opening.inputs.clone()
    prefix[0, 0, 0] += 1
    assert "prefix" in check(dataclasses.replace(opening, inputs=prefix)).reason
    assert "Merkle" in check(opening, work_units=commitment[1] + 1).reason  # inflated work units
    assert "asked for task 2" in check(opening, index=2).reason
    lying = check(opening, recompute=lambda x, start, end: layers(x) * 1.01)
    assert lying.fraud and "deviates" in lying.reason
    assert check(dataclasses.replace(opening, steps=[5, 2])).fraud
    assert OpeningRequest.from_json(request(w3, 9)).signer() == w3.eth.accounts[9]


def test_a_used_request_stays_used_across_a_restart(w3, deployment, store, tmp_path):
    """Nonces live in the server's SQLite: a request replayed after the server restarts is still refused."""
    good = request(w3, 9, index=1)
    assert [s for s, _ in serve(w3, deployment, store, [good])] == [200]
    store.close()
    restarted = TaskStore(tmp_path / "tasks.sqlite", server=SERVER)  # the same file, a new process's view
    fresh = request(w3, 9, index=1)
    assert [s for s, _ in serve(w3, deployment, restarted, [good, fresh])] == [409, 200]


def test_numbers_past_what_the_store_holds_are_refused(w3, deployment, store):
    """epoch/index beyond SQLite's 64-bit INTEGER were a 500 (found by tests/fuzz): now a 400 before any lookup."""
    cases = [request(w3, 9, epoch=2**63), request(w3, 9, index=2**64), request(w3, 9, index=2**63 - 1)]
    assert [s for s, _ in serve(w3, deployment, store, cases)] == [400, 400, 404]


def test_a_revoked_verifier_is_refused_once_its_role_is_gone(w3, deployment, store, protocol_for):
    """The role is read from the chain (cached for VerifierRoles.ttl): revoking it ends the verifier's access."""
    governor = protocol_for(0)
    role = governor.scoring.functions.VERIFIER_ROLE().call()
    verifier = w3.eth.accounts[9]
    governor.tx.send(governor.scoring.functions.revokeRole(role, verifier), label="revoke")
    try:
        assert [s for s, _ in serve(w3, deployment, store, [request(w3, 9, index=1)])] == [403]
    finally:
        governor.tx.send(governor.scoring.functions.grantRole(role, verifier), label="grant again")
    assert [s for s, _ in serve(w3, deployment, store, [request(w3, 9, index=1)])] == [200]


def test_a_verifier_retry_after_a_lost_answer_is_not_a_replay(w3, deployment, store):
    """The first answer is lost after the server used the nonce (a proxy's 502): the verifier's retry must carry a
    fresh nonce, else the server's 409 would count as a refused opening, that is as fraud."""
    protocol = Protocol(w3, deployment)
    handler = openings.handler(store=store, roles=openings.VerifierRoles(protocol), chain_id=w3.eth.chain_id)
    answered = []

    async def lossy(request):
        response = await handler(request)
        answered.append(response.status)
        return response if len(answered) > 1 else web.json_response({"error": "bad gateway"}, status=502)

    async def go():
        app = web.Application(middlewares=[errors_as_json])
        app.router.add_post("/openings", lossy)
        async with TestServer(app, host="127.0.0.1") as server:
            target = Target(address=SERVER, endpoint=str(server.make_url("/")), first_layer=4, num_layers=5)
            sign = message_signer(w3, Signer(w3.eth.accounts[9]))
            return await asyncio.get_running_loop().run_in_executor(
                None,
                lambda: fetch_opening(
                    requests.Session(), target, sign=sign, chain_id=w3.eth.chain_id, epoch=EPOCH, index=3
                ),
            )

    opening = asyncio.run(go())
    assert answered == [200, 200]
    assert not isinstance(opening, Verdict), opening
    assert opening.record["index"] == 3


def test_a_paid_opening_shows_the_clients_receipt_and_a_hidden_or_swapped_one_is_caught(w3, deployment, store):
    """Task 2 was paid: its opening shows the client's signed receipt, whose digest is the leaf's, and the verifier
    counts it as client-paid; an opening that hides the receipt or shows another one (even one the client signed)
    is fraud."""
    (_, paid_body), (_, free_body) = serve(w3, deployment, store, [request(w3, 9, index=2), request(w3, 9, index=3)])
    paid, free = decode_opening(paid_body), decode_opening(free_body)
    check = checker(w3, deployment, store, 2)
    assert paid.receipt.receipt.client == w3.eth.accounts[CLIENT] and paid.record["receipt"] != "0x" + "00" * 32
    assert check(paid) == Verdict.ok(paid=True)
    tally = Tally(SERVER)
    for verdict in (check(paid), checker(w3, deployment, store, 3)(free), Verdict.ok()):  # the last: a canary
        tally.add(verdict)
    assert (tally.paid, tally.unpaid, tally.passed) == (1, 1, 3)

    hidden = check(dataclasses.replace(paid, receipt=None))
    assert hidden.fraud and "does not show" in hidden.reason
    more = Receipt(**{**paid.receipt.receipt.__dict__, "amount": paid.receipt.receipt.amount + 1})
    swapped = SignedReceipt(
        receipt=more, signature=receipt_signer(w3, CLIENT)(Protocol(w3, deployment).receipt_domain.data(more))
    )
    caught = check(dataclasses.replace(paid, receipt=swapped))
    assert caught.fraud and "not the one the leaf commits" in caught.reason
    shown = checker(w3, deployment, store, 3)(dataclasses.replace(free, receipt=paid.receipt))
    assert shown.fraud and "unpaid leaf" in shown.reason


def test_a_server_that_makes_up_client_paid_work_is_caught(w3, deployment, tmp_path):
    """The attack: a server inflates the work clients paid it for by committing leaves with receipts no client gave
    for them: one it signed itself in a client's name, one signed by nobody, a client's genuine receipt for another
    server, and one for an epoch long past. It opens them honestly, through its real openings handler."""
    domain = Protocol(w3, deployment).receipt_domain
    client, other_server = w3.eth.accounts[CLIENT], w3.eth.accounts[2]

    def receipt(*, server=SERVER, epoch=EPOCH, signer=CLIENT, signature=None) -> Payment:
        r = Receipt(client=client, server=server, epoch=epoch, amount=10**15)
        sig = signature if signature is not None else receipt_signer(w3, signer)(domain.data(r))
        return Payment(signed=SignedReceipt(receipt=r, signature=sig), digest=domain.digest(r))

    forged = {
        0: (receipt(signer=1), "not by its client"),  # the server (account 1) signed in the client's name
        1: (receipt(signature=b"\0" * 65), "no valid signature"),
        2: (receipt(server=other_server), "not this server"),
        3: (receipt(epoch=EPOCH - 2), "not this server for epoch"),
        4: (receipt(epoch=EPOCH + 1), None),  # a neighbour epoch: a client may read the clock before the server
    }
    store = committed(
        TaskStore(tmp_path / "forger.sqlite", server=SERVER),
        [(f"s{i}", 2) for i in forged],
        payments={i: payment for i, (payment, _) in forged.items()},
    )
    answers = serve(w3, deployment, store, [request(w3, 9, index=i) for i in forged])
    for (i, (_, why)), (status, body) in zip(forged.items(), answers, strict=True):
        assert status == 200
        verdict = checker(w3, deployment, store, i)(decode_opening(body))
        if why is None:
            assert verdict == Verdict.ok(paid=True)
        else:
            assert verdict.fraud and why in verdict.reason, (i, verdict)
