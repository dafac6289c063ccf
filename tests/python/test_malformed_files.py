"""Malformed deployment files and config files: each defect is one line naming it (the CLI) or an EfedError (the
library), never a traceback, whatever the file holds.

The CLI cases run ``efedllm status`` as a user would, against a real Anvil with a real deployment, with the file
damaged one way each; the property tests feed the parsers thousands of damaged files in-process.
"""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_cli import assert_one_line_error, run

from efedllm.chain.deployment import Deployment
from efedllm.chain.plan import CONTRACTS
from efedllm.cli import config
from efedllm.cli.main import build_parser
from efedllm.errors import EfedError

NO_CODE = "0x" + "12" * 20


def damaged(good: dict, change) -> dict:
    data = copy.deepcopy(good)
    change(data)
    return data


def contract(name: str, **fields):
    return lambda d: d["contracts"][name].update(fields)


CASES = {
    "truncated": (None, "not valid JSON"),
    "not UTF-8": (None, "not valid JSON (UnicodeDecodeError)"),
    "nested too deep": (None, "not valid JSON (RecursionError)"),
    "a list": ([1, 2], "malformed deployment file"),
    "missing contract": (lambda d: d["contracts"].pop("WorkLedger"), "missing field 'WorkLedger'"),
    "contracts a list": (lambda d: d.__setitem__("contracts", []), "malformed deployment file"),
    "address not hex": (contract("RewardPool", address="0x" + "zz" * 20), "RewardPool has an invalid address"),
    "address too short": (contract("RewardPool", address="0x1234"), "RewardPool has an invalid address"),
    "address a number": (contract("RewardPool", address=1234), "RewardPool has an invalid address"),
    "bad checksum": (
        lambda d: d["contracts"]["RewardPool"].update(
            address=d["contracts"]["RewardPool"]["address"].swapcase().replace("0X", "0x")
        ),
        "invalid address",
    ),
    "no contract there": (contract("ServerRegistry", address=NO_CODE), f"no contract at {NO_CODE} (ServerRegistry)"),
    "addresses swapped": (
        lambda d: d["contracts"]["ServerRegistry"].update(address=d["contracts"]["RewardPool"]["address"]),
        "the chain does not answer as the deployment file describes",
    ),
    "ABI not a list": (contract("TrustScoring", abi={"type": "function"}), "TrustScoring has no ABI list"),
    "ABI of numbers": (contract("TrustScoring", abi=[1, 2]), "an ABI entry is not an object"),
    "ABI entry without inputs": (
        contract("TrustScoring", abi=[{"type": "error", "name": "X"}]),
        "needs a name and a list of typed inputs",
    ),
    "ABI without functions": (contract("TrustScoring", abi=[]), "TrustScoring has no functions in its ABI"),
    "wrong chain id": (lambda d: d.__setitem__("chainId", 1), "the deployment is for chain 1, the RPC serves 31337"),
    "chain id a float": (lambda d: d.__setitem__("chainId", 31337.0), "chainId must be an integer"),
    "chain id a string": (lambda d: d.__setitem__("chainId", "31337"), "chainId must be an integer"),
    "governor not an address": (lambda d: d.__setitem__("governor", True), "governor has an invalid address"),
    "parameter of the wrong type": (lambda d: d["params"].__setitem__("theta", "0.5"), "parameter theta must be"),
    "unknown parameter": (lambda d: d["params"].__setitem__("bogus", 1), "unexpected keyword argument 'bogus'"),
    "wrong format": (lambda d: d.__setitem__("format", 2), "unsupported format 2"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_cli_names_each_defect_in_one_line(anvil, deployment, tmp_path, case):
    change, message = CASES[case]
    good = deployment.to_json()
    path = tmp_path / "deployment.json"
    if case == "truncated":
        path.write_text(json.dumps(good)[:700])
    elif case == "not UTF-8":
        path.write_bytes(json.dumps(good).encode().replace(b'"governor"', b'"gov\xffernor"'))
    elif case == "nested too deep":
        path.write_text("[" * 100_000 + "]" * 100_000)
    else:
        path.write_text(json.dumps(change if not callable(change) else damaged(good, change)))
    assert_one_line_error(run("status", "--rpc-url", anvil.url, "--deployment", str(path)), message)


def test_lowercase_addresses_are_accepted_and_checksummed(anvil, deployment, tmp_path):
    good = deployment.to_json()
    for record in good["contracts"].values():
        record["address"] = record["address"].lower()
    path = tmp_path / "lower.json"
    path.write_text(json.dumps(good))
    assert Deployment.load(path).contracts == deployment.contracts
    assert run("status", "--rpc-url", anvil.url, "--deployment", str(path)).returncode == 0


# ------------------------------------------------------------------------------------------------ property tests

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)
PATHS = [
    ("format",),
    ("chainId",),
    ("governor",),
    ("block",),
    ("params",),
    ("params", "theta"),
    ("contracts",),
    *[("contracts", n) for n in CONTRACTS],
    *[("contracts", n, "address") for n in CONTRACTS],
    *[("contracts", n, "abi") for n in CONTRACTS],
    ("contracts", "RewardPool", "abi", 0),
    ("contracts", "RewardPool", "abi", 0, "inputs"),
]


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_damage_to_a_deployment_file_is_an_efed_error(deployment, tmp_path, data):
    doc = copy.deepcopy(deployment.to_json())  # to_json shares the ABI lists with the fixture's object
    for path in data.draw(st.lists(st.sampled_from(PATHS), min_size=1, max_size=3), label="where"):
        where = doc
        try:
            for key in path[:-1]:
                where = where[key]
            if isinstance(where, dict) and data.draw(st.booleans(), label="remove"):
                where.pop(path[-1], None)
            else:
                where[path[-1]] = data.draw(JSON, label="value")
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed or replaced what this path leads through
    text = json.dumps(doc).encode()
    cut = data.draw(st.none() | st.integers(0, len(text)), label="truncate at")
    file = tmp_path / "deployment.json"
    file.write_bytes(text if cut is None else text[:cut])
    try:
        loaded = Deployment.load(file)
    except EfedError:
        return
    assert set(loaded.contracts) == set(CONTRACTS)  # what loads is whole


TOML_KEYS = st.sampled_from(
    [
        "rpc-url",
        "rpc_url",
        "port",
        "layers",
        "log-json",
        "samples",
        "tolerance",
        "verifier",
        "private-key",
        "api_secret",
        "password",
        "seed-phrase",
        "deployment",
        "data-dir",
        "max-sessions",
        "no-chain",
        "policy",
        "config",
        "help",
        "unknown-flag",
        "",
        "ü",
    ]
)
TOML_VALUES = st.one_of(
    st.text(max_size=30),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True),
    st.booleans(),
    st.lists(st.text(max_size=70), max_size=3),
    st.just("0x" + "ab" * 32),
    st.just("cd" * 32),
    st.just(["0x" + "11" * 20, "0x" + "ef" * 32]),
)


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return {float("inf"): "inf", float("-inf"): "-inf"}.get(value, "nan" if value != value else repr(value))
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value) if isinstance(value, str) else str(value)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    top=st.dictionaries(TOML_KEYS, TOML_VALUES, max_size=3),
    tables=st.dictionaries(
        st.sampled_from(["server.run", "verifier.run", "verifier", "deploy", "sever", "server.run.x", "status"]),
        st.dictionaries(TOML_KEYS, TOML_VALUES, max_size=3),
        max_size=2,
    ),
    raw=st.none() | st.binary(max_size=40),
    command=st.sampled_from([["status"], ["server", "run"], ["verifier", "run"], ["deploy"]]),
)
def test_any_config_file_is_applied_or_refused_with_an_efed_error(tmp_path, top, tables, raw, command):
    lines = [f"{json.dumps(k)} = {toml_value(v)}" for k, v in top.items()]
    for table, keys in tables.items():
        lines += [f"[{table}]", *(f"{json.dumps(k)} = {toml_value(v)}" for k, v in keys.items())]
    file = tmp_path / "efedllm.toml"
    file.write_bytes(raw if raw is not None else "\n".join(lines).encode())
    try:
        config.apply(build_parser(), ["--config", str(file), *command])
    except EfedError as exc:
        assert "\n" not in str(exc)
        return
    written = [] if raw is not None else [top, *tables.values()]
    secrets = [k for keys in written for k in keys if config.SECRET_NAMES.match(k.replace("_", "-"))]
    assert not secrets, f"a key named like a secret was accepted: {secrets}"
