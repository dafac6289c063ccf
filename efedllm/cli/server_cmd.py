"""``efedllm server``: a GPU provider's commands. ``run`` serves a span of layers; ``claim`` pulls rewards;
``status``, ``stake``, ``unstake`` and ``withdraw`` manage the on-chain account (server_account.py)."""

from __future__ import annotations

import argparse
import errno
import socket
from dataclasses import fields

from efedllm.aids.config import COMPUTE_AS, KINDS, FaultConfig
from efedllm.chain.params import ETHER
from efedllm.cli import server_account
from efedllm.cli.common import add_chain_options, add_logging_options, open_protocol, setup_logging
from efedllm.cli.flags import add_dataclass_options, dataclass_from_args
from efedllm.cli.stake_account import register_claim_command
from efedllm.errors import EfedError
from efedllm.layers import parse_span
from efedllm.model.source import DEFAULT_MODEL
from efedllm.server.config import ServerConfig, ServerLimits


def say(message: str) -> None:
    print(message, flush=True)


def register(subparsers) -> None:
    parser = subparsers.add_parser("server", help="serve layers of the model for rewards; manage stake; claim")
    commands = parser.add_subparsers(dest="server_command", required=True, metavar="ACTION")
    _register_run(commands)
    register_claim_command(
        commands,
        "server",
        help="claim this server's pool rewards for every settled epoch and withdraw the client fees it redeemed",
        fees=True,
    )
    server_account.register(commands)


def _register_run(commands) -> None:
    parser = commands.add_parser("run", help="serve a span of the model's layers and register it on chain")
    parser.add_argument(
        "--model", default=DEFAULT_MODEL, help="packaged model name or Hugging Face folder (default: %(default)s)"
    )
    parser.add_argument(
        "--layers",
        required=True,
        metavar="START:END",
        help="layers to serve, e.g. 10:20 (END exclusive; required, no default: "
        "`efedllm status` shows uncovered layers)",
    )
    add_dataclass_options(parser, ServerConfig, only=("host", "port", "public_url", "device", "data_dir"))
    parser.add_argument("--stake", type=float, default=1.0, help="ETH staked when registering (default: %(default)s)")
    parser.add_argument(
        "--no-chain",
        action="store_true",
        help="serve without registering on chain (development: clients must be given --servers; default: register)",
    )
    add_dataclass_options(parser, ServerConfig, only=("rebalance", "max_layers", "auto_claim", "price"))
    add_dataclass_options(
        parser.add_argument_group("precision (declared on chain; docs/GPU_PROVIDERS.md)"),
        ServerConfig,
        only=("dtype", "quantize"),
    )
    weights = parser.add_argument_group("weights from a weight source (efedllm weights serve)")
    add_dataclass_options(
        weights, ServerConfig, only=("weights_from", "weights_codec", "weights_energy", "weights_ratio")
    )
    add_dataclass_options(parser.add_argument_group("limits"), ServerLimits)
    _add_fault_options(parser)
    add_logging_options(parser)
    add_chain_options(parser, signs=True)
    parser.set_defaults(run=run)


# --- TEST AIDS (--fault): kept in this one block ---------------------------------------------------------------


def _add_fault_options(parser) -> None:
    default = {f.name: f.default for f in fields(FaultConfig)}  # the dataclass owns the defaults
    faults = parser.add_argument_group(
        "TEST AIDS: misbehave on purpose, to show that verifiers catch it (never use these for real)"
    )
    faults.add_argument(
        "--fault",
        choices=KINDS,
        default=None,
        help="noise: perturb outputs; replay: return another step's output; skip: skip the layers; "
        "inflate: claim more work units; refuse: refuse openings; equivocate: record right, serve wrong; "
        "lower: compute as --fault-as, not as declared; layer: skip the span's last layer; model: perturb every "
        "weight by --fault-scale of its std; svd: cut every matrix to 95%% of its energy (default: none)",
    )
    faults.add_argument(
        "--fault-as",
        choices=COMPUTE_AS,
        default=default["compute_as"],
        help="what lower computes as instead of the declared --dtype/--quantize (default: %(default)s)",
    )
    faults.add_argument(
        "--fault-rate",
        type=float,
        default=default["rate"],
        help="fraction of steps affected, or extra work units claimed for inflate (default: %(default)s)",
    )
    faults.add_argument(
        "--fault-scale",
        type=float,
        default=default["scale"],
        help="noise standard deviation relative to the output's (default: %(default)s)",
    )
    faults.add_argument(
        "--fault-seed",
        type=int,
        default=default["seed"],
        help="random seed choosing the steps affected (default: %(default)s)",
    )


def _fault(args: argparse.Namespace) -> FaultConfig | None:
    if not args.fault:
        return None
    return FaultConfig(
        kind=args.fault, rate=args.fault_rate, scale=args.fault_scale, seed=args.fault_seed, compute_as=args.fault_as
    )


# --- end of TEST AIDS --------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    progress = setup_logging(args, name="efedllm.server")
    first, count = parse_span(args.layers)
    config = dataclass_from_args(
        ServerConfig,
        args,
        model=args.model,
        first_layer=first,
        num_layers=count,
        limits=dataclass_from_args(ServerLimits, args),
    )
    fault = _fault(args)
    sock = listen(config.host, config.port)  # before the chain: a port in use must cost no register or stake
    protocol = None if args.no_chain else open_protocol(args, signs=True)
    stake = int(args.stake * ETHER)
    if protocol is not None:
        total = protocol.registry.functions.NUM_LAYERS().call()
        parse_span(args.layers, total)
        server_account.check_registration(protocol, endpoint=config.endpoint, first=first, count=count, stake=stake)
    from efedllm.server.main import run as run_server  # torch loads only for this command

    extensions = ()
    if fault is not None:  # a test aid, installed from here only
        from efedllm.aids.faults import install_server_aid

        extensions = (lambda parts: install_server_aid(parts, fault, progress=progress),)
    run_server(config, protocol=protocol, stake=stake, progress=progress, extensions=extensions, sock=sock)
    return 0


def listen(host: str, port: int) -> socket.socket:
    """The server's listening socket, bound first: a port in use fails here, before anything is sent on chain."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        why = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc)).lower()
        raise EfedError(f"cannot listen on {host}:{port}: {why}") from None
