"""Restarts mid-epoch, each ending with nothing lost: a server killed and restarted, then the chain node.

One network on a chain whose node keeps its state in a file (``anvil --state``): servers A 0:15 and B 15:30, one
verifier and a client; each test walks one epoch window by window.

1. A is SIGKILLed mid-epoch and restarted on the same data directory: it commits every step of both runs (what
   tests/python/test_work_commitments.py shows for a lone server), and the verifier, which opens every committed
   step of both runs, passes it.
2. The chain node stops mid-generation (dumping its state) and starts again on the same port. While it is down
   the generation under way finishes (inference needs no chain), a new one fails with a one-line error, and the
   servers' and verifier's loops keep failing and retrying. Once it is back the chain has every block, its
   clock goes on from where it stopped, the client generates the same tokens again, the servers commit every
   step of the epoch and the verifier scores it: everyone passes.
"""

from __future__ import annotations

import re

import pytest

from efedllm.chain.anvil import Anvil, AnvilConfig, free_port
from efedllm.chain.params import ONE
from efedllm.chain.protocol import Outcome, Protocol, Score, Status
from efedllm.client import DistributedModel
from efedllm.errors import EfedError
from efedllm.localnet import WALKED_PARAMS, ServerProcess, VerifierProcess, Walker, start_all, stop_all, wait_for

SERVERS = {"A": (1, "0:15"), "B": (2, "15:30")}
VERIFIER = 9
PARAMS = WALKED_PARAMS  # the deployment's (tests/support/chain.py)
TOKENS = 8
PROMPT = "Name a river."


@pytest.fixture(scope="module")
def anvil(tmp_path_factory):
    state = tmp_path_factory.mktemp("chain") / "state.json"
    with Anvil(AnvilConfig(port=0, accounts=10, state=state)) as node:
        yield node


@pytest.fixture(scope="module")
def net(w3, deployment, network_files):
    root, chain = network_files.root, network_files.args
    servers = {
        name: ServerProcess(layers, free_port(), chain(account), log_path=root / f"{name}.log")
        for name, (account, layers) in SERVERS.items()
    }
    verifier = VerifierProcess(chain(VERIFIER), log_path=root / "verifier.log")
    start_all([*servers.values(), verifier])
    protocol = Protocol(w3, deployment)
    yield {
        "servers": servers,
        "verifier": verifier,
        "protocol": protocol,
        "walker": Walker(protocol, [*servers.values(), verifier]),
        "client": DistributedModel.from_pretrained(protocol=protocol),
        "address": {name: w3.eth.accounts[account] for name, (account, _) in SERVERS.items()},
    }
    stop_all([*servers.values(), verifier])


def generate(client, **kwargs) -> list[int]:
    return client.generate(prompt=PROMPT, max_new_tokens=TOKENS, eos_token_id=[], **kwargs)[0].tolist()


def settle(net, epoch: int, *, generations: int) -> dict[str, Score]:
    """Walk ``epoch`` through commitments and scores; every server must have committed all its steps (TOKENS per
    generation) and passed with full accuracy."""
    addresses = net["address"].values()
    commitments = net["walker"].commitments(epoch, addresses)
    assert {a: c.work_units for a, c in commitments.items()} == {a: generations * TOKENS for a in addresses}
    scores = net["walker"].scores(epoch, [net["protocol"].w3.eth.accounts[VERIFIER]], addresses)
    for address, score in scores.items():
        assert (score.acc, score.outcome) == (ONE, Outcome.PASSED), (address, score)
    for record in net["protocol"].servers():
        assert record.status == Status.ACTIVE and record.times_slashed == 0
    return scores


def test_a_server_killed_mid_epoch_commits_both_runs_and_passes_verification(net):
    epoch = net["walker"].fresh_epoch()
    expected = generate(net["client"])
    a = net["servers"]["A"]
    a.kill()
    a.start().wait_ready()
    assert generate(net["client"]) == expected
    assert net["protocol"].current_epoch() == epoch
    settle(net, epoch, generations=2)


def test_the_chain_node_restarted_mid_epoch_and_everyone_resumes(net, anvil, w3):
    protocol, client = net["protocol"], net["client"]
    epoch = net["walker"].fresh_epoch()
    expected = generate(client)
    before = w3.eth.get_block("latest")

    processes = [*net["servers"].values(), net["verifier"]]
    logged = {p.log_path: len(p.log_path.read_text()) for p in processes}

    def since_stop(p) -> str:
        return p.log_path.read_text()[logged[p.log_path] :]

    stopped = []
    tokens = generate(client, on_token=lambda _t: stopped or stopped.append(anvil.stop()))
    assert stopped and tokens == expected  # the route was planned; the servers finished it without a chain
    with pytest.raises(EfedError, match="cannot read the server list from the chain"):
        generate(client)
    wait_for(
        lambda: (
            all(
                re.search(r"cannot read the current epoch|committing work failed", since_stop(s))
                for s in net["servers"].values()
            )
            and "verifier step failed" in since_stop(net["verifier"])
        ),
        "servers and verifier to notice that the chain is away",
        timeout=60,
        processes=processes,
    )

    anvil.start()
    w3.provider.make_request("evm_mine", [])
    after = w3.eth.get_block("latest")
    assert after["number"] > before["number"]  # every block is still there
    assert after["timestamp"] >= before["timestamp"] and protocol.current_epoch() == epoch  # chain time went on
    assert {s.address for s in protocol.servers()} == set(net["address"].values())
    assert generate(client) == expected
    settle(net, epoch, generations=3)
    assert all(p.process.poll() is None for p in processes)  # nobody gave up
