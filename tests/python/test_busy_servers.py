"""Fair under load (issue 16): a client cannot take every session slot of a server, and a client that finds every
server of some layers busy waits, says "busy", and goes on once a slot frees, instead of "no reachable server".

Real server processes off chain; clients from this process. The per-client quota is keyed by the peer's address,
so a second client comes from another loopback address (127.0.0.2).
"""

from __future__ import annotations

import logging
import threading
import time

import pytest
import requests
from requests.adapters import HTTPAdapter

from efedllm.chain.anvil import free_port
from efedllm.client import DistributedModel
from efedllm.errors import EfedError
from efedllm.localnet import ServerProcess, start_all, stop_all
from efedllm.rpc.client import ServerClient, ServerFailure
from efedllm.server.config import ServerLimits
from efedllm.server.sessions import SessionError, SessionStore


def test_a_client_holds_at_most_its_quota_of_sessions():
    store = SessionStore(ServerLimits(max_sessions=4, max_sessions_per_client=2), bytes_per_token=1)
    store.open(0, 1, None, client="a")
    store.open(0, 1, None, client="a")
    with pytest.raises(SessionError) as full:
        store.open(0, 1, None, client="a")
    assert full.value.status == 429 and "busy: this client holds 2 sessions" in str(full.value)
    store.open(0, 1, None, client="b")  # another client still gets in
    store.open(0, 1, None, client="c")
    with pytest.raises(SessionError, match=r"busy: too many sessions \(limit 4\)"):
        store.open(0, 1, None, client="d")


class FromAddress(HTTPAdapter):
    """Connects from ``source`` (another loopback address: another client, as the server sees it)."""

    def __init__(self, source: str):
        self.source = source
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kwargs)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    log = tmp_path_factory.mktemp("busy") / "server.log"
    process = ServerProcess(
        "0:30", free_port(), ["--no-chain", "--max-sessions", "3", "--max-sessions-per-client", "2"], log_path=log
    )
    start_all([process])
    yield process
    stop_all([process])


def test_a_greedy_client_leaves_room_and_a_waiting_client_goes_on_when_a_slot_frees(server, caplog):
    greedy = requests.Session()
    greedy.mount("http://", FromAddress("127.0.0.2"))
    hog = ServerClient(server.url, http=greedy)
    held = [hog.open_session(0, 30).session for _ in range(2)]
    with pytest.raises(ServerFailure) as refused:
        hog.open_session(0, 30)
    assert refused.value.status == 429 and "busy" in str(refused.value)

    model = DistributedModel.from_pretrained(servers=[server.url])
    # one slot is left for everyone else: a generation gets it
    first = model.generate(prompt="Say hello.", max_new_tokens=3)
    assert first.shape[1] >= 1

    # now fill the last slot from a third address: this client must wait, say "busy", then go on
    other = requests.Session()
    other.mount("http://", FromAddress("127.0.0.3"))
    blocker = ServerClient(server.url, http=other).open_session(0, 30).session
    threading.Timer(2.0, lambda: hog.close(held[0])).start()
    caplog.set_level(logging.WARNING, logger="efedllm.client")
    started = time.monotonic()
    again = model.generate(prompt="Say hello.", max_new_tokens=3)
    assert again.tolist() == first.tolist() and time.monotonic() - started >= 1.5
    assert any("busy" in r.getMessage() for r in caplog.records)
    ServerClient(server.url, http=other).close(blocker)
    hog.close(held[1])


def test_a_client_gives_up_with_busy_when_no_slot_frees(server):
    other = requests.Session()
    other.mount("http://", FromAddress("127.0.0.4"))
    hog = ServerClient(server.url, http=other)
    other2 = requests.Session()
    other2.mount("http://", FromAddress("127.0.0.5"))
    held = [hog.open_session(0, 30).session for _ in range(2)] + [
        ServerClient(server.url, http=other2).open_session(0, 30).session
    ]
    try:
        from efedllm.client.peers import StaticPeers
        from efedllm.client.session import InferenceSession

        with pytest.raises(EfedError, match="busy: every server that could serve layers 0:30"):
            InferenceSession(StaticPeers([server.url]).peers(), 30, busy_wait=1.0)
    finally:
        for sid in held[:2]:
            hog.close(sid)
        ServerClient(server.url, http=other2).close(held[2])
