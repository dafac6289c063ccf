"""``POST /steps`` (issue 16): one decode step of each of several sessions in one request, as a client process
sends its sessions' steps together (client/lockstep.py). Against a real server process over the real model's
layers 0:6: each session gets exactly the step it would get alone; a request refused for any one of its steps
runs none of them (the client sends them again one by one); malformed requests get a JSON 400.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
import requests
import torch
from aiohttp.test_utils import TestClient, TestServer
from eth_utils import keccak

from efedllm import wire
from efedllm.chain.anvil import free_port
from efedllm.localnet import ServerProcess, start_all, stop_all
from efedllm.receipts import ANSWER_HEADER, SIGNATURE_HEADER, Answer
from efedllm.rpc import routes
from efedllm.rpc.messages import Throughput
from efedllm.server.app import HOOKS, SIGNER, create_app
from efedllm.server.config import ServerConfig
from efedllm.server.main import load_span
from efedllm.server.records import TaskStore
from efedllm.server.work import recorder
from efedllm.tasks import tensor_hash
from efedllm.verifier.checks import deviation
from efedllm.verifier.config import FLOAT32_TOLERANCE

HIDDEN = 576
BINARY = {"Content-Type": wire.CONTENT_TYPE}
ADDRESS = "0x" + "ab" * 20


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    process = ServerProcess("0:6", free_port(), ["--no-chain"], log_path=tmp_path_factory.mktemp("steps") / "s.log")
    start_all([process])
    yield process
    stop_all([process])


def open_session(url: str) -> str:
    answer = requests.post(url + routes.SESSIONS, json={}, timeout=30)
    assert answer.status_code == 201, answer.text
    return answer.json()["session"]


def forward(url: str, session: str, hidden: torch.Tensor) -> torch.Tensor:
    answer = requests.post(url + routes.forward(session), data=wire.encode(hidden), headers=BINARY, timeout=60)
    assert answer.status_code == 200, answer.text
    return wire.load(answer.content)


def post_steps(url: str, sessions: list[str], rows: list[torch.Tensor], headers=None) -> requests.Response:
    body = wire.encode_steps(torch.cat(rows), headers=headers or [{} for _ in rows], sessions=sessions)
    return requests.post(url + routes.STEPS, data=body, headers=BINARY, timeout=60)


def prefilled(url: str, prompts: list[torch.Tensor]) -> list[str]:
    sessions = [open_session(url) for _ in prompts]
    for session, prompt in zip(sessions, prompts):
        forward(url, session, prompt)
    return sessions


def test_steps_sent_together_are_each_sessions_own_steps(server):
    url = server.url
    torch.manual_seed(0)
    prompts = [torch.randn(1, 3 + 5 * i, HIDDEN) * 3 for i in range(4)]  # sessions of different lengths
    together, alone = prefilled(url, prompts), prefilled(url, prompts)
    before = requests.get(url + routes.INFO, timeout=10).json()
    for _ in range(3):  # three decode steps in a row
        rows = [torch.randn(1, 1, HIDDEN) * 3 for _ in prompts]
        answer = post_steps(url, together, rows)
        assert answer.status_code == 200, answer.text
        outputs = wire.decode_steps(
            answer.content, hidden_size=HIDDEN, dtype=torch.float32, max_steps=len(rows), sessions=False
        )
        assert outputs.headers == [{} for _ in rows]  # off chain: nothing signed
        single = [forward(url, s, r) for s, r in zip(alone, rows)]
        worst = max(deviation(outputs.hidden[i : i + 1], single[i]) for i in range(len(rows)))
        assert worst < FLOAT32_TOLERANCE / 100, worst
    after = requests.get(url + routes.INFO, timeout=10).json()
    steps, batches = after["steps"] - before["steps"], after["batches"] - before["batches"]
    assert steps == 2 * 3 * len(prompts) and batches <= 3 + 3 * len(prompts)  # each request ran as one batch


def test_a_request_refused_for_one_step_runs_none_of_them(server):
    url = server.url
    torch.manual_seed(1)
    prompts = [torch.randn(1, 4, HIDDEN), torch.randn(1, 6, HIDDEN)]
    mine, reference = prefilled(url, prompts), prefilled(url, prompts)
    rows = [torch.randn(1, 1, HIDDEN) for _ in prompts]
    refused = post_steps(url, [mine[0], "no-such-session"], rows)
    assert refused.status_code == 404 and "error" in refused.json()
    # nothing ran for the known session: sent again, both get what they would have got the first time
    answer = post_steps(url, mine, rows)
    assert answer.status_code == 200, answer.text
    got = wire.decode_steps(answer.content, hidden_size=HIDDEN, dtype=torch.float32, max_steps=2, sessions=False)
    expected = [forward(url, s, r) for s, r in zip(reference, rows)]
    assert max(deviation(got.hidden[i : i + 1], expected[i]) for i in range(2)) < FLOAT32_TOLERANCE / 100


@pytest.mark.parametrize(
    "case",
    ["same session twice", "fewer ids than rows", "headers not objects", "two tokens a row", "no metadata", "junk"],
)
def test_malformed_requests_get_a_json_400(server, case):
    url = server.url
    a, b = open_session(url), open_session(url)
    rows = torch.randn(2, 1, HIDDEN)
    body = {
        "same session twice": lambda: wire.encode_steps(rows, headers=[{}, {}], sessions=[a, a]),
        "fewer ids than rows": lambda: wire.encode_steps(rows, headers=[{}, {}], sessions=[a]),
        "headers not objects": lambda: wire.encode_steps(rows, headers=["x", 1], sessions=[a, b]),
        "two tokens a row": lambda: wire.encode_steps(torch.randn(2, 2, HIDDEN), headers=[{}, {}], sessions=[a, b]),
        "no metadata": lambda: wire.encode(rows),
        "junk": lambda: b"\x08\x00\x00\x00\x00\x00\x00\x00{oops}",
    }[case]()
    answer = requests.post(url + routes.STEPS, data=body, headers=BINARY, timeout=30)
    assert answer.status_code == 400, (answer.status_code, answer.text)
    assert answer.json()["error"]
    for session in (a, b):  # the sessions are untouched: a one-token step still fits at position 0
        assert forward(url, session, torch.randn(1, 1, HIDDEN)).shape == (1, 1, HIDDEN)


def test_each_step_of_a_request_is_recorded_and_signed_as_its_own(tmp_path):
    """The server app as on chain (its steps recorded, its answers signed): every step of a ``POST /steps`` gets
    its own record and its own signed answer, naming its session, its position and the hash of its own output."""
    config = ServerConfig(model="smollm2-135m-instruct", first_layer=0, num_layers=1, device="cpu")
    span = load_span(config, 0, 1, progress=lambda *a: None)
    store = TaskStore(tmp_path / "tasks.sqlite", server=ADDRESS)
    signed: list[Answer] = []

    def sign(answer: Answer) -> bytes:
        signed.append(answer)
        return b"\x01" * 65

    async def scenario():
        app = create_app(span, config, throughput=Throughput(decode_tokens_per_s=1.0, prefill_tokens_per_s=1.0))
        app[HOOKS].append(recorder(store, SimpleNamespace(epoch=3)))
        app[SIGNER].append(sign)
        async with TestClient(TestServer(app)) as client:
            sessions = []
            for length in (2, 5):
                sid = (await (await client.post(routes.SESSIONS, json={})).json())["session"]
                body = wire.encode(torch.randn(1, length, HIDDEN))
                assert (await client.post(routes.forward(sid), data=body, headers=BINARY)).status == 200
                sessions.append(sid)
            rows = torch.randn(2, 1, HIDDEN)
            body = wire.encode_steps(rows, headers=[{}, {}], sessions=sessions)
            answer = await client.post(routes.STEPS, data=body, headers=BINARY)
            assert answer.status == 200, await answer.text()
            return sessions, await answer.read()

    sessions, body = asyncio.run(scenario())
    steps = wire.decode_steps(body, hidden_size=HIDDEN, dtype=torch.float32, max_steps=2, sessions=False)
    answers = [Answer.from_header(h[ANSWER_HEADER]) for h in steps.headers]
    assert all(h[SIGNATURE_HEADER] == "0x" + "01" * 65 for h in steps.headers)
    for i, (sid, past) in enumerate(zip(sessions, (2, 5))):
        assert answers[i].session == keccak(text=sid) and answers[i].past == past
        assert answers[i].output_hash == tensor_hash(steps.hidden[i : i + 1])
    records, _ = store.tree(3)
    assert [(r.session, r.past) for r in records][-2:] == [(sessions[0], 2), (sessions[1], 5)]
    store.close()
