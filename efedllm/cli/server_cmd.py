"""``efedllm server``: serve a span of a model's layers (a GPU provider's command)."""

from __future__ import annotations

import argparse
import logging
from dataclasses import fields

from efedllm.chain.params import ETHER
from efedllm.cli.common import add_chain_options, open_protocol
from efedllm.layers import parse_span
from efedllm.model.source import DEFAULT_MODEL
from efedllm.server.config import ServerConfig, ServerLimits


def say(message: str) -> None:
    print(message, flush=True)


def register(subparsers) -> None:
    parser = subparsers.add_parser("server", help="serve a span of the model's layers and register it on chain")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="packaged model name or Hugging Face folder (default: %(default)s)")
    parser.add_argument("--layers", required=True, metavar="START:END", help="layers to serve, e.g. 10:20 (END exclusive)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default: %(default)s)")
    parser.add_argument("--public-url", default=None, help="endpoint announced on chain (default: http://HOST:PORT)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda when present, else cpu)")
    parser.add_argument("--data-dir", default="efedllm-data",
                        help="where task records are kept; keep it across restarts (default: %(default)s)")
    parser.add_argument("--stake", type=float, default=1.0, help="ETH staked when registering (default: %(default)s)")
    parser.add_argument("--no-chain", action="store_true",
                        help="serve without registering on chain (development: clients must be given --servers)")
    limits = parser.add_argument_group("limits")
    defaults = ServerLimits()
    for f in fields(ServerLimits):
        limits.add_argument(f"--{f.name.replace('_', '-')}", type=type(getattr(defaults, f.name)),
                            default=getattr(defaults, f.name), help="(default: %(default)s)")
    add_chain_options(parser, signs=True)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    first, count = parse_span(args.layers)
    limits = ServerLimits(**{f.name: getattr(args, f.name) for f in fields(ServerLimits)})
    config = ServerConfig(model=args.model, first_layer=first, num_layers=count, host=args.host, port=args.port,
                          device=args.device, public_url=args.public_url, data_dir=args.data_dir, limits=limits)
    protocol = None if args.no_chain else open_protocol(args, signs=True)
    if protocol is not None:
        total = protocol.registry.functions.NUM_LAYERS().call()
        parse_span(args.layers, total)
    from efedllm.server.main import run as run_server  # torch loads only for this command

    run_server(config, protocol=protocol, stake=int(args.stake * ETHER), progress=say)
    return 0
