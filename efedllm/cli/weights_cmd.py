"""``efedllm weights serve``: serve a model's layer weights over HTTP, so servers can load their span from it."""

from __future__ import annotations

import argparse
import logging

from efedllm.model.source import DEFAULT_MODEL


def register(subparsers) -> None:
    parser = subparsers.add_parser("weights", help="serve a model's layer weights to servers (raw or SVD-compressed)")
    sub = parser.add_subparsers(dest="weights_command", required=True, metavar="ACTION")
    serve = sub.add_parser("serve", help="serve GET /manifest and GET /tensors/NAME for every layer span")
    serve.add_argument("--model", default=DEFAULT_MODEL, help="packaged model name or Hugging Face folder (default: %(default)s)")
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)")
    serve.add_argument("--port", type=int, default=8100, help="port to listen on (default: %(default)s)")
    serve.add_argument("--svd-method", choices=("full", "randomized", "auto"), default="auto",
                       help="how SVD factors are computed: full, randomized (torch.svd_lowrank) or auto "
                            "(randomized for matrices whose smaller side exceeds 1024) (default: %(default)s)")
    serve.add_argument("--cache-mib", type=int, default=1024,
                       help="memory for encoded tensors kept between requests, in MiB (default: %(default)s)")
    serve.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from aiohttp import web

    from efedllm.model.source import resolve
    from efedllm.weights.app import create_app
    from efedllm.weights.source import WeightSource

    say = lambda message: print(message, flush=True)  # noqa: E731
    model = resolve(args.model, progress=say)
    source = WeightSource(model.folder, name=model.name, method=args.svd_method,
                          cache_bytes=max(0, args.cache_mib) * 1024 * 1024, progress=say)
    say(f"serving the weights of {model.name} ({source.num_layers} layers) on http://{args.host}:{args.port}")
    web.run_app(create_app(source), host=args.host, port=args.port, print=None, access_log=None)
    return 0
