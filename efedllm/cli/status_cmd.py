"""``efedllm status``: the deployment, the epoch, parameters, servers and coverage, read from the chain."""

from __future__ import annotations

import argparse
from pathlib import Path

from efedllm.chain.protocol import Protocol
from efedllm.cli.common import add_chain_options, ether, fixed, open_protocol, table
from efedllm.layers import compact_layers

FRACTIONS = {"slashFraction", "theta"}
WEI = {"minStake"}


def register(subparsers) -> None:
    parser = subparsers.add_parser("status", help="show the deployment, epoch, servers, coverage and pools")
    add_chain_options(parser, signs=False)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    protocol = open_protocol(args, signs=False)
    print_deployment(protocol, path=args.deployment)
    print_servers(protocol)
    return 0


def print_deployment(protocol: Protocol, *, path: Path | None = None) -> None:
    d = protocol.deployment
    where = f" ({path})" if path else ""
    print(f"\neFedLLM deployment on chain {d.chain_id}{where}, governor {d.governor}, from block {d.block}")
    print(table(["contract", "address"], [[name, rec.address] for name, rec in d.contracts.items()]))
    params = protocol.parameters()
    rows = []
    for name, value in params.items():
        shown = fixed(value) if name in FRACTIONS else ether(value) if name in WEI else value
        rows.append([name, shown])
    print()
    print(table(["parameter", "value"], rows))


def print_servers(protocol: Protocol) -> None:
    epoch = protocol.current_epoch()
    print(
        f"\nepoch {epoch} ({protocol.phase(epoch).name.lower()}), "
        f"pool of this epoch {ether(protocol.pool.functions.poolSize(epoch).call())}"
    )
    servers = protocol.servers()
    if not servers:
        print("no servers registered yet")
    else:
        rows = [
            [
                s.address,
                s.endpoint,
                f"{s.first_layer}:{s.first_layer + s.num_layers}",
                s.status.name.lower(),
                ether(s.stake),
                ether(s.unbonding),
                s.times_slashed,
            ]
            for s in servers
        ]
        print(table(["server", "endpoint", "layers", "status", "stake", "unbonding", "slashed"], rows))
    missing = protocol.missing_layers()
    total = len(protocol.coverage())
    print(
        f"coverage: {total - len(missing)}/{total} layers served"
        + (f"; uncovered: {compact_layers(missing)}" if missing else "")
    )
