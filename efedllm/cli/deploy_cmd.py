"""``efedllm deploy``: compile, deploy to an RPC URL, write the deployment file of that chain id."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from efedllm.chain.compile import compile_contracts
from efedllm.chain.connection import connect, load_signer
from efedllm.chain.deploy import deploy
from efedllm.chain.params import ProtocolParams
from efedllm.chain.protocol import Protocol
from efedllm.chain.transactions import ErrorDecoder, Transactor
from efedllm.cli.common import add_chain_options
from efedllm.cli.status_cmd import print_deployment


PARAM_HELP = {
    "num_layers": "transformer layers of the served model",
    "epoch_length": "seconds of an epoch's work phase",
    "commit_work_window": "seconds after an epoch for servers to commit their work",
    "commit_scores_window": "seconds after that for verifiers to commit scores",
    "reveal_window": "seconds after that for verifiers to reveal them",
    "finalize_window": "seconds after that to finalize the epoch's scores",
    "genesis": "unix time epoch 0 starts; 0: the deployment block",
    "min_stake": "least bonded stake of an active server, in wei",
    "unbonding_period": "seconds unstaked ether stays slashable before it can be withdrawn",
    "slash_fraction": "share of bonded plus unbonding stake slashed on deactivation, 1e18 = 100%%",
    "theta": "θ: least trust score S_i that keeps a server active and paid, 1e18 = 1.0",
    "min_verifiers": "revealed accuracies needed to score a server in an epoch",
    "immunity_epochs": "epochs after registering in which a low score is not slashed",
}


def register(subparsers) -> None:
    parser = subparsers.add_parser("deploy", help="compile and deploy the contracts, write the deployment file")
    add_chain_options(parser, signs=True, reads_deployment=False)
    parser.add_argument("--out", type=Path, default=None,
                        help="directory for <chain id>.json (default: $EFEDLLM_DEPLOYMENTS or ./deployments)")
    parser.add_argument("--verifier", action="append", default=[], metavar="ADDRESS",
                        help="grant VERIFIER_ROLE to ADDRESS (repeatable; default: no verifiers)")
    defaults = ProtocolParams()
    group = parser.add_argument_group("protocol parameters (fractions in 18-decimal fixed point, times in s, stake in wei)")
    for f in fields(ProtocolParams):
        group.add_argument(f"--{f.name.replace('_', '-')}", type=int, default=getattr(defaults, f.name),
                           help=f"{PARAM_HELP[f.name]} (default: %(default)s)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    params = ProtocolParams(**{f.name: getattr(args, f.name) for f in fields(ProtocolParams)})
    w3 = connect(args.rpc_url)
    signer = load_signer(w3, keystore=args.keystore, node_account=args.node_account)
    print("compiling contracts ...", flush=True)
    artifacts = compile_contracts()
    tx = Transactor(w3, signer, ErrorDecoder(a.abi for a in artifacts.values()))
    deployment = deploy(w3, tx, params=params, artifacts=artifacts, verifiers=args.verifier,
                        progress=lambda message: print(" ", message, flush=True))
    path = deployment.save(args.out)
    print(f"wrote {path}")
    print_deployment(Protocol(w3, deployment), path=path)
    return 0

