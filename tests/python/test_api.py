"""``efedllm api``: the OpenAI-compatible API over real server processes, called with the official ``openai``
client and with curl, as users would (issue 16).

Two servers (layers 0:15 and 15:30, off chain) and the API process in front of them. Greedy answers must be the
tokens a ``DistributedModel`` generates through the same servers; a stream must add up to the same text; stop
sequences, seeds, usage counts and errors must behave as OpenAI's do.
"""

from __future__ import annotations

import concurrent.futures
import json
import subprocess

import openai
import pytest

from efedllm.chain.anvil import free_port
from efedllm.client import DistributedModel
from efedllm.localnet import ApiProcess, ServerProcess, start_all, stop_all

MODEL = "smollm2-135m-instruct"
KEY = "sk-test-efedllm"
QUESTION = [{"role": "user", "content": "Name three animals that live in the sea."}]


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    logs = tmp_path_factory.mktemp("api-logs")
    servers = [
        ServerProcess(layers, free_port(), ["--no-chain"], log_path=logs / f"server-{i}.log")
        for i, layers in enumerate(("0:15", "15:30"))
    ]
    start_all(servers)
    api = ApiProcess(
        free_port(),
        ["--servers", ",".join(s.url for s in servers), "--max-concurrent", "8"],
        env={"EFEDLLM_API_KEY": KEY},
        log_path=logs / "api.log",
    )
    start_all([api])
    yield {"servers": servers, "api": api}
    stop_all([api, *servers])


@pytest.fixture(scope="module")
def client(network):
    return openai.OpenAI(base_url=network["api"].url, api_key=KEY, max_retries=0, timeout=300)


@pytest.fixture(scope="module")
def local(network):
    """The Python API through the same servers: what the HTTP API must agree with."""
    return DistributedModel.from_pretrained(MODEL, servers=[s.url for s in network["servers"]])


def test_models_lists_the_served_model(client):
    assert [m.id for m in client.models.list().data] == [MODEL]


def test_a_greedy_chat_answer_is_the_python_apis(client, local):
    answer = client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=12, temperature=0)
    ids = local.generate(messages=QUESTION, max_new_tokens=12)
    expected = local.tokenizer.decode(ids[0], skip_special_tokens=True)
    choice = answer.choices[0]
    assert choice.message.role == "assistant" and choice.message.content == expected
    assert choice.finish_reason == ("length" if ids.shape[1] == 12 else "stop")
    prompt = local.encode(messages=QUESTION).shape[1]
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (prompt, ids.shape[1])
    assert answer.usage.total_tokens == prompt + ids.shape[1]
    assert answer.model == MODEL and answer.id.startswith("chatcmpl-")


def test_a_stream_adds_up_to_the_same_text_and_reports_usage(client):
    whole = client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=16, temperature=0)
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=QUESTION,
            max_tokens=16,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    finals = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finals == [whole.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_a_completion_stops_before_its_stop_sequence(client, local):
    prompt = "1, 2, 3, 4, 5, 6,"
    free = client.completions.create(model=MODEL, prompt=prompt, max_tokens=12, temperature=0).choices[0].text
    assert " 8" in free, free  # the raw model counts on
    cut = client.completions.create(model=MODEL, prompt=prompt, max_tokens=12, temperature=0, stop=[" 8"])
    assert cut.choices[0].text == free[: free.index(" 8")] and cut.choices[0].finish_reason == "stop"
    streamed = client.completions.create(
        model=MODEL, prompt=prompt, max_tokens=12, temperature=0, stop=" 8", stream=True
    )
    assert "".join(c.choices[0].text for c in streamed) == cut.choices[0].text


def test_sampling_follows_the_seed(client):
    def ask(seed):
        return (
            client.chat.completions.create(
                model=MODEL, messages=QUESTION, max_tokens=10, temperature=1.2, top_p=0.95, seed=seed
            )
            .choices[0]
            .message.content
        )

    assert ask(7) == ask(7)
    assert len({ask(s) for s in (1, 2, 3)}) > 1


def test_errors_are_shaped_as_openais(client, network):
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="gpt-4o", messages=QUESTION)
    assert missing.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=10**6)
    assert bad.value.body["param"] == "max_tokens"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=QUESTION, n=2)
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=network["api"].url, api_key="wrong", max_retries=0).models.list()


def curl(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["curl", "-sS", "-N", "-H", f"Authorization: Bearer {KEY}", "-w", "\n%{http_code}", *args, url],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_curl_streams_server_sent_events(network):
    body = {"model": MODEL, "messages": QUESTION, "max_tokens": 8, "temperature": 0, "stream": True}
    out = curl(f"{network['api'].url}/chat/completions", "-H", "Content-Type: application/json", "-d", json.dumps(body))
    *lines, status = out.stdout.rstrip("\n").split("\n")
    assert status == "200", out.stdout + out.stderr
    events = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
    assert events[-1] == "[DONE]" and len(events) >= 3
    assert json.loads(events[0])["object"] == "chat.completion.chunk"


@pytest.mark.parametrize(
    ("data", "status"),
    [("{not json", 400), ('{"model": "smollm2-135m-instruct"}', 400), ('["a list"]', 400)],
)
def test_curl_gets_json_errors_for_bad_bodies(network, data, status):
    out = curl(f"{network['api'].url}/chat/completions", "-H", "Content-Type: application/json", "-d", data)
    body, code = out.stdout.rsplit("\n", 1)
    assert int(code) == status and json.loads(body)["error"]["type"] == "invalid_request_error"


def test_concurrent_streams_all_complete_with_their_text(client):
    expected = client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=8, temperature=0)
    want = expected.choices[0].message.content

    def stream(_):
        chunks = client.chat.completions.create(
            model=MODEL, messages=QUESTION, max_tokens=8, temperature=0, stream=True
        )
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        texts = list(pool.map(stream, range(12)))
    assert texts == [want] * 12
