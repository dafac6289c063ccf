"""A local development chain: Anvil from the project's npm packages (``@foundry-rs/anvil``).

Anvil is a real EVM node; it is the development chain for the demo, the tests and the benchmarks.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from efedllm.errors import EfedError

DEFAULT_PORT = 8545
ANVIL_CHAIN_ID = 31337


@dataclass(frozen=True, kw_only=True)
class AnvilConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    """0 picks a free port."""
    accounts: int = 20
    balance_ether: int = 10_000
    gas_limit: int = 30_000_000
    block_time: float | None = None
    """Seconds between blocks; None mines a block per transaction."""
    chain_id: int = ANVIL_CHAIN_ID
    state: Path | None = None
    """A file the chain is loaded from (when it exists) and saved to when the node stops (``anvil --state``), so
    that the chain survives a restart of its node."""


def anvil_binary() -> Path:
    """The ``anvil`` of the project's node_modules, else one on PATH."""
    from efedllm.chain.compile import project_root

    try:
        local = project_root() / "node_modules" / ".bin" / "anvil"
        if local.exists():
            return local
    except EfedError:
        pass
    found = shutil.which("anvil")
    if found:
        return Path(found)
    raise EfedError("anvil not found: run `make setup` (it installs @foundry-rs/anvil from npm)")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Anvil:
    """An Anvil process, started on entry and stopped on exit."""

    def __init__(self, config: AnvilConfig = AnvilConfig()):
        port = config.port or free_port(config.host)
        self.config = config
        self.port = port
        self.url = f"http://{config.host}:{port}"
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        c = self.config
        cmd = [
            str(anvil_binary()), "--host", c.host, "--port", str(self.port), "--accounts", str(c.accounts),
            "--balance", str(c.balance_ether), "--gas-limit", str(c.gas_limit), "--chain-id", str(c.chain_id),
            "--base-fee", "0", "--silent",
        ]
        if c.block_time:
            cmd += ["--block-time", str(c.block_time)]
        if c.state is not None:
            cmd += ["--state", str(c.state)]
        return cmd

    def start(self, *, timeout: float = 20.0) -> Anvil:
        with socket.socket() as s:
            if s.connect_ex((self.config.host, self.port)) == 0:
                raise EfedError(f"port {self.port} is already in use; is a chain running there already?")
        resuming = self.config.state is not None and Path(self.config.state).exists()
        self.process = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            self._wait_until_listening(timeout)
            if resuming:
                self._resume_clock()
        except BaseException:  # an error or an interrupt while starting must not leave the node running
            self.stop()
            raise
        return self

    def _wait_until_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace").strip() if self.process.stderr else ""
                raise EfedError(f"anvil exited with code {self.process.returncode}: {err[-300:]}")
            with socket.socket() as s:
                if s.connect_ex((self.config.host, self.port)) == 0:
                    return
            time.sleep(0.05)
        raise EfedError(f"anvil did not open {self.url} within {timeout:.0f}s")

    def _resume_clock(self) -> None:
        """Continue chain time from the loaded chain's last block. Anvil stamps blocks from the wall clock plus the
        offset of the last warp, and a restart forgets that offset: without this, a warped chain's clock would run
        backwards (epochs and windows with it) until the wall clock caught up."""
        from web3 import Web3

        warp_to(Web3(Web3.HTTPProvider(self.url)), 0)  # one block at the last block's time + 1 second

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> Anvil:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def warp_to(w3, timestamp: int) -> None:
    """Mine a block at exactly ``timestamp`` (or the next second, if the chain is past it) on a dev node.

    Sets the next block's timestamp rather than adding a delta: Anvil stamps new blocks from the wall clock,
    so a delta measured from an old block would overshoot by however long the chain sat idle.
    """
    latest = w3.eth.get_block("latest")["timestamp"]
    w3.provider.make_request("evm_setNextBlockTimestamp", [int(max(timestamp, latest + 1))])
    w3.provider.make_request("evm_mine", [])
