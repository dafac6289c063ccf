"""Hostile input to every route of a server: never a 5xx, every error JSON with an "error", and still serving.

The server app is the real one (conftest.py), over a tiny random Llama span (the handlers' logic is what is
fuzzed; test_real_server.py repeats a smoke pass on the real model in a real process). ``POST /openings`` is the
real handler over a real task store; the verifier role comes from a fixed set instead of a chain.
"""

from __future__ import annotations

import contextlib
import json
import time

import pytest
import torch
from eth_account import Account
from eth_account.messages import encode_defunct
from harness import METHODS, assert_well_formed
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import save as wire_save
from server_setup import CHAIN_ID, COMMITTED_EPOCH, HIDDEN, LAYERS, LIMITS, SERVER, VERIFIER
from strategies import (
    ANY_INT,
    CONTENT_TYPES,
    EDGE_INTS,
    JSON_VALUES,
    PATH_TRICKS,
    PATHOLOGICAL_JSON,
    QUERY,
    SEGMENT,
    TEXT,
    forward_bodies,
    headers_with,
    json_bytes,
    session_ids,
)

from efedllm import wire
from efedllm.model.decoder import one_thread
from efedllm.openings import OpeningRequest, decode_opening

MAX_TOKENS = LIMITS.max_step_tokens


def open_session(served, body: bytes | None = None) -> str:
    answer = served.request("POST", "/sessions", body)
    assert answer.status == 201, answer
    return answer.json()["session"]


def close(served, sid: str) -> None:
    assert served.request("DELETE", f"/sessions/{sid}").status == 200


# The checks, shared with test_real_server.py (the same strategies against a real process on the real model).


def check_info(served, *, query, method, headers, hidden_size):
    answer = served.request(method, "/info?" + query, headers=headers)
    assert answer.status == 200, answer
    if method == "GET":
        assert answer.json()["hidden_size"] == hidden_size


def check_open_session(served, *, body, content_type, num_layers):
    answer = served.request("POST", "/sessions", body, headers_with(content_type))
    assert_well_formed(answer)
    assert answer.status in (201, 400, 413, 415), answer
    if answer.status == 201:
        opened = answer.json()
        assert 0 <= opened["start"] < opened["end"] <= num_layers
        close(served, opened["session"])


def check_forward(served, *, bodies, content_type, hidden_size, max_tokens):
    sid = open_session(served)
    try:
        for body in bodies:
            answer = served.request("POST", f"/sessions/{sid}/forward", body, headers_with(content_type))
            assert_well_formed(answer)
            assert answer.status in (200, 400, 413, 507), answer
            if answer.status == 200:
                out = wire.decode(answer.body, hidden_size=hidden_size, dtype=torch.float32, max_tokens=max_tokens)
                assert out.shape == wire.load(body).shape
    finally:
        close(served, sid)


def check_session_path(served, *, data, method, suffix, body):
    valid = open_session(served)
    try:
        hostile = data.draw(session_ids(valid), label="session id")
        answer = served.request(method, f"/sessions/{hostile}{suffix}", body)
        assert_well_formed(answer)
        assert answer.status != 200 or hostile.startswith(valid)
    finally:
        served.request("DELETE", f"/sessions/{valid}")


def check_any_route(served, *, method, segments, query, body):
    answer = served.request(method, "/" + "/".join(segments) + ("?" + query if query else ""), body)
    assert_well_formed(answer)


INFO_HEADERS = st.dictionaries(st.from_regex(r"\AX-[A-Za-z]{1,10}\Z"), st.from_regex(r"\A[ -~]{0,40}\Z"), max_size=3)
SESSION_BODIES = st.one_of(
    st.fixed_dictionaries({}, optional={"start": JSON_VALUES | ANY_INT, "end": JSON_VALUES | ANY_INT}).map(json_bytes),
    st.fixed_dictionaries({"start": st.integers(-2, 32), "end": st.integers(-2, 32)}).map(json_bytes),
    JSON_VALUES.map(json_bytes),
    PATHOLOGICAL_JSON,
    st.binary(max_size=512),
    st.none(),
)
SUFFIXES = st.sampled_from(["", "/forward", "/forward/", "/x"])
ROUTE_SEGMENTS = st.lists(SEGMENT | PATH_TRICKS, min_size=0, max_size=4)


