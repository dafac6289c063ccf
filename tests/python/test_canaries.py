"""A verifier's canaries look like a paying client to the servers (issue 14), end to end on Anvil.

Two priced servers announce a recording relay's URL on chain (tests/support/recorder.py): every request a client or
the verifier sends them passes through it, as a server that profiles its callers would see it. A client pays for a
generation; then, in the epoch's CommitScores window, the verifier process sends each server its canary. The test
compares what the relays saw of the two, per server: the same requests in the same order, with the same header
names and values (but lengths and receipts) and the same session bodies; no canary request names the verifier;
the canaries paid with receipts of the canary account, and each server redeems that account's receipt from its
deposit in Payments once the epoch's work is over.
"""

from __future__ import annotations

import itertools
import logging

import pytest

from efedllm.chain.anvil import free_port
from efedllm.chain.connection import Signer
from efedllm.chain.params import ETHER, ONE
from efedllm.chain.protocol import Outcome, Protocol
from efedllm.client import DistributedModel
from efedllm.errors import EfedError
from efedllm.localnet import WALKED_PARAMS, ServerProcess, VerifierProcess, Walker, start_all, stop_all, wait_for
from efedllm.receipts import RECEIPT_HEADER, RECEIPT_SIGNATURE_HEADER, Receipt
from efedllm.rpc import routes
from efedllm.verifier.canaries import CanaryAccount, load_canary_signer
from efedllm.verifier.config import VerifierAccount, VerifyConfig
from efedllm.verifier.daemon import Verifier
from tests.support.recorder import Recorder, Request

PARAMS = WALKED_PARAMS
VERIFIER, CLIENT, CANARY, UNFUNDED = 9, 7, 6, 5
PRICES = {"0:12": 1_000, "12:30": 3_000}
VARYING = {"content-length", RECEIPT_HEADER.lower(), RECEIPT_SIGNATURE_HEADER.lower()}
"""Headers whose values differ from request to request (the receipts are compared apart)."""


def kind(request: Request) -> str:
    """The request's route, session ids left out."""
    path = request.path
    if path.startswith(routes.SESSIONS + "/"):
        path = routes.FORWARD if path.endswith("/forward") else routes.SESSION
    return f"{request.method} {path}"


def profile(request: Request) -> tuple:
    return kind(request), tuple(sorted((k.lower(), "" if k.lower() in VARYING else v) for k, v in request.headers))


def receipts(requests: list[Request]) -> list[Receipt]:
    return [Receipt.from_header(r.header(RECEIPT_HEADER)) for r in requests if kind(r) == f"POST {routes.FORWARD}"]


def test_the_canary_account_is_never_a_verifier(w3, deployment):
    verifier = Protocol(w3, deployment, Signer(w3.eth.accounts[VERIFIER]))
    default = load_canary_signer(verifier, VerifierAccount())
    assert default.address != verifier.signer.address and not verifier.is_verifier(default.address)
    with pytest.raises(EfedError, match="is this verifier's own"):
        load_canary_signer(verifier, VerifierAccount(canary_node_account=VERIFIER))


def test_an_unfunded_canary_account_is_said_once_and_pays_nothing(w3, deployment, caplog):
    verifier = Protocol(w3, deployment, Signer(w3.eth.accounts[VERIFIER]))
    account = CanaryAccount(verifier, Signer(w3.eth.accounts[UNFUNDED]))
    with caplog.at_level(logging.INFO, logger="efedllm.verifier"):
        assert account.payer(cost=1_000) is None and account.payer(cost=1_000) is None
    said = [r.getMessage() for r in caplog.records if "canary account" in r.getMessage()]
    assert len(said) == 1 and "has 0.000000 ETH in Payments" in said[0] and "skipped" in said[0], said
    funder = Protocol(w3, deployment, Signer(w3.eth.accounts[UNFUNDED]))
    funder.tx.send(funder.payments.functions.deposit(), value=1_000, label="deposit")
    assert account.payer(cost=1_000).client == w3.eth.accounts[UNFUNDED]
    assert account.payer(cost=1_001) is None  # short again


