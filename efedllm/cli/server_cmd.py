"""``efedllm server``: a GPU provider's commands. ``run`` serves a span of layers; ``claim`` pulls rewards;
``status``, ``stake``, ``unstake`` and ``withdraw`` manage the on-chain account (server_account.py)."""

from __future__ import annotations

import argparse
from dataclasses import fields

from efedllm.chain.params import ETHER
from efedllm.errors import EfedError
from efedllm.cli import server_account
from efedllm.cli.common import add_chain_options, add_logging_options, ether, open_protocol, setup_logging
from efedllm.layers import parse_span
from efedllm.model.source import DEFAULT_MODEL
from efedllm.aids.config import KINDS, FaultConfig
from efedllm.server.config import ServerConfig, ServerLimits


LIMIT_HELP = {
    "max_sessions": "inference sessions open at once; more get HTTP 429",
    "max_sequence": "tokens one session may hold, prompt and generated; more get HTTP 413",
    "max_step_tokens": "tokens in one forward step",
    "max_body_bytes": "largest request body accepted, in bytes",
    "max_cache_bytes": "KV-cache memory of all sessions together, in bytes; a step beyond it gets HTTP 507",
    "session_ttl": "seconds a session may stay idle before it is dropped",
    "step_timeout": "seconds one forward step may take",
}


def say(message: str) -> None:
    print(message, flush=True)


def register(subparsers) -> None:
    parser = subparsers.add_parser("server", help="serve layers of the model for rewards; manage stake; claim")
    commands = parser.add_subparsers(dest="server_command", required=True, metavar="ACTION")
    _register_run(commands)
    claim = commands.add_parser("claim", help="claim this server's rewards for every settled epoch")
    claim.add_argument("--epochs", default=None, metavar="E,E,...",
                       help="claim only these epochs (default: every settled epoch with an unclaimed share)")
    add_chain_options(claim, signs=True)
    claim.set_defaults(run=run_claim)
    server_account.register(commands)


def _register_run(commands) -> None:
    parser = commands.add_parser("run", help="serve a span of the model's layers and register it on chain")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="packaged model name or Hugging Face folder (default: %(default)s)")
    parser.add_argument("--layers", required=True, metavar="START:END",
                        help="layers to serve, e.g. 10:20 (END exclusive; required, no default: "
                             "`efedllm status` shows uncovered layers)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default: %(default)s)")
    parser.add_argument("--public-url", default=None, help="endpoint announced on chain (default: http://HOST:PORT)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda when present, else cpu)")
    parser.add_argument("--data-dir", default="efedllm-data",
                        help="where task records are kept; keep it across restarts (default: %(default)s)")
    parser.add_argument("--stake", type=float, default=1.0, help="ETH staked when registering (default: %(default)s)")
    parser.add_argument("--no-chain", action="store_true",
                        help="serve without registering on chain (development: clients must be given --servers; "
                             "default: register)")
    parser.add_argument("--rebalance", action="store_true",
                        help="move to layers nobody serves when this server's layers are also served by others "
                             "(default: off)")
    parser.add_argument("--max-layers", type=int, default=None,
                        help="most layers to take on when rebalancing (default: as many as it serves now)")
    parser.add_argument("--auto-claim", action="store_true", help="claim rewards as epochs settle (default: off)")
    weights = parser.add_argument_group("weights from a weight source (efedllm weights serve)")
    weights.add_argument("--weights-from", default=None, metavar="URL",
                         help="fetch this span's weights from a weight source, every checksum verified, instead of "
                              "loading the local model (default: the local model)")
    weights.add_argument("--weights-codec", choices=("raw", "float16", "bfloat16", "svd"), default="raw",
                         help="how the weights travel: raw float32 (lossless), float16, bfloat16 or svd factors "
                              "(default: %(default)s)")
    weights.add_argument("--weights-energy", type=float, default=None, metavar="E",
                         help="svd: keep this share of each matrix's energy, eq. 12 (default: none; give this or --weights-ratio)")
    weights.add_argument("--weights-ratio", type=float, default=None, metavar="R",
                         help="svd: factor each matrix to this share of its size, eq. 15 (default: none)")
    limits = parser.add_argument_group("limits")
    defaults = ServerLimits()
    for f in fields(ServerLimits):
        limits.add_argument(f"--{f.name.replace('_', '-')}", type=type(getattr(defaults, f.name)),
                            default=getattr(defaults, f.name), help=f"{LIMIT_HELP[f.name]} (default: %(default)s)")
    faults = parser.add_argument_group(
        "TEST AIDS: misbehave on purpose, to show that verifiers catch it (never use these for real)")
    faults.add_argument("--fault", choices=KINDS, default=None,
                        help="noise: perturb outputs; replay: return another step's output; skip: skip the layers; "
                             "inflate: claim more work units; refuse: refuse openings (default: none)")
    faults.add_argument("--fault-rate", type=float, default=1.0,
                        help="fraction of steps affected, or extra work units claimed for inflate (default: %(default)s)")
    faults.add_argument("--fault-scale", type=float, default=0.05,
                        help="noise standard deviation relative to the output's (default: %(default)s)")
    faults.add_argument("--fault-seed", type=int, default=0,
                        help="random seed choosing the steps affected (default: %(default)s)")
    add_logging_options(parser)
    add_chain_options(parser, signs=True)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    progress = setup_logging(args, name="efedllm.server")
    first, count = parse_span(args.layers)
    limits = ServerLimits(**{f.name: getattr(args, f.name) for f in fields(ServerLimits)})
    fault = None
    if args.fault:
        fault = FaultConfig(kind=args.fault, rate=args.fault_rate, scale=args.fault_scale, seed=args.fault_seed)
    config = ServerConfig(model=args.model, first_layer=first, num_layers=count, host=args.host, port=args.port,
                          device=args.device, public_url=args.public_url, data_dir=args.data_dir, limits=limits,
                          rebalance=args.rebalance, max_layers=args.max_layers, auto_claim=args.auto_claim,
                          weights_from=args.weights_from, weights_codec=args.weights_codec,
                          weights_energy=args.weights_energy, weights_ratio=args.weights_ratio)
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
    run_server(config, protocol=protocol, stake=stake, progress=progress, extensions=extensions)
    return 0


def run_claim(args: argparse.Namespace) -> int:
    from efedllm.server.rewards import claim

    protocol = open_protocol(args, signs=True)
    epochs = None
    if args.epochs:
        try:
            epochs = [int(e) for e in args.epochs.split(",")]
        except ValueError:
            raise EfedError(f"--epochs must be comma-separated numbers, got {args.epochs!r}") from None
    claimed, amount = claim(protocol, epochs=epochs)
    if not claimed:
        say(f"nothing to claim for {protocol.signer.address}")
        return 0
    say(f"claimed {ether(amount)} for epochs {', '.join(map(str, claimed))} to {protocol.signer.address}")
    return 0
