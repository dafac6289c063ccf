"""Several hosts: chain, servers, verifier and client each in a network namespace of its own (netns.py), so every
hop crosses real interfaces and a bridge; then a network partition between the client and one server.

Hosts: the chain (Anvil), s1 0:15, s2 15:30 and s3 15:30 (each announcing its own address with --public-url, all on
the same port, which only separate hosts allow), a verifier, and a client process (client_host.py) driven over
its stdin and stdout. The test process itself sits on the bridge (10.77.0.1) to move chain time and watch.

1. The client generates through the chain's servers: the reference tokens.
2. It generates again; after its third token the client and the server carrying layers 15:30 are cut apart. The
   open connection goes silent, the client's request times out, it fails over to the other 15:30 server and ends
   with the reference tokens. A new generation while the cut lasts leaves that server out from the start.
3. The cut heals; the epoch is walked: every server commits what it served (the replay counted once more, nothing
   lost), the verifier, which could reach every server throughout, passes all three, and nobody is slashed.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from pathlib import Path

import netns
import pytest

from efedllm.chain.anvil import Anvil, AnvilConfig
from efedllm.chain.params import ONE
from efedllm.chain.protocol import Outcome, Protocol, Status
from efedllm.errors import EfedError
from efedllm.localnet import WALKED_PARAMS, ServerProcess, VerifierProcess, Walker, start_all, stop_all

HERE = Path(__file__).resolve().parent
SERVERS = {"s1": (1, "0:15"), "s2": (2, "15:30"), "s3": (3, "15:30")}
VERIFIER = 9
PARAMS = WALKED_PARAMS  # the deployment's (tests/support/chain.py)
HOSTS = ["chain", *SERVERS, "verifier", "client"]
CHAIN_PORT, SERVER_PORT = 18545, 18100
CLIENT_TIMEOUT_S = 4.0
TOKENS, CUT_AFTER = 8, 3
PROMPT = "Name a mountain."


class HostAnvil(Anvil):
    """Anvil on one of the hosts, listening on that host's address."""

    def __init__(self, hosts: netns.Hosts, name: str):
        super().__init__(AnvilConfig(host=hosts.address(name), port=CHAIN_PORT, accounts=10))
        self.launcher = hosts.launcher(name)

    def command(self) -> list[str]:
        return [*self.launcher, *super().command()]


class ClientHost:
    """client_host.py on the client's host: one JSON request in, JSON lines out."""

    def __init__(self, hosts: netns.Hosts, *, rpc_url: str, deployment: Path, log_path: Path):
        self.log_path = log_path
        self.process = subprocess.Popen(
            [
                *hosts.launcher("client"),
                sys.executable,
                str(HERE / "client_host.py"),
                "--rpc-url",
                rpc_url,
                "--deployment",
                str(deployment),
                "--timeout",
                str(CLIENT_TIMEOUT_S),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(log_path, "w"),  # noqa: SIM115 - the process owns the file
            text=True,
        )
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        assert self.receive(timeout=180) == {"ready": True}

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def receive(self, *, timeout: float = 180) -> dict:
        try:
            message = self.lines.get(timeout=timeout)
        except queue.Empty:
            message = None
        if message is None:
            raise EfedError(f"the client said nothing within {timeout:.0f}s\n{self.log_path.read_text()[-2000:]}")
        if "error" in message:
            raise EfedError(f"the client failed: {message['error']}\n{self.log_path.read_text()[-2000:]}")
        return message

    def send(self, message: dict | str) -> None:
        self.process.stdin.write((json.dumps(message) if isinstance(message, dict) else message) + "\n")
        self.process.stdin.flush()

    def generate(self, **request) -> dict:
        self.send({"prompt": PROMPT, "max_new_tokens": TOKENS, **request})
        return self.receive()

    def close(self) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def hosts():
    reason = netns.unavailable()
    if reason:
        pytest.skip(f"several hosts need network namespaces: {reason}")
    with netns.Hosts(HOSTS) as hosts:
        yield hosts


@pytest.fixture(scope="module")
def anvil(hosts):
    with HostAnvil(hosts, "chain") as node:
        yield node


@pytest.fixture(scope="module")
def net(hosts, network_files):
    root, chain = network_files.root, network_files.args
    servers = {}
    for name, (account, layers) in SERVERS.items():
        url = f"http://{hosts.address(name)}:{SERVER_PORT}"
        servers[name] = ServerProcess(
            layers,
            SERVER_PORT,
            [*chain(account), "--public-url", url],
            host=hosts.address(name),
            launcher=hosts.launcher(name),
            log_path=root / f"{name}.log",
        )
    verifier = VerifierProcess(chain(VERIFIER), launcher=hosts.launcher("verifier"), log_path=root / "verifier.log")
    processes = [*servers.values(), verifier]
    start_all(processes)
    client = None
    try:
        client = ClientHost(
            hosts, rpc_url=network_files.rpc_url, deployment=network_files.deployment_path, log_path=root / "client.log"
        )
        yield {"servers": servers, "verifier": verifier, "client": client, "processes": processes}
    finally:
        if client:
            client.close()
        stop_all(processes)


def test_every_role_on_its_own_host_and_a_partition_between_client_and_server(w3, deployment, hosts, net):
    protocol = Protocol(w3, deployment)
    walker = Walker(protocol, net["processes"])
    address = {name: w3.eth.accounts[account] for name, (account, _) in SERVERS.items()}
    host_of = {f"http://{hosts.address(name)}:{SERVER_PORT}": name for name in SERVERS}
    assert {s.endpoint for s in protocol.servers()} == set(host_of)  # each announced its own host's address
    client = net["client"]

    epoch = walker.fresh_epoch()
    reference = client.generate()
    assert len(reference["tokens"]) == TOKENS and reference["failovers"] == 0
    assert all(endpoint in host_of for _, _, endpoint in reference["route"])

    client.send({"prompt": PROMPT, "max_new_tokens": TOKENS, "pause_after": CUT_AFTER})
    paused = client.receive()
    (cut,) = [host_of[endpoint] for start, _, endpoint in paused["route"] if start == 15]
    other = ({"s2", "s3"} - {cut}).pop()
    with hosts.partition("client", cut):
        client.send("go")
        result = client.receive()
        assert result["tokens"] == reference["tokens"]
        assert result["failovers"] == 1
        assert [host_of[e] for _, _, e in result["route"]] == ["s1", other]
        assert result["seconds"] >= CLIENT_TIMEOUT_S  # it waited on the silent connection, then went on

        again = client.generate()  # the cut server's /info does not answer: left out, no failover
        assert again["tokens"] == reference["tokens"] and again["failovers"] == 0
        assert [host_of[e] for _, _, e in again["route"]] == ["s1", other]

    commitments = walker.commitments(epoch, address.values())
    units = {name: commitments[address[name]].work_units for name in SERVERS}
    assert units["s1"] == 3 * TOKENS
    # layers 15:30: the reference run, the steps before the cut, one replay of the history, the rest, the last run
    assert units["s2"] + units["s3"] == TOKENS + CUT_AFTER + 1 + (TOKENS - CUT_AFTER) + TOKENS
    scores = walker.scores(epoch, [w3.eth.accounts[VERIFIER]], address.values())
    for name in SERVERS:
        score = scores[address[name]]
        assert (name, score.outcome, score.acc) == (name, Outcome.PASSED, ONE)
    assert all(s.status == Status.ACTIVE and s.times_slashed == 0 for s in protocol.servers())