def route_tests(*, hidden_size: int, num_layers: int, max_tokens: int, examples: dict[str, int]) -> tuple:
    """The route properties as hypothesis tests of the module-scoped fixture ``target`` (the app here, a real
    process in test_real_server.py), ``examples[name]`` examples each; a module assigns them to its test names."""

    @settings(max_examples=examples["info"])
    @given(query=QUERY, method=st.sampled_from(["GET", "HEAD"]), headers=INFO_HEADERS)
    def info(target, query, method, headers):
        check_info(target, query=query, method=method, headers=headers, hidden_size=hidden_size)

    @settings(max_examples=examples["open_session"])
    @given(body=SESSION_BODIES, content_type=CONTENT_TYPES)
    def open_session(target, body, content_type):
        check_open_session(target, body=body, content_type=content_type, num_layers=num_layers)

    @settings(max_examples=examples["forward"])
    @given(
        bodies=st.lists(forward_bodies(hidden_size=hidden_size, max_tokens=max_tokens), min_size=1, max_size=3),
        content_type=CONTENT_TYPES,
    )
    def forward(target, bodies, content_type):
        check_forward(target, bodies=bodies, content_type=content_type, hidden_size=hidden_size, max_tokens=max_tokens)

    @settings(max_examples=examples["session_paths"])
    @given(
        data=st.data(),
        method=st.sampled_from(METHODS),
        suffix=SUFFIXES,
        body=st.none() | forward_bodies(hidden_size=hidden_size, max_tokens=max_tokens),
    )
    def session_paths(target, data, method, suffix, body):
        check_session_path(target, data=data, method=method, suffix=suffix, body=body)

    @settings(max_examples=examples["any_route"])
    @given(
        method=st.sampled_from(METHODS), segments=ROUTE_SEGMENTS, query=QUERY, body=st.none() | st.binary(max_size=256)
    )
    def any_route(target, method, segments, query, body):
        check_any_route(target, method=method, segments=segments, query=query, body=body)

    return info, open_session, forward, session_paths, any_route


@pytest.fixture(scope="module")
def target(served_server):
    return served_server


(
    test_info_answers_whatever_the_query,
    test_open_session_with_any_body,
    test_forward_with_any_body,
    test_session_paths_with_any_id,
    test_any_route,
) = route_tests(
    hidden_size=HIDDEN,
    num_layers=LAYERS,
    max_tokens=MAX_TOKENS,
    examples={"info": 100, "open_session": 500, "forward": 1000, "session_paths": 400, "any_route": 300},
)


# ------------------------------------------------------------------------------------------------ steps


@st.composite
def steps_bodies(draw, sessions: list[str]):
    """``POST /steps`` bodies: safetensors messages whose rows, dtype, session ids and per-step headers are each
    right or wrong (ids of the open sessions, repeated, unknown, too few; metadata that is not JSON, not lists, not
    objects), or any forward body at all."""
    rows = draw(st.integers(1, 3))
    hidden = torch.randn(
        rows, draw(st.sampled_from([1, 1, 1, 2])), draw(st.sampled_from([HIDDEN, HIDDEN, HIDDEN + 1]))
    ).to(draw(st.sampled_from([torch.float32, torch.float32, torch.float16])))
    ids = draw(st.lists(st.sampled_from(sessions) | TEXT, min_size=rows - 1, max_size=rows + 1))
    headers = draw(st.lists(st.dictionaries(TEXT, TEXT, max_size=2) | JSON_VALUES, min_size=rows - 1, max_size=rows))
    metadata = {}
    for key, value in (("sessions", ids), ("headers", headers)):
        if draw(st.integers(0, 5)):
            metadata[key] = json.dumps(value) if draw(st.integers(0, 5)) else draw(TEXT)
    return wire_save({"hidden": hidden.contiguous()}, metadata=metadata)


@settings(max_examples=500)
@given(data=st.data(), content_type=CONTENT_TYPES)
def test_steps_with_any_body(served_server, data, content_type):
    sessions = [open_session(served_server) for _ in range(2)]
    try:
        body = data.draw(
            steps_bodies(sessions) | forward_bodies(hidden_size=HIDDEN, max_tokens=MAX_TOKENS), label="body"
        )
        answer = served_server.request("POST", "/steps", body, headers_with(content_type))
        assert_well_formed(answer)
        assert answer.status in (200, 400, 404, 413, 507), answer
        if answer.status == 200:
            steps = wire.decode_steps(answer.body, hidden_size=HIDDEN, dtype=torch.float32, max_steps=2, sessions=False)
            assert steps.hidden.shape[1:] == (1, HIDDEN)
    finally:
        for sid in sessions:
            close(served_server, sid)


# ------------------------------------------------------------------------------------------------ openings

FIELDS = ("chain_id", "server", "epoch", "index", "nonce", "expires", "signature")


def sign(account, fields: dict) -> str:
    request = OpeningRequest(**{**fields, "signature": ""})
    return "0x" + bytes(account.sign_message(encode_defunct(text=request.message())).signature).hex()


