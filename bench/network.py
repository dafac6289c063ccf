"""A chain for benchmarks that need one (paid steps): Anvil with the contracts deployed, servers registered on it,
and a client account with a deposit. Shared by bench/inference.py ``--receipts`` and bench/load.py ``--pay``."""

from __future__ import annotations

import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from efedllm.chain.anvil import free_port
from efedllm.chain.compile import compile_contracts
from efedllm.chain.connection import Signer, connect
from efedllm.chain.deploy import deploy
from efedllm.chain.node import LocalNode, NodeConfig
from efedllm.chain.protocol import Protocol
from efedllm.chain.transactions import ErrorDecoder, Transactor
from efedllm.localnet import WALKED_PARAMS, ServerProcess, chain_args

PRICE = 1_000
"""Wei per token-layer of a priced server."""
CLIENT_ACCOUNT = 8


@dataclass(frozen=True)
class ChainNetwork:
    url: str
    deployment_path: Path
    work: Path
    protocol: Protocol

    def server(self, account: int, span: str, *, price: int, args: tuple[str, ...] = ()) -> ServerProcess:
        """A server of ``span`` (not started yet) run by the node's account ``account``, at ``price``."""
        chain = chain_args(rpc_url=self.url, deployment=self.deployment_path, account=account, data_dir=self.work)
        return ServerProcess(
            span, free_port(), [*chain, "--price", str(price), *args], log_path=self.work / f"server-{account}.log"
        )

    def client(self, *, account: int = CLIENT_ACCOUNT, deposit: int = 10**18) -> Protocol:
        """The node's account ``account`` as a paying client, with ``deposit`` wei in Payments."""
        w3 = self.protocol.w3
        client = Protocol(w3, self.protocol.deployment, Signer(w3.eth.accounts[account]))
        client.tx.send(client.payments.functions.deposit(), value=deposit, label="deposit")
        return client


def chain_network(stack: ExitStack) -> ChainNetwork:
    """Anvil with the contracts deployed (closed with ``stack``)."""
    node = stack.enter_context(LocalNode(NodeConfig(port=0)))
    work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="efedllm-bench-")))
    w3 = connect(node.url)
    artifacts = compile_contracts()
    tx = Transactor(w3, Signer(w3.eth.accounts[0]), ErrorDecoder(a.abi for a in artifacts.values()))
    deployment = deploy(w3, tx, params=WALKED_PARAMS, artifacts=artifacts, verifiers=[w3.eth.accounts[9]])
    path = deployment.save(work / "deployments")
    return ChainNetwork(url=node.url, deployment_path=path, work=work, protocol=Protocol(w3, deployment))
