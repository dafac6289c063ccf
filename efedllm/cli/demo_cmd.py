"""``efedllm demo``: the main job. For now (until servers, verifiers and a client exist) it starts a local
Anvil, deploys the contracts to it, funds the first epoch's reward pool from a client account, and shows the
deployment and the chain's state. It stops the chain on exit unless --keep is given."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from efedllm.chain.anvil import Anvil, AnvilConfig
from efedllm.chain.compile import compile_contracts
from efedllm.chain.connection import Signer, connect
from efedllm.chain.deploy import deploy
from efedllm.chain.params import ETHER, ProtocolParams
from efedllm.chain.protocol import Protocol
from efedllm.chain.transactions import ErrorDecoder, Transactor
from efedllm.cli.common import StopSignal, ether
from efedllm.cli.status_cmd import print_deployment, print_servers


def register(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="run a local eFedLLM network (chain + contracts) and show it")
    parser.add_argument("--port", type=int, default=0, help="Anvil RPC port (default: a free port)")
    parser.add_argument("--out", type=Path, default=Path("deployments"),
                        help="directory for the deployment file (default: %(default)s)")
    parser.add_argument("--fund", type=float, default=10.0, help="ETH a client puts in epoch 0's pool (default: %(default)s)")
    parser.add_argument("--keep", action="store_true", help="keep the chain running until Ctrl-C")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    stop = StopSignal()
    with Anvil(AnvilConfig(port=args.port)) as anvil:
        print(f"[1/3] local chain: anvil at {anvil.url}", flush=True)
        w3 = connect(anvil.url)
        governor, client = w3.eth.accounts[0], w3.eth.accounts[1]
        print("[2/3] compiling and deploying contracts", flush=True)
        artifacts = compile_contracts()
        decoder = ErrorDecoder(a.abi for a in artifacts.values())
        deployment = deploy(w3, Transactor(w3, Signer(governor), decoder), params=ProtocolParams(),
                            artifacts=artifacts, progress=lambda m: print("     ", m, flush=True))
        path = deployment.save(args.out)
        protocol = Protocol(w3, deployment, Signer(client))
        epoch = protocol.current_epoch()
        amount = int(args.fund * ETHER)
        protocol.tx.send(protocol.pool.functions.fundEpoch(epoch), value=amount, label="fundEpoch")
        print(f"[3/3] client {client} funded epoch {epoch} with {ether(amount)}", flush=True)
        print_deployment(protocol, path=path)
        print_servers(protocol)
        print(f"\ndone in {time.monotonic() - started:.1f}s; deployment file: {path}")
        if args.keep:
            print(f"chain running at {anvil.url}; Ctrl-C to stop", flush=True)
            stop.wait(anvil.process)
    return 0
