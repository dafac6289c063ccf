"""Options and helpers shared by subcommands: where the chain is, which deployment, who signs."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

from efedllm.chain.connection import DEFAULT_RPC_URL, connect, load_signer
from efedllm.chain.deployment import Deployment
from efedllm.chain.explain import ether  # noqa: F401 - re-exported for the subcommands
from efedllm.chain.params import ONE
from efedllm.chain.protocol import Protocol


def add_chain_options(parser: argparse.ArgumentParser, *, signs: bool, reads_deployment: bool = True) -> None:
    parser.add_argument(
        "--rpc-url",
        default=os.environ.get("EFEDLLM_RPC_URL", DEFAULT_RPC_URL),
        help="EVM JSON-RPC endpoint (default: $EFEDLLM_RPC_URL or %(default)s)",
    )
    if reads_deployment:
        parser.add_argument(
            "--deployment",
            type=Path,
            default=None,
            help="deployment file (default: <dir>/<chain id>.json, dir from $EFEDLLM_DEPLOYMENTS or ./deployments)",
        )
    if signs:
        add_signer_options(parser)


def add_signer_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("signing (the key never goes on the command line)")
    group.add_argument(
        "--keystore",
        type=Path,
        default=None,
        help="encrypted JSON keystore; password from $EFEDLLM_KEYSTORE_PASSWORD or a prompt "
        "(default: the key in $EFEDLLM_PRIVATE_KEY, else the node's first unlocked account)",
    )
    group.add_argument(
        "--node-account",
        type=int,
        default=None,
        metavar="INDEX",
        help="sign with the node's unlocked account INDEX (local dev chains such as Anvil; default: 0)",
    )


def open_protocol(args: argparse.Namespace, *, signs: bool) -> Protocol:
    w3 = connect(args.rpc_url)
    deployment = Deployment.load(args.deployment) if args.deployment else Deployment.for_chain(w3.eth.chain_id)
    signer = load_signer(w3, keystore=args.keystore, node_account=args.node_account) if signs else None
    return Protocol(w3, deployment, signer)


LOG_LEVELS = ("debug", "info", "warning", "error")
PLAIN_LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"


def add_logging_options(parser: argparse.ArgumentParser, *, default: str = "info") -> None:
    group = parser.add_argument_group("logging (to stderr)")
    group.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default=default,
        help="level of efedllm's own log lines; other libraries log warnings only (default: %(default)s)",
    )
    group.add_argument(
        "--log-json",
        action="store_true",
        help="write progress and log lines as one JSON object per line, for log collectors (default: plain text)",
    )


def setup_logging(args: argparse.Namespace, *, name: str):
    """Configure logging from ``--log-level``/``--log-json`` and return the progress callback of the command:
    plain lines on stdout, or, with ``--log-json``, INFO records of the logger ``name`` (so a service's whole
    output is structured)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if args.log_json else logging.Formatter(PLAIN_LOG_FORMAT))
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    logging.getLogger("efedllm").setLevel(args.log_level.upper())
    if args.log_json:
        return logging.getLogger(name).info
    return lambda message: print(message, flush=True)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, and the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def say(message: str) -> None:
    """A line of a command's report, flushed at once (the report interleaves with logs and child processes)."""
    print(message, flush=True)


def fixed(value: int, digits: int = 4) -> str:
    """An 18-decimal fixed-point value as a decimal string."""
    return f"{value / ONE:.{digits}f}"


def table(headers: list[str], rows: list[list[object]]) -> str:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = lambda row: "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in cells)])


class StopSignal:
    """Ctrl-C and SIGTERM as a request to stop cleanly, installed before anything is started, so a signal
    arriving at any moment ends the command with exit code 0 and its cleanup run (no KeyboardInterrupt race)."""

    def __init__(self):
        self.event = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.event.set())

    def wait(self, process=None, *, poll: float = 0.5) -> None:
        """Until a stop signal arrives (or ``process`` exits)."""
        while not self.event.wait(poll):
            if process is not None and process.poll() is not None:
                return
