"""Starting and stopping real server processes on this machine: for the demo, the tests and the benchmarks.

Each server is an ``efedllm server`` process of its own, talking real HTTP on loopback.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from efedllm.errors import EfedError

EFEDLLM = [sys.executable, "-m", "efedllm.cli.main"]


@dataclass
class ServerProcess:
    layers: str
    port: int
    args: list[str] = field(default_factory=list)
    """Extra ``efedllm server`` arguments (chain options, limits, ...)."""
    env: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        log = open(self.log_path, "w") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        command = [*EFEDLLM, "server", "--layers", self.layers, "--port", str(self.port), *self.args]
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                        env={**os.environ, **self.env, "PYTHONUNBUFFERED": "1"})
        return self

    def wait_ready(self, timeout: float = 180.0) -> ServerProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_path.read_text()[-1500:] if self.log_path else ""
                raise EfedError(f"server {self.layers} on :{self.port} exited with {self.process.returncode}\n{tail}")
            try:
                if requests.get(self.url + "/info", timeout=1).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise EfedError(f"server {self.layers} on :{self.port} not ready within {timeout:.0f}s")

    def kill(self) -> None:
        """Die abruptly, as a crashed machine would."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def peak_rss_bytes(self) -> int:
        """Peak resident memory of the process so far (VmHWM)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise EfedError("VmHWM not available")


def start_all(servers: list[ServerProcess], timeout: float = 240.0) -> list[ServerProcess]:
    """Start every server, then wait for all (they load in parallel)."""
    for server in servers:
        server.start()
    try:
        for server in servers:
            server.wait_ready(timeout)
    except Exception:
        stop_all(servers)
        raise
    return servers


def stop_all(servers: list[ServerProcess]) -> None:
    for server in servers:
        server.stop()
