"""Every kind of bad request gets a 4xx with a JSON error, and the server keeps serving everyone else.

One server process holds the whole model with small limits, so each limit is reachable in a test; the last
test checks that a healthy generation through it still works after all the abuse.
"""

from __future__ import annotations

import io
import pickle
import time

import pytest
import requests
import torch

from efedllm import wire
from efedllm.client import DistributedModel
from tests.support.processes import no_chain_server

HIDDEN = 576
LIMITS = [
    "--max-sessions",
    "3",
    "--max-sequence",
    "64",
    "--max-step-tokens",
    "48",
    "--max-body-bytes",
    "200000",
    "--max-cache-bytes",
    str(100 * 30 * 2 * 3 * 64 * 4),
    "--session-ttl",
    "2",
]  # room for 100 tokens


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with no_chain_server(tmp_path_factory.mktemp("logs"), LIMITS) as process:
        yield process


@pytest.fixture
def session(server):
    response = requests.post(server.url + "/sessions", timeout=10)
    assert response.status_code == 201
    sid = response.json()["session"]
    yield sid
    requests.delete(f"{server.url}/sessions/{sid}", timeout=10)


def forward(server, sid, body, content_type=wire.CONTENT_TYPE):
    return requests.post(
        f"{server.url}/sessions/{sid}/forward", data=body, headers={"Content-Type": content_type}, timeout=30
    )


def assert_json_error(response, status, text):
    assert response.status_code == status, response.text
    body = response.json()
    assert text in body["error"], body
    assert body["status"] == status


def hidden(tokens=1, dtype=torch.float32):
    return torch.randn(1, tokens, HIDDEN).to(dtype) * 0.1


def test_info(server):
    info = requests.get(server.url + "/info", timeout=5).json()
    assert (info["first_layer"], info["num_layers"], info["hidden_size"]) == (0, 30, HIDDEN)
    assert info["throughput"]["decode_tokens_per_s"] > 0


def test_malformed_body(server, session):
    assert_json_error(forward(server, session, b"not a tensor"), 400, "not a valid safetensors")
    assert_json_error(forward(server, session, b""), 400, "empty body")


def test_pickle_is_refused_not_loaded(server, session):
    buffer = io.BytesIO()
    torch.save({"hidden": hidden()}, buffer)  # a pickle-based format
    assert_json_error(forward(server, session, buffer.getvalue()), 400, "not a valid safetensors")
    assert_json_error(forward(server, session, pickle.dumps(hidden())), 400, "not a valid safetensors")


def test_oversized_body(server, session):
    response = forward(server, session, b"\0" * 300_000)
    assert_json_error(response, 413, "")


def test_wrong_shape_dtype_and_names(server, session):
    assert_json_error(forward(server, session, wire.encode(torch.zeros(1, 2, 100))), 400, "shape [1, tokens, 576]")
    assert_json_error(forward(server, session, wire.encode(torch.zeros(2, 1, HIDDEN))), 400, "shape")
    assert_json_error(forward(server, session, wire.encode(torch.zeros(HIDDEN))), 400, "shape")
    assert_json_error(forward(server, session, wire.encode(hidden(dtype=torch.float16))), 400, "must be float32")
    from safetensors.torch import save

    assert_json_error(forward(server, session, save({"x": hidden()})), 400, "exactly one tensor named 'hidden'")


def test_nan_and_inf(server, session):
    for bad in (float("nan"), float("inf")):
        tensor = hidden()
        tensor[0, 0, 3] = bad
        assert_json_error(forward(server, session, wire.encode(tensor)), 400, "NaN or Inf")


def test_unknown_session(server):
    assert_json_error(forward(server, "f" * 32, wire.encode(hidden())), 404, "unknown or expired session")
    assert_json_error(requests.delete(f"{server.url}/sessions/nope", timeout=5), 404, "unknown")


def test_expired_session(server):
    sid = requests.post(server.url + "/sessions", timeout=10).json()["session"]
    time.sleep(4)  # ttl is 2 s; expiry runs every second
    assert_json_error(forward(server, sid, wire.encode(hidden())), 404, "unknown or expired session")


def test_bad_session_requests(server):
    assert_json_error(requests.post(server.url + "/sessions", data=b"{oops", timeout=5), 400, "JSON")
    assert_json_error(requests.post(server.url + "/sessions", json=[1], timeout=5), 400, "JSON object")
    assert_json_error(
        requests.post(server.url + "/sessions", json={"start": 0, "end": 31}, timeout=5), 400, "not within"
    )
    assert_json_error(requests.post(server.url + "/sessions", json={"start": "0"}, timeout=5), 400, "integers")


def test_step_and_sequence_limits(server, session):
    assert_json_error(forward(server, session, wire.encode(hidden(49))), 400, "1 to 48 tokens")
    assert forward(server, session, wire.encode(hidden(40))).status_code == 200
    assert_json_error(forward(server, session, wire.encode(hidden(25))), 413, "limit is 64")
    assert forward(server, session, wire.encode(hidden(24))).status_code == 200  # exactly at the limit


def test_too_many_sessions(server):
    opened = [requests.post(server.url + "/sessions", timeout=5) for _ in range(3)]
    try:
        assert all(r.status_code == 201 for r in opened)
        assert_json_error(requests.post(server.url + "/sessions", timeout=5), 429, "too many sessions")
    finally:
        for r in opened:
            requests.delete(f"{server.url}/sessions/{r.json()['session']}", timeout=5)


def test_kv_cache_memory_is_bounded(server):
    sids = [requests.post(server.url + "/sessions", timeout=5).json()["session"] for _ in range(3)]
    try:
        assert forward(server, sids[0], wire.encode(hidden(48))).status_code == 200
        assert forward(server, sids[1], wire.encode(hidden(48))).status_code == 200
        assert_json_error(forward(server, sids[2], wire.encode(hidden(48))), 507, "memory")
        info = requests.get(server.url + "/info", timeout=5).json()
        assert info["cache_bytes"] <= 100 * 30 * 2 * 3 * 64 * 4
    finally:
        for sid in sids:
            requests.delete(f"{server.url}/sessions/{sid}", timeout=5)


def test_healthy_generation_still_works(server):
    model = DistributedModel.from_pretrained(servers=[server.url])
    tokens = model.generate(prompt="What is the capital of France?", max_new_tokens=12)
    assert model.tokenizer.decode(tokens[0], skip_special_tokens=True) == "The capital of France is Paris."
