"""``efedllm chain up``: run a local dev chain (Anvil or Ganache, from the project's npm packages) until Ctrl-C."""

from __future__ import annotations

import argparse
import os
from urllib.parse import urlsplit

from efedllm.chain.node import DEV_BLOCK_TIME, NODE_KINDS, LocalNode, NodeConfig
from efedllm.cli.common import StopSignal
from efedllm.cli.dev_accounts import dev_accounts_report
from efedllm.cli.flags import add_dataclass_options, dataclass_from_args


def register(subparsers) -> None:
    chain = subparsers.add_parser("chain", help="local development chain")
    sub = chain.add_subparsers(dest="chain_command", required=True, metavar="COMMAND")
    up = sub.add_parser("up", help="start a local dev chain node (Anvil or Ganache) and keep it running until Ctrl-C")
    up.add_argument(
        "--node",
        dest="kind",
        choices=NODE_KINDS,
        default=NodeConfig.kind,
        help="which EVM node to run (default: %(default)s)",
    )
    add_dataclass_options(
        up,
        NodeConfig,
        skip=("kind", "chain_id", "balance_ether", "gas_limit"),
        defaults={"block_time": DEV_BLOCK_TIME, "port": env_port()},
        help={
            "port": "RPC port; 0 picks a free port (the port of $EFEDLLM_RPC_URL when it names this machine, "
            "so the node listens where every other command looks)",
            "block_time": "seconds between blocks, so that the chain's clock (epochs and their windows) moves while "
            "nobody sends a transaction; 0: a block per transaction only, the clock stands still",
        },
    )
    up.set_defaults(run=run_up)


def env_port() -> int:
    """The port of ``$EFEDLLM_RPC_URL`` when it names this machine, else the node's default."""
    url = urlsplit(os.environ.get("EFEDLLM_RPC_URL", ""))
    if url.hostname in ("127.0.0.1", "localhost") and url.port:
        return url.port
    return NodeConfig.port


def run_up(args: argparse.Namespace) -> int:
    config = dataclass_from_args(NodeConfig, args, block_time=args.block_time or None)
    stop = StopSignal()
    with LocalNode(config) as node:
        print(f"{node.kind} listening on {node.url} (chain id {node.chain_id}, {config.accounts} funded accounts)")
        print(dev_accounts_report(node.url))
        clock = (
            f"a block every {config.block_time:g}s keeps the chain's clock moving"
            if config.block_time
            else "a block per transaction only: the chain's clock stands still while nobody sends one"
        )
        print(clock)
        print("deploy with: efedllm deploy --rpc-url", node.url, flush=True)
        stop.wait(node.process)
        print(f"stopping {node.kind}", flush=True)
    return 0
