"""``efedllm status``: the deployment, the epoch, parameters, servers and coverage, read from the chain."""

from __future__ import annotations

import argparse
from pathlib import Path

from efedllm.chain.enums import Phase, SlashingRule
from efedllm.chain.explain import utc
from efedllm.chain.protocol import Protocol, ServerRecord, Status
from efedllm.cli.common import add_chain_options, ether, fixed, open_protocol, table
from efedllm.layers import compact_layers

FRACTIONS = {"slashFraction", "theta", "verifierSlashFraction", "kappa", "verifierShare"}
WEI = {"minStake", "minVerifierStake"}


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
        if name == "slashingRule":
            shown = f"{SlashingRule(value).label} below theta slashes"
        rows.append([name, shown])
    print()
    print(table(["parameter", "value"], rows))


def print_clock(protocol: Protocol) -> None:
    """The current epoch, its phase and the time left in it, and the earlier epochs still settling (their windows
    run on while the next epochs work; their rewards are claimable once settled), all read at the latest block."""
    block = protocol.w3.eth.get_block("latest")
    now, number = block["timestamp"], block["number"]
    epoch = protocol.schedule.functions.currentEpoch().call(block_identifier=number)
    print(f"\nchain time {utc(now)} (block {number})")
    rows = []
    for e in range(epoch, max(-1, epoch - 5), -1):
        phase = Phase(protocol.schedule.functions.phase(e).call(block_identifier=number))
        if e < epoch and phase == Phase.SETTLED:
            break
        ends = protocol.windows(e).end(phase)
        pool = ether(protocol.pool.functions.poolSize(e).call(block_identifier=number))
        rows.append([e, phase.name.lower().replace("_", "-"), f"{duration(ends - now)} left", pool])
    print(table(["epoch", "phase", "until the next phase", "pool"], rows))


def duration(seconds: int) -> str:
    seconds = max(0, seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m{rest % 60:02d}s" if hours else f"{rest // 60}m{rest % 60:02d}s"


def print_servers(protocol: Protocol) -> None:
    print_clock(protocol)
    servers = protocol.servers()
    if not servers:
        print("no servers registered yet")
    else:
        rows = [
            [
                s.address,
                s.endpoint,
                f"{s.first_layer}:{s.first_layer + s.num_layers}",
                s.serving.label,
                s.status.name.lower(),
                ether(s.stake),
                ether(s.unbonding),
                s.times_slashed,
            ]
            for s in servers
        ]
        print(table(["server", "endpoint", "layers", "serving", "status", "stake", "unbonding", "slashed"], rows))
        for line in shared_endpoints(servers):
            print(line)
    missing = protocol.missing_layers()
    total = len(protocol.coverage())
    print(
        f"coverage: {total - len(missing)}/{total} layers served"
        + (f"; uncovered: {compact_layers(missing)}" if missing else "")
    )


def shared_endpoints(servers: list[ServerRecord]) -> list[str]:
    """A warning for each endpoint announced by more than one server that is not deactivated: at most one of
    them answers there, and the others are slashed as unreachable or for its answers."""
    groups: dict[str, list[ServerRecord]] = {}
    for s in servers:
        if s.status in (Status.ACTIVE, Status.INACTIVE):
            groups.setdefault(s.endpoint.rstrip("/").lower(), []).append(s)
    return [
        f"warning: {len(group)} servers share the endpoint {group[0].endpoint}: "
        + ", ".join(f"{s.address} ({s.status.name.lower()})" for s in group)
        for group in groups.values()
        if len(group) > 1
    ]
