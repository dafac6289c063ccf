"""A real ``efedllm server run`` process without a chain, for the tests that send it what a client never would.

The tests that abuse a server need it in a process of its own (its limits, its crash handling, its logs are
what they check) but need no chain: ``--no-chain`` starts it in seconds.
"""

from __future__ import annotations

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
