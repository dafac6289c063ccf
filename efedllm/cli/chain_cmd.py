"""``efedllm chain up``: run a local Anvil chain from the project's npm packages until Ctrl-C."""

from __future__ import annotations

import argparse
from pathlib import Path

from efedllm.chain.anvil import DEFAULT_PORT, Anvil, AnvilConfig
from efedllm.cli.common import StopSignal
from efedllm.cli.dev_accounts import dev_accounts_report


def register(subparsers) -> None:
    chain = subparsers.add_parser("chain", help="local development chain")
    sub = chain.add_subparsers(dest="chain_command", required=True, metavar="COMMAND")
    up = sub.add_parser("up", help="start a local Anvil node and keep it running until Ctrl-C")
    up.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)")
    up.add_argument("--port", type=int, default=DEFAULT_PORT, help="RPC port (default: %(default)s)")
    up.add_argument("--accounts", type=int, default=20, help="funded dev accounts (default: %(default)s)")
    up.add_argument("--block-time", type=float, default=None,
                    help="seconds between blocks (default: a block per transaction)")
    up.add_argument("--state", type=Path, default=None,
                    help="keep the chain in this file: loaded at start when it exists, saved when the node stops, "
                         "so the chain (and its clock) survives a restart (default: the chain is lost on exit)")
    up.set_defaults(run=run_up)


def run_up(args: argparse.Namespace) -> int:
    config = AnvilConfig(host=args.host, port=args.port, accounts=args.accounts, block_time=args.block_time,
                         state=args.state)
    stop = StopSignal()
    with Anvil(config) as anvil:
        print(f"anvil listening on {anvil.url} (chain id {config.chain_id}, {config.accounts} funded accounts)")
        print(dev_accounts_report(anvil.url))
        print("deploy with: efedllm deploy --rpc-url", anvil.url, flush=True)
        stop.wait(anvil.process)
        print("stopping anvil", flush=True)
    return 0
