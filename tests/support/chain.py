"""Chain fixtures shared by the test suites that run real chains (tests/python, tests/network, tests/browser): a
real dev chain per test module (Anvil unless the module asks for another node kind), contracts compiled once per
session, and where a module's processes keep their files.

A suite's conftest.py imports them by name (``from tests.support.chain import *``). A module chooses its
deployment with two constants instead of copies of these fixtures: ``PARAMS`` (the protocol parameters, default
``ProtocolParams()``) and ``VERIFIERS`` (the node accounts granted VERIFIER_ROLE and staked with minVerifierStake,
default ``(9,)``); it overrides
a fixture (``anvil``, ``deployment``) by defining one of the same name only where it needs another kind. A module
runs on every node kind with ``pytestmark = pytest.mark.parametrize("node_kind", NODE_KINDS, scope="module")``;
the chain fixture keeps its name ``anvil`` whichever node it is."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from web3 import Web3

from efedllm.chain.compile import compile_contracts
from efedllm.chain.connection import Signer, connect
from efedllm.chain.deploy import deploy
from efedllm.chain.node import NODE_KINDS, LocalNode, NodeConfig
from efedllm.chain.params import ProtocolParams
from efedllm.chain.protocol import Protocol
from efedllm.chain.transactions import ErrorDecoder, Transactor
from efedllm.localnet import chain_args
from efedllm.verifier.stake import stake_node_verifiers

__all__ = [
    "NODE_KINDS",
    "Network",
    "anvil",
    "artifacts",
    "deployment",
    "network_files",
    "node_kind",
    "params",
    "protocol_for",
    "verifier_accounts",
    "w3",
]


@pytest.fixture(scope="session")
def artifacts():
    return compile_contracts()


@pytest.fixture(scope="module")
def node_kind() -> str:
    """Which dev chain node the module's chain is (parametrize it to run a module on several)."""
    return "anvil"


@pytest.fixture(scope="module")
def anvil(node_kind):
    """The module's dev chain node (Anvil by default; see ``node_kind``)."""
    with LocalNode(NodeConfig(kind=node_kind, port=0, accounts=10)) as node:
        yield node


@pytest.fixture(scope="module")
def w3(anvil) -> Web3:
    return connect(anvil.url)


@pytest.fixture(scope="module")
def params(request) -> ProtocolParams:
    """The module's ``PARAMS``, or the defaults."""
    return getattr(request.module, "PARAMS", ProtocolParams())


@pytest.fixture(scope="module")
def verifier_accounts(request) -> tuple[int, ...]:
    """The node accounts granted VERIFIER_ROLE at deployment: the module's ``VERIFIERS``, or account 9."""
    return tuple(getattr(request.module, "VERIFIERS", (9,)))


@pytest.fixture(scope="module")
def deployment(w3, artifacts, params, verifier_accounts):
    governor = Signer(w3.eth.accounts[0])
    tx = Transactor(w3, governor, ErrorDecoder(a.abi for a in artifacts.values()))
    verifiers = [w3.eth.accounts[v] for v in verifier_accounts]
    deployment = deploy(w3, tx, params=params, artifacts=artifacts, verifiers=verifiers)
    stake_node_verifiers(w3, deployment, verifiers)
    return deployment


@pytest.fixture
def protocol_for(w3, deployment):
    """protocol_for(i): bindings signing as the node's account i."""
    return lambda i: Protocol(w3, deployment, Signer(w3.eth.accounts[i]))


@dataclass(frozen=True)
class Network:
    """Where a module's server and verifier processes keep their files, and the options that put them on chain."""

    root: Path
    deployment_path: Path
    rpc_url: str

    def args(self, account: int) -> list[str]:
        return chain_args(rpc_url=self.rpc_url, deployment=self.deployment_path, account=account, data_dir=self.root)


@pytest.fixture(scope="module")
def network_files(anvil, deployment, tmp_path_factory) -> Network:
    root = tmp_path_factory.mktemp("network")
    return Network(root, deployment.save(root / "deployments"), anvil.url)
