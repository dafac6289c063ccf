"""``efedllm api``: an OpenAI-compatible HTTP API over the network (efedllm/api/).

    efedllm api --pay --keystore client.json        # servers from the chain, paid from the client's deposit
    efedllm api --servers http://a:8000,http://b:8001

Then any ``openai`` client: ``OpenAI(base_url="http://127.0.0.1:8080/v1", api_key=...)``. Clients authenticate with
the key in ``$EFEDLLM_API_KEY`` when it is set (any key is accepted when it is not).
"""

from __future__ import annotations

import argparse
import os
import sys

from efedllm.api.config import ApiConfig
from efedllm.cli.common import add_chain_options, add_logging_options, add_signer_options, open_protocol, setup_logging
from efedllm.cli.flags import add_dataclass_options, dataclass_from_args
from efedllm.model.source import DEFAULT_MODEL


def register(subparsers) -> None:
    parser = subparsers.add_parser("api", help="serve an OpenAI-compatible API (/v1/chat/completions) over the network")
    parser.add_argument(
        "--model", default=DEFAULT_MODEL, help="packaged model name or Hugging Face folder (default: %(default)s)"
    )
    add_dataclass_options(parser, ApiConfig)
    parser.add_argument(
        "--servers",
        default=None,
        metavar="URL,URL",
        help="use these servers instead of the chain's list (development; default: the chain's)",
    )
    parser.add_argument(
        "--pay",
        action="store_true",
        help="pay priced servers with signed receipts from this account's deposit (efedllm client deposit); "
        "without it only free servers serve (default: off)",
    )
    add_logging_options(parser)
    add_chain_options(parser, signs=False)
    add_signer_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    progress = setup_logging(args, name="efedllm.api")
    config = dataclass_from_args(ApiConfig, args)
    from efedllm.api.app import create_app
    from efedllm.api.engine import Engine
    from efedllm.client import DistributedModel  # torch and transformers load only for this command
    from efedllm.http import serve_forever

    servers = args.servers.split(",") if args.servers else None
    protocol = None if servers else open_protocol(args, signs=args.pay)
    model = DistributedModel.from_pretrained(
        args.model, protocol=protocol, servers=servers, progress=lambda m: print(m, file=sys.stderr, flush=True)
    )
    name = config.served_name or args.model
    app = create_app(Engine(model), config, name=name, key=os.environ.get("EFEDLLM_API_KEY", ""))
    progress(
        f"OpenAI-compatible API on http://{config.host}:{config.port}/v1 serving {name!r} "
        f"({config.max_concurrent} generations at once"
        + (", paying servers from " + protocol.signer.address if protocol and protocol.signer else "")
        + ")"
    )
    serve_forever(app, host=config.host, port=config.port)
    return 0
