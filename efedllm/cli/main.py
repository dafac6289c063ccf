"""Entry point of the ``efedllm`` console script."""

from __future__ import annotations

import argparse
import os
import signal
import sys

# Ctrl-C while the command is still importing ends it quietly; main() restores Python's handler.
signal.signal(signal.SIGINT, signal.SIG_DFL)

# Pipeline stages that share CPU cores must not spin long while they wait (efedllm/openmp.py). Before torch loads.
from efedllm.openmp import OPENMP_ENV

os.environ.update({k: os.environ.get(k, v) for k, v in OPENMP_ENV.items()})  # before torch loads

from web3.exceptions import BadFunctionCallOutput, ContractLogicError, MismatchedABI

from efedllm import __version__
from efedllm.cli import (
    account_cmd,
    admin_cmd,
    analyze_cmd,
    api_cmd,
    chain_cmd,
    client_cmd,
    config,
    dashboard_cmd,
    demo_cmd,
    deploy_cmd,
    fund_cmd,
    generate_cmd,
    server_cmd,
    status_cmd,
    verifier_cmd,
    wait_cmd,
    weights_cmd,
)
from efedllm.errors import EfedError

SUBCOMMANDS = (
    chain_cmd,
    deploy_cmd,
    server_cmd,
    verifier_cmd,
    generate_cmd,
    api_cmd,
    client_cmd,
    status_cmd,
    dashboard_cmd,
    demo_cmd,
    weights_cmd,
    analyze_cmd,
    fund_cmd,
    admin_cmd,
    account_cmd,
    wait_cmd,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="efedllm",
        description="eFedLLM: LLM inference served by staked GPU providers, kept honest by verifiers on chain.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"efedllm {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.register(sub)
    config.install(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        config.apply(parser, argv)  # the config file's flags become defaults: flags typed still win
    except EfedError as exc:
        print(f"efedllm: error: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return args.run(args)
    except EfedError as exc:
        if args.debug:
            raise
        print(f"efedllm: error: {exc}", file=sys.stderr)
        return 1
    except (BadFunctionCallOutput, ContractLogicError, MismatchedABI) as exc:
        if args.debug:
            raise
        # a view call answered nothing or reverted: the contracts are not the ones the deployment file names
        print(
            f"efedllm: error: the chain does not answer as the deployment file describes "
            f"({type(exc).__name__}: {str(exc)[:120]}); is the file for this chain and current?",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print("efedllm: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
