"""``efedllm deploy``: compile, deploy to an RPC URL, write the deployment file of that chain id."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from efedllm.chain.compile import compile_contracts
from efedllm.chain.connection import connect, load_signer
from efedllm.chain.deploy import check_deployable, deploy
from efedllm.chain.params import ProtocolParams
from efedllm.chain.protocol import Protocol
from efedllm.chain.transactions import ErrorDecoder, Transactor
from efedllm.cli.common import add_chain_options
from efedllm.cli.flags import add_dataclass_options, dataclass_from_args
from efedllm.cli.status_cmd import print_deployment


def register(subparsers) -> None:
    parser = subparsers.add_parser("deploy", help="compile and deploy the contracts, write the deployment file")
    add_chain_options(parser, signs=True, reads_deployment=False)
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="directory for <chain id>.json (default: $EFEDLLM_DEPLOYMENTS or ./deployments)",
    )
    parser.add_argument(
        "--verifier",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="grant VERIFIER_ROLE to ADDRESS (repeatable; default: no verifiers)",
    )
    group = parser.add_argument_group(
        "protocol parameters (fractions in 18-decimal fixed point, times in s, stake in ETH)"
    )
    add_dataclass_options(group, ProtocolParams)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    params = dataclass_from_args(ProtocolParams, args)
    verifiers = check_deployable(params, args.verifier)  # before connecting, compiling or sending anything
    w3 = connect(args.rpc_url)
    signer = load_signer(w3, keystore=args.keystore, node_account=args.node_account)
    if not verifiers:
        print(
            "efedllm: warning: no --verifier: nobody can score servers, so none is scored or paid until the "
            "governor runs `efedllm admin grant-verifier ADDRESS`",
            file=sys.stderr,
            flush=True,
        )
    print("compiling contracts ...", flush=True)
    artifacts = compile_contracts()
    tx = Transactor(w3, signer, ErrorDecoder(a.abi for a in artifacts.values()))
    deployment = deploy(
        w3,
        tx,
        params=params,
        artifacts=artifacts,
        verifiers=verifiers,
        progress=lambda message: print(" ", message, flush=True),
    )
    path = deployment.save(args.out)
    print(f"wrote {path}")
    print_deployment(Protocol(w3, deployment), path=path)
    return 0
