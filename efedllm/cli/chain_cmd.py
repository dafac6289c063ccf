"""``efedllm chain up``: run a local dev chain (Anvil or Ganache, from the project's npm packages) until Ctrl-C."""

from __future__ import annotations

import argparse
from pathlib import Path

from efedllm.chain.node import DEFAULT_PORT, NODE_KINDS, LocalNode, NodeConfig
from efedllm.cli.common import StopSignal
from efedllm.cli.dev_accounts import dev_accounts_report


def register(subparsers) -> None:
    chain = subparsers.add_parser("chain", help="local development chain")
    sub = chain.add_subparsers(dest="chain_command", required=True, metavar="COMMAND")
    up = sub.add_parser("up", help="start a local dev chain node (Anvil or Ganache) and keep it running until Ctrl-C")
    up.add_argument("--node", choices=NODE_KINDS, default="anvil", help="which EVM node to run (default: %(default)s)")
    up.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)")
    up.add_argument("--port", type=int, default=DEFAULT_PORT, help="RPC port (default: %(default)s)")
    up.add_argument("--accounts", type=int, default=20, help="funded dev accounts (default: %(default)s)")
    up.add_argument(
        "--block-time", type=float, default=None, help="seconds between blocks (default: a block per transaction)"
    )
    up.add_argument(
        "--hardfork",
        default=None,
        help="EVM rules the node runs, e.g. shanghai (default: the node's own; Ganache: shanghai)",
    )
    up.add_argument(
        "--state",
        type=Path,
        default=None,
        help="keep the chain here (Anvil: a file, Ganache: a folder): loaded at start when it exists, "
        "saved as the node runs or stops, so the chain (and its clock) survives a restart "
        "(default: the chain is lost on exit)",
    )
    up.set_defaults(run=run_up)


def run_up(args: argparse.Namespace) -> int:
    config = NodeConfig(
        kind=args.node,
        host=args.host,
        port=args.port,
        accounts=args.accounts,
        block_time=args.block_time,
        hardfork=args.hardfork,
        state=args.state,
    )
    stop = StopSignal()
    with LocalNode(config) as node:
        print(f"{node.kind} listening on {node.url} (chain id {node.chain_id}, {config.accounts} funded accounts)")
        print(dev_accounts_report(node.url))
        print("deploy with: efedllm deploy --rpc-url", node.url, flush=True)
        stop.wait(node.process)
        print(f"stopping {node.kind}", flush=True)
    return 0
