"""A smoke pass of the server fuzzing against a real ``efedllm server run --no-chain`` process on the real model
(SmolLM2-135M, all 30 layers, small limits): the same strategies and checks as test_server_fuzz.py, fewer
examples (each step runs the real layers), then the process must still be alive, must have logged no unhandled
error, and must still generate the right answer for a real client.
"""

from __future__ import annotations

import pytest
from harness import Remote
from test_server_fuzz import route_tests

from efedllm.client import DistributedModel
from tests.support.processes import no_chain_server

HIDDEN, LAYERS, MAX_TOKENS = 576, 30, 48
LIMITS = [
    "--max-sessions",
    "4",
    "--max-sequence",
    "96",
    "--max-step-tokens",
    str(MAX_TOKENS),
    "--max-body-bytes",
    "400000",
    "--session-ttl",
    "60",
]


@pytest.fixture(scope="module")
def process(tmp_path_factory):
    with no_chain_server(tmp_path_factory.mktemp("logs"), LIMITS) as server:
        yield server


@pytest.fixture(scope="module")
def target(process) -> Remote:
    return Remote(process.port)


test_info, test_open_session, test_forward, test_session_paths, test_any_route = route_tests(
    hidden_size=HIDDEN,
    num_layers=LAYERS,
    max_tokens=MAX_TOKENS,
    examples={"info": 30, "open_session": 100, "forward": 150, "session_paths": 80, "any_route": 60},
)


def test_alive_clean_and_still_right(process):
    assert process.process.poll() is None, process.log_tail()
    assert "unhandled error" not in process.log_path.read_text(), process.log_tail()
    assert process.info().sessions == 0
    model = DistributedModel.from_pretrained(servers=[process.url])
    tokens = model.generate(prompt="What is the capital of France?", max_new_tokens=12)
    assert model.tokenizer.decode(tokens[0], skip_special_tokens=True) == "The capital of France is Paris."
