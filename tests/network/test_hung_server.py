"""A server that hangs instead of failing: the client times out, routes around it, and the text is the same.

Two servers hold all 30 layers each (no chain: this is about the client). Mid-generation the server carrying the
route is frozen with SIGSTOP: the kernel still accepts its connections and takes in requests, but nothing ever
answers, the way a swapping or deadlocked machine behaves. The client's per-request timeout fires, it re-plans
over the other server, replays the history there, and ends with the tokens of an undisturbed run. While the
server stays frozen a new generation leaves it out from the start (its /info does not answer); once it is
resumed (SIGCONT) it serves the same tokens again: nothing was lost on either side.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from efedllm.chain.anvil import free_port
from efedllm.client import DistributedModel
from efedllm.client.peers import INFO_TIMEOUT_S, StaticPeers
from efedllm.localnet import ServerProcess, start_all, stop_all

TIMEOUT_S = 3.0
PROMPT = "Name a large animal."
TOKENS = 8
FREEZE_AFTER = 3


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    logs = tmp_path_factory.mktemp("logs")
    servers = [ServerProcess("0:30", free_port(), ["--no-chain"], log_path=logs / f"server-{i}.log") for i in range(2)]
    start_all(servers)
    yield {s.url: s for s in servers}
    stop_all(list(servers))


def generate(client, **kwargs) -> tuple[list[int], float]:
    started = time.monotonic()
    ids = client.generate(prompt=PROMPT, max_new_tokens=TOKENS, eos_token_id=[], **kwargs)
    return ids[0].tolist(), time.monotonic() - started


def test_a_hung_server_is_timed_out_and_routed_around(servers):
    client = DistributedModel.from_pretrained(servers=list(servers), timeout=TIMEOUT_S)
    expected, undisturbed_s = generate(client)
    assert client.last_failovers == 0

    seen, frozen = [], []

    def freeze_the_route(token: int) -> None:
        seen.append(token)
        if len(seen) == FREEZE_AFTER:  # the next step goes to a server that takes the request and never answers
            (hop,) = client.current_session.route
            frozen.append(servers[hop.peer.endpoint])
            os.kill(frozen[0].process.pid, signal.SIGSTOP)

    try:
        tokens, disturbed_s = generate(client, on_token=freeze_the_route)
        assert frozen, "the route's server was never frozen"
        hung = frozen[0].url
        assert tokens == expected
        assert client.last_failovers == 1
        assert [hop.peer.endpoint for hop in client.last_route] != [hung]
        # it waited for the timeout once, then went on at the usual pace (generous bound for a loaded machine)
        assert TIMEOUT_S <= disturbed_s < TIMEOUT_S + 3 * undisturbed_s + 10

        tokens, fresh_s = generate(client)  # still frozen: left out by the /info probe, no failover needed
        assert tokens == expected and client.last_failovers == 0
        assert [hop.peer.endpoint for hop in client.last_route] != [hung]
        assert fresh_s < INFO_TIMEOUT_S + 3 * undisturbed_s + 10
    finally:
        for server in frozen:
            os.kill(server.process.pid, signal.SIGCONT)

    resumed = frozen[0]
    alone = DistributedModel(
        ends=client.ends,
        tokenizer=client.tokenizer,
        generation_config=client.generation_config,
        peers=StaticPeers([resumed.url]),
        timeout=TIMEOUT_S,
    )
    assert generate(alone)[0] == expected  # the thawed server serves the same tokens: its state survived
    assert resumed.process.poll() is None