@st.composite
def signed_requests(draw):
    """Requests really signed, by the verifier or a stranger: a valid request with up to two fields moved to
    (or past) a bound before signing, and sometimes one field changed after signing."""
    now = int(time.time())
    fields = {
        "chain_id": CHAIN_ID,
        "server": SERVER,
        "epoch": COMMITTED_EPOCH,
        "index": draw(st.integers(0, 6)),
        "nonce": draw(st.text(min_size=8, max_size=66)),
        "expires": now + 60,
    }
    edges = {
        "chain_id": st.sampled_from([1, 0]) | EDGE_INTS.filter(lambda v: v >= 0),
        "server": st.sampled_from([SERVER.lower(), "0x" + "11" * 20]),
        "epoch": st.sampled_from([COMMITTED_EPOCH + 1]) | EDGE_INTS.filter(lambda v: v >= 0),
        "index": EDGE_INTS.filter(lambda v: v >= 0),
        "expires": st.sampled_from([-1, 0, 299, 301, 10**12]).map(lambda d: now + d) | EDGE_INTS,
    }
    for name in draw(st.lists(st.sampled_from(sorted(edges)), max_size=2, unique=True)):
        fields[name] = draw(edges[name])
    signer = VERIFIER if draw(st.integers(0, 4)) else Account.from_key(b"\x07" * 32)
    signature = sign(signer, fields)
    if draw(st.integers(0, 5)) == 0:
        fields = {**fields, draw(st.sampled_from(FIELDS[:-1])): draw(JSON_VALUES | ANY_INT)}  # tampered after signing
    return {**fields, "signature": signature}


OPENING_BODIES = st.one_of(
    st.fixed_dictionaries({}, optional={name: JSON_VALUES | ANY_INT for name in FIELDS}).map(json_bytes),
    st.fixed_dictionaries(
        {
            "chain_id": st.just(CHAIN_ID),
            "server": st.just(SERVER),
            "epoch": ANY_INT,
            "index": ANY_INT,
            "nonce": TEXT,
            "expires": ANY_INT,
            "signature": st.from_regex(r"\A0x[0-9a-f]{0,200}\Z") | TEXT,
        }
    ).map(json_bytes),
    JSON_VALUES.map(json_bytes),
    PATHOLOGICAL_JSON,
    st.binary(max_size=512),
)


def post_opening(served, body: bytes, content_type=None):
    answer = served.request("POST", "/openings", body, headers_with(content_type))
    assert_well_formed(answer)
    assert answer.status in (200, 400, 403, 404, 409, 413, 415), answer
    if answer.status == 200:
        opened = decode_opening(answer.body)
        assert opened.record["epoch"] == COMMITTED_EPOCH
    return answer


@settings(max_examples=500)
@given(body=OPENING_BODIES, content_type=CONTENT_TYPES)
def test_openings_with_any_body(served_server, body, content_type):
    post_opening(served_server, body, content_type)


@settings(max_examples=400)
@given(request=signed_requests())
def test_openings_with_signed_requests_at_every_bound(served_server, request):
    post_opening(served_server, json_bytes(request))


# ------------------------------------------------------------------------------------------------ afterwards


def test_still_serving_correctly_after_the_abuse(served_server, span):
    """Runs last in this module: a healthy session computes exactly what the span computes, run as the server runs
    it (a pass of at most ``one_thread_tokens`` tokens on one CPU thread: products summed in another order)."""
    info = served_server.request("GET", "/info").json()
    assert info["sessions"] == 0, "every fuzzed session was closed: none may leak"
    sid = open_session(served_server)
    torch.manual_seed(5)
    steps = [torch.randn(1, 7, HIDDEN), torch.randn(1, 1, HIDDEN)]
    cache, past = span.new_cache(), 0
    for hidden in steps:
        answer = served_server.request("POST", f"/sessions/{sid}/forward", wire.encode(hidden))
        assert answer.status == 200, answer
        few = hidden.shape[1] <= LIMITS.one_thread_tokens
        with one_thread() if few else contextlib.nullcontext():
            expected = span(hidden, cache, past=past)
        past += hidden.shape[1]
        assert torch.equal(wire.load(answer.body), expected)
    close(served_server, sid)
    nonce = "0x" + "ab" * 16
    fields = {
        "chain_id": CHAIN_ID,
        "server": SERVER,
        "epoch": COMMITTED_EPOCH,
        "index": 2,
        "nonce": nonce,
        "expires": int(time.time()) + 60,
    }
    answer = served_server.request("POST", "/openings", json_bytes({**fields, "signature": sign(VERIFIER, fields)}))
    assert answer.status == 200, answer
    assert decode_opening(answer.body).record["session"] == "s2"