@pytest.fixture(scope="module")
def network(network_files):
    root, chain = network_files.root, network_files.args
    relays, servers = [], []
    for i, (layers, price) in enumerate(PRICES.items()):
        relay, port = Recorder(), free_port()
        relay.upstream = ("127.0.0.1", port)
        args = [*chain(1 + i), "--price", str(price), "--public-url", relay.url]
        servers.append(ServerProcess(layers, port, args, log_path=root / f"s{i}.log"))
        relays.append(relay)
    verifier = VerifierProcess(
        [
            *chain(VERIFIER),
            "--canary-node-account",
            str(CANARY),
            "--grouped-canaries",
            "0",
        ],  # one at a time, as the client
        log_path=root / "verifier.log",
    )
    start_all([*servers, verifier])
    yield {"relays": relays, "all": [*servers, verifier]}
    stop_all([*servers, verifier])
    for relay in relays:
        relay.close()


def test_a_canary_is_a_paying_client_to_the_servers(w3, deployment, network, network_files):
    protocol = Protocol(w3, deployment)
    walker = Walker(protocol, network["all"])
    relays = dict(zip(w3.eth.accounts[1:3], network["relays"]))
    verifier, canary, client = (w3.eth.accounts[i] for i in (VERIFIER, CANARY, CLIENT))
    for account in (client, canary):  # the canary account funds itself: nothing on chain links it to the verifier
        payer = Protocol(w3, deployment, Signer(account))
        payer.tx.send(payer.payments.functions.deposit(), value=ETHER, label="deposit")
    deposited = protocol.client_account(canary).available  # with what the verifier topped it up to on start
    assert deposited >= ETHER

    epoch = walker.fresh_epoch()
    for relay in relays.values():
        relay.take()
    model = DistributedModel.from_pretrained(protocol=Protocol(w3, deployment, Signer(client)))
    model.generate(prompt="Tell me about the sea.", max_new_tokens=3, eos_token_id=[])
    by_client = {s: relay.take() for s, relay in relays.items()}

    walker.commitments(epoch, relays)
    scores = walker.scores(epoch, [verifier], relays)
    assert all((s.outcome, s.acc) == (Outcome.PASSED, ONE) for s in scores.values()), scores
    by_canary = {s: [r for r in relay.take() if r.path != routes.OPENINGS] for s, relay in relays.items()}

    paid = {}
    for server in relays:
        theirs, ours = by_client[server], by_canary[server]
        order = lambda requests: [k for k, _ in itertools.groupby(map(kind, requests))]  # noqa: E731
        assert (
            order(ours)
            == order(theirs)
            == [
                f"GET {routes.INFO}",
                f"POST {routes.SESSIONS}",
                f"POST {routes.FORWARD}",
                f"DELETE {routes.SESSION}",
            ]
        )
        assert {profile(r) for r in ours} == {profile(r) for r in theirs}
        opened = lambda requests: {r.body for r in requests if kind(r) == f"POST {routes.SESSIONS}"}  # noqa: E731
        assert opened(ours) == opened(theirs)
        assert not any(verifier.lower() in repr(r).lower() for r in ours)
        assert {r.client for r in receipts(theirs)} == {client}
        canary_receipts = receipts(ours)
        assert len(canary_receipts) == 3 and {(r.client, r.server) for r in canary_receipts} == {(canary, server)}
        paid[server] = canary_receipts[-1]

    receipt_epoch = paid[next(iter(paid))].epoch
    assert receipt_epoch == epoch + 1  # the canaries ran while epoch + 1 worked
    walker.commitments(receipt_epoch, relays)  # its work period is over: the servers redeem
    redeemed = lambda s: protocol.payments.functions.redeemed(receipt_epoch, canary, s).call()  # noqa: E731
    wait_for(lambda: all(redeemed(s) for s in relays), "the canary's receipts redeemed", processes=network["all"])
    for server, receipt in paid.items():
        price, layers = protocol.payments.functions.priceOf(server).call(), protocol.server(server).num_layers
        assert redeemed(server) == receipt.amount and receipt.amount % (price * layers) == 0
    assert protocol.client_account(canary).available == deposited - sum(r.amount for r in paid.values())

    # what the canaries owe is kept: a verifier restarted within the epoch goes on from the amounts servers booked
    again = Verifier(
        Protocol(w3, deployment, Signer(verifier)),
        None,
        None,
        VerifyConfig(canaries=0),
        data_dir=network_files.root / f"data-{VERIFIER}",
        canary_account=Signer(canary),
    )
    assert again.canaries.account.owed == {(s, receipt_epoch): r.amount for s, r in paid.items()}
