"""A real ``efedllm server run`` process without a chain, for the tests that send it what a client never would;
and a command watched by a timer, for the tests that talk to a process until they stop it with Ctrl-C.

The tests that abuse a server need it in a process of its own (its limits, its crash handling, its logs are
what they check) but need no chain: ``--no-chain`` starts it in seconds.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from efedllm.chain.anvil import free_port
from efedllm.localnet import ServerProcess


@contextmanager
def no_chain_server(log_dir: Path, args: list[str]) -> Iterator[ServerProcess]:
    """A ready ``efedllm server run --no-chain ARGS`` over all 30 layers, logging to log_dir/server.log."""
    process = ServerProcess("0:30", free_port(), args=["--no-chain", *args], log_path=log_dir / "server.log")
    try:
        yield process.start().wait_ready()
    finally:
        process.stop()


@contextmanager
def watched(args: list[str], *, timeout: float, stdin: bool = False) -> Iterator[subprocess.Popen]:
    """``args`` as a process with text pipes (stdin too where asked), killed after ``timeout`` seconds, so that a
    test reading it cannot hang, and when the block ends."""
    proc = subprocess.Popen(
        args, stdin=subprocess.PIPE if stdin else None, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    watchdog = threading.Timer(timeout, proc.kill)
    watchdog.start()
    try:
        yield proc
    finally:
        watchdog.cancel()
        proc.kill()
