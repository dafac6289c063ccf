"""``efedllm weights serve``: serve a model's layer weights over HTTP, so servers can load their span from it."""

from __future__ import annotations

import argparse
import logging

from efedllm.cli.flags import add_dataclass_options, dataclass_from_args
from efedllm.model.source import DEFAULT_MODEL
from efedllm.weights.config import SourceConfig


def register(subparsers) -> None:
    parser = subparsers.add_parser("weights", help="serve a model's layer weights to servers (raw or SVD-compressed)")
    sub = parser.add_subparsers(dest="weights_command", required=True, metavar="ACTION")
    serve = sub.add_parser("serve", help="serve GET /manifest and GET /tensors/NAME for every layer span")
    serve.add_argument(
        "--model", default=DEFAULT_MODEL, help="packaged model name or Hugging Face folder (default: %(default)s)"
    )
    add_dataclass_options(serve, SourceConfig)
    serve.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from efedllm.http import serve_forever
    from efedllm.model.source import resolve
    from efedllm.weights.app import create_app
    from efedllm.weights.source import WeightSource

    say = lambda message: print(message, flush=True)  # noqa: E731
    config = dataclass_from_args(SourceConfig, args)
    model = resolve(args.model, progress=say)
    source = WeightSource(
        model.folder, name=model.name, method=config.svd_method, cache_bytes=config.cache_bytes, progress=say
    )
    say(f"serving the weights of {model.name} ({source.num_layers} layers) on http://{config.host}:{config.port}")
    serve_forever(create_app(source), host=config.host, port=config.port)
    return 0
