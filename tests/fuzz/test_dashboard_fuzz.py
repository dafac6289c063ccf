"""Hostile input to the dashboard's server: the read-only JSON-RPC relay (to a real Anvil) and the deployment file
it serves (rewritten with hostile content before each request). Never a 5xx, every error JSON, still serving,
and nothing but a read ever reaches the chain."""

from __future__ import annotations

import json

import pytest
from harness import METHODS, Served, assert_well_formed
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import ANY_INT, JSON_VALUES, PATH_TRICKS, PATHOLOGICAL_JSON, SEGMENT, TEXT, json_bytes

from efedllm.chain.anvil import Anvil, AnvilConfig
from efedllm.chain.params import ProtocolParams
from efedllm.chain.plan import CONTRACTS
from efedllm.dashboard.app import READ_METHODS, DashboardConfig, create_app


@pytest.fixture(scope="module")
def anvil():
    with Anvil(AnvilConfig(port=0, accounts=2)) as node:
        yield node


KNOWN_FILES = {b"<!doctype html><title>efedllm</title>", b"console.log(1)"}


@pytest.fixture(scope="module")
def dashboard(anvil, tmp_path_factory):
    dist = tmp_path_factory.mktemp("dist")
    (dist / "index.html").write_bytes(sorted(KNOWN_FILES)[0])
    (dist / "app.js").write_bytes(sorted(KNOWN_FILES)[1])
    (dist.parent / "secret.txt").write_text("root:x:0:0")
    deployment = tmp_path_factory.mktemp("deployments") / "31337.json"
    config = DashboardConfig(rpc_url=anvil.url, dist=dist, deployment=deployment, rpc_timeout_s=10)
    with Served(create_app(config)) as served:
        served.deployment_path = deployment
        yield served


WRITES = [
    "eth_sendTransaction",
    "eth_sendRawTransaction",
    "anvil_setBalance",
    "evm_mine",
    "evm_increaseTime",
    "anvil_impersonateAccount",
    "eth_sign",
    "personal_sign",
    "debug_traceTransaction",
    "admin_addPeer",
]
METHOD = st.one_of(st.sampled_from(sorted(READ_METHODS)), st.sampled_from(WRITES), TEXT, JSON_VALUES)
CALL = st.fixed_dictionaries(
    {"jsonrpc": st.just("2.0") | JSON_VALUES, "id": st.integers(0, 99) | JSON_VALUES},
    optional={"method": METHOD, "params": st.lists(JSON_VALUES, max_size=3) | JSON_VALUES},
)
RPC_BODIES = st.one_of(
    CALL.map(json_bytes),
    st.lists(CALL, max_size=4).map(json_bytes),
    JSON_VALUES.map(json_bytes),
    PATHOLOGICAL_JSON,
    st.binary(max_size=256),
)


@settings(max_examples=500)
@given(body=RPC_BODIES)
def test_rpc_relay_with_any_body(dashboard, anvil, body):
    answer = dashboard.request("POST", "/rpc", body, {"Content-Type": "application/json"})
    assert_well_formed(answer)
    assert answer.status in (200, 400, 403, 413), answer
    if answer.status == 200:  # relayed: every call was a read
        sent = json.loads(body)
        calls = sent if isinstance(sent, list) else [sent]
        assert calls and all(c.get("method") in READ_METHODS for c in calls)


def test_nothing_but_reads_reached_the_chain(dashboard, anvil):
    """Runs after the relay's fuzzing: no block was mined and no balance changed through it."""
    w3_call = lambda method, params: json.loads(  # noqa: E731
        dashboard.request(
            "POST", "/rpc", json_bytes({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        ).body
    )["result"]
    assert int(w3_call("eth_blockNumber", []), 16) == 0
    refused = dashboard.request("POST", "/rpc", json_bytes({"jsonrpc": "2.0", "id": 1, "method": "evm_mine"}))
    assert refused.status == 403


def good_deployment() -> dict:
    abi = [{"type": "function", "name": "x", "inputs": [], "outputs": [], "stateMutability": "view"}]
    return {
        "format": 1,
        "chainId": 31337,
        "governor": "0x" + "11" * 20,
        "block": 0,
        "params": ProtocolParams().to_dict(),
        "contracts": {name: {"address": "0x" + f"{i + 1:02x}" * 20, "abi": abi} for i, name in enumerate(CONTRACTS)},
    }


def _child(node, key):
    if isinstance(node, dict):
        return node.get(key)
    if isinstance(node, list) and isinstance(key, int) and key < len(node):
        return node[key]
    return None


@st.composite
def mutated_deployments(draw) -> bytes:
    """A valid deployment file with values replaced, keys removed, or the text truncated or corrupted."""
    data = good_deployment()
    for _ in range(draw(st.integers(0, 3))):
        where = data
        path = draw(
            st.sampled_from(
                [
                    ("format",),
                    ("chainId",),
                    ("governor",),
                    ("block",),
                    ("params",),
                    ("params", "theta"),
                    ("params", "epoch_length"),
                    ("contracts",),
                    ("contracts", "RewardPool"),
                    ("contracts", "RewardPool", "address"),
                    ("contracts", "WorkLedger", "abi"),
                    ("contracts", "WorkLedger", "abi", 0),
                ]
            )
        )
        for key in path[:-1]:  # an earlier mutation may have replaced or removed a parent: then skip this one
            where = _child(where, key)
        last = path[-1]
        if isinstance(where, dict) and draw(st.booleans()):
            where.pop(last, None)
        elif isinstance(where, dict) or (isinstance(where, list) and isinstance(last, int) and last < len(where)):
            where[last] = draw(JSON_VALUES | ANY_INT)
    text = json_bytes(data)
    cut = draw(st.none() | st.integers(0, len(text)))
    return text if cut is None else text[:cut]


@settings(max_examples=300)
@given(content=st.one_of(mutated_deployments(), PATHOLOGICAL_JSON, st.binary(max_size=256)))
def test_deployment_json_with_any_file(dashboard, content):
    dashboard.deployment_path.write_bytes(content)
    answer = dashboard.request("GET", "/deployment.json")
    assert_well_formed(answer)
    assert answer.status in (200, 422), answer


@settings(max_examples=200)
@given(
    method=st.sampled_from(METHODS),
    segments=st.lists(SEGMENT | PATH_TRICKS, max_size=3),
    body=st.none() | st.binary(max_size=256),
)
def test_any_route(dashboard, method, segments, body):
    answer = dashboard.request(method, "/" + "/".join(segments), body)
    assert_well_formed(answer)
    if answer.status == 200 and method == "GET":  # only the bundle's files and the JSON routes, never a file beside
        assert answer.body in KNOWN_FILES or answer.content_type.startswith("application/json"), answer


def test_still_serving_after_the_abuse(dashboard):
    dashboard.deployment_path.write_text(json.dumps(good_deployment()))
    assert dashboard.request("GET", "/deployment.json").json()["chainId"] == 31337
    assert dashboard.request("GET", "/").status == 200
    answer = dashboard.request("POST", "/rpc", json_bytes({"jsonrpc": "2.0", "id": 7, "method": "eth_chainId"}))
    assert answer.json()["result"] == hex(31337)
