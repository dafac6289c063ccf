"""Clients pay for the steps they ask for (issue 14), end to end on Anvil with real server processes.

Two servers announce prices on chain (``--price``: wei per token-layer). A client deposits into Payments, finds the
servers and their prices on chain, and generates: each step carries its signed cumulative receipt, which the
server checks before computing. Once the epoch's work period is over each server redeems the client's latest
receipt by itself; the fees equal, to the wei, price x tokens x layers of the steps served, and leave the client's
deposit. A client that does not pay is refused (402) and cannot generate.
"""

from __future__ import annotations

import pytest
from test_cli import run

from efedllm.chain.anvil import free_port
from efedllm.chain.connection import Signer
from efedllm.chain.params import ETHER
from efedllm.chain.protocol import Protocol
from efedllm.client import DistributedModel
from efedllm.errors import EfedError
from efedllm.localnet import ServerProcess, Walker, start_all, stop_all, wait_for

CLIENT = 7
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


def test_a_paying_client_is_served_and_the_servers_redeem_its_receipts(w3, deployment, network):
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
