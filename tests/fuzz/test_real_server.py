"""A smoke pass of the server fuzzing against a real ``efedllm server run --no-chain`` process on the real model
(SmolLM2-135M, all 30 layers, small limits): the same strategies and checks as test_server_fuzz.py, fewer
examples (each step runs the real layers), then the process must still be alive, must have logged no unhandled
error, and must still generate the right answer for a real client.
"""

from __future__ import annotations

import pytest
from harness import METHODS, Remote
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import CONTENT_TYPES, QUERY, forward_bodies
from test_server_fuzz import (
    INFO_HEADERS, ROUTE_SEGMENTS, SESSION_BODIES, SUFFIXES, check_any_route, check_forward, check_info,
    check_open_session, check_session_path,
)

from efedllm.chain.anvil import free_port
from efedllm.client import DistributedModel
from efedllm.localnet import ServerProcess

HIDDEN, LAYERS, MAX_TOKENS = 576, 30, 48
LIMITS = ["--max-sessions", "4", "--max-sequence", "96", "--max-step-tokens", str(MAX_TOKENS),
          "--max-body-bytes", "400000", "--session-ttl", "60"]


@pytest.fixture(scope="module")
def process(tmp_path_factory):
    log = tmp_path_factory.mktemp("logs") / "server.log"
    server = ServerProcess("0:30", free_port(), args=["--no-chain", *LIMITS], log_path=log).start().wait_ready()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def real(process) -> Remote:
    return Remote(process.port)


@settings(max_examples=30)
@given(query=QUERY, method=st.sampled_from(["GET", "HEAD"]), headers=INFO_HEADERS)
def test_info(real, query, method, headers):
    check_info(real, query=query, method=method, headers=headers, hidden_size=HIDDEN)


@settings(max_examples=100)
@given(body=SESSION_BODIES, content_type=CONTENT_TYPES)
def test_open_session(real, body, content_type):
    check_open_session(real, body=body, content_type=content_type, num_layers=LAYERS)


@settings(max_examples=150)
@given(bodies=st.lists(forward_bodies(hidden_size=HIDDEN, max_tokens=MAX_TOKENS), min_size=1, max_size=3),
       content_type=CONTENT_TYPES)
def test_forward(real, bodies, content_type):
    check_forward(real, bodies=bodies, content_type=content_type, hidden_size=HIDDEN, max_tokens=MAX_TOKENS)


@settings(max_examples=80)
@given(data=st.data(), method=st.sampled_from(METHODS), suffix=SUFFIXES,
       body=st.none() | forward_bodies(hidden_size=HIDDEN, max_tokens=MAX_TOKENS))
def test_session_paths(real, data, method, suffix, body):
    check_session_path(real, data=data, method=method, suffix=suffix, body=body)


@settings(max_examples=60)
@given(method=st.sampled_from(METHODS), segments=ROUTE_SEGMENTS, query=QUERY, body=st.none() | st.binary(max_size=256))
def test_any_route(real, method, segments, query, body):
    check_any_route(real, method=method, segments=segments, query=query, body=body)


def test_alive_clean_and_still_right(process):
    assert process.process.poll() is None, process.log_tail()
    assert "unhandled error" not in process.log_path.read_text(), process.log_tail()
    assert process.info().sessions == 0
    model = DistributedModel.from_pretrained(servers=[process.url])
    tokens = model.generate(prompt="What is the capital of France?", max_new_tokens=12)
    assert model.tokenizer.decode(tokens[0], skip_special_tokens=True) == "The capital of France is Paris."
