"""Starting and stopping real server and verifier processes on this machine: for the demo, tests and benchmarks.

Each is an ``efedllm`` process of its own, talking real HTTP on loopback and real JSON-RPC to the chain.
``Walker`` drives such a network through its epochs on a dev chain: Anvil's clock is warped window by window
(commit work, commit scores, reveal, finalize) and the walker waits at each stop until the processes, which
follow chain time on their own, have done what the window asks; so nothing depends on how fast the machine is.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import requests

from efedllm.chain.anvil import free_port, warp_to
from efedllm.chain.params import ProtocolParams
from efedllm.chain.protocol import Commitment, Phase, Protocol, Score
from efedllm.errors import EfedError
from efedllm.rpc.client import ServerClient, ServerFailure
from efedllm.rpc.messages import MessageError, ServerInfo

EFEDLLM = [sys.executable, "-m", "efedllm.cli.main"]
VERIFIER_STAKE = str(ProtocolParams().min_verifier_stake / 10**18)
"""ETH each verifier process stakes on start (unless already staked): the default minVerifierStake."""


def chain_args(*, rpc_url: str, deployment: Path, account: int, data_dir: Path) -> list[str]:
    """The options that put an ``efedllm`` server or verifier on a dev chain as the node's account ``account``."""
    return [
        "--rpc-url",
        rpc_url,
        "--deployment",
        str(deployment),
        "--node-account",
        str(account),
        "--data-dir",
        str(data_dir / f"data-{account}"),
    ]


@dataclass
class EfedllmProcess:
    """One ``efedllm`` command running as a process of its own, its output in ``log_path``."""

    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    process: subprocess.Popen | None = None
    launcher: list[str] = field(default_factory=list)
    """A prefix that runs the process elsewhere, e.g. ``ip netns exec NAME`` (it must exec the command, so that
    signals reach the process itself)."""

    def start(self):
        log = open(self.log_path, "w") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [*self.launcher, *EFEDLLM, *self.command],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env, "PYTHONUNBUFFERED": "1"},
        )
        return self

    def log_tail(self, chars: int = 1500) -> str:
        return self.log_path.read_text()[-chars:] if self.log_path and self.log_path.exists() else ""

    def ready(self) -> bool:
        raise NotImplementedError

    def wait_ready(self, timeout: float = 180.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EfedError(f"{self} exited with {self.process.returncode}\n{self.log_tail()}")
            if self.ready():
                return self
            time.sleep(0.2)
        raise EfedError(f"{self} not ready within {timeout:.0f}s\n{self.log_tail()}")

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


class ServerProcess(EfedllmProcess):
    """``efedllm server run --layers LAYERS --port PORT ARGS...``; ready when it answers ``GET /info``."""

    def __init__(
        self,
        layers: str,
        port: int,
        args: list[str] | None = None,
        *,
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
        host: str = "127.0.0.1",
        launcher: list[str] | None = None,
    ):
        super().__init__(
            ["server", "run", "--layers", layers, "--host", host, "--port", str(port), *(args or [])],
            env=env or {},
            log_path=log_path,
            launcher=launcher or [],
        )
        self.layers, self.host, self.port = layers, host, port

    def __str__(self) -> str:
        return f"server {self.layers} on {self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def ready(self) -> bool:
        with requests.Session() as http:
            try:
                ServerClient(self.url, http=http).info(timeout=1)
                return True
            except (ServerFailure, EfedError, MessageError):
                return False

    def info(self) -> ServerInfo:
        with requests.Session() as http:
            return ServerClient(self.url, http=http).info(timeout=5)


class ApiProcess(EfedllmProcess):
    """``efedllm api --port PORT ARGS...``; ready when it answers ``GET /v1/models``."""

    def __init__(self, port: int, args: list[str] | None = None, *, env=None, log_path: Path | None = None):
        super().__init__(["api", "--port", str(port), *(args or [])], env=env or {}, log_path=log_path, launcher=[])
        self.port = port

    def __str__(self) -> str:
        return f"api on port {self.port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def ready(self) -> bool:
        try:
            return requests.get(f"{self.url}/models", timeout=2).status_code in (200, 401)  # 401: it wants a key
        except requests.RequestException:
            return False


class VerifierProcess(EfedllmProcess):
    """``efedllm verifier run --stake STAKE ARGS...``; ready once it says it is running. ``stake`` (ETH) is the bond
    it reaches on start when below minVerifierStake (None: no --stake, so an unstaked verifier refuses to start)."""

    def __init__(
        self,
        args: list[str],
        *,
        log_path: Path,
        env: dict[str, str] | None = None,
        launcher: list[str] | None = None,
        stake: str | None = VERIFIER_STAKE,
    ):
        if "--port" not in args:  # its answer inbox: several verifiers run on one machine here
            args = [*args, "--port", str(free_port())]
        self.args = list(args)
        """The verifier's own arguments (without ``verifier run --stake``), to start it again alike."""
        stake_args = ["--stake", stake] if stake is not None else []
        super().__init__(
            ["verifier", "run", *stake_args, *args], env=env or {}, log_path=log_path, launcher=launcher or []
        )

    def __str__(self) -> str:
        return f"verifier ({self.log_path.name})"

    def ready(self) -> bool:
        return " running; state in " in self.log_tail(100_000)


class DashboardProcess(EfedllmProcess):
    """``efedllm dashboard --port PORT ARGS...``; ready when it serves its page."""

    def __init__(self, port: int, args: list[str], *, log_path: Path):
        super().__init__(["dashboard", "--port", str(port), *args], log_path=log_path)
        self.port = port

    def __str__(self) -> str:
        return f"dashboard on :{self.port}"

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}/"

    def ready(self) -> bool:
        try:
            return requests.get(self.url, timeout=1).ok
        except requests.RequestException:
            return False


def start_all(servers: list[EfedllmProcess], timeout: float = 240.0) -> list[EfedllmProcess]:
    """Start every process, then wait for all (they load in parallel)."""
    for server in servers:
        server.start()
    try:
        for server in servers:
            server.wait_ready(timeout)
    except Exception:
        stop_all(servers)
        raise
    return servers


def stop_all(servers: list[EfedllmProcess]) -> None:
    for server in servers:
        server.stop()


WALKED_PARAMS = ProtocolParams(
    epoch_length=3600,
    commit_work_window=900,
    commit_scores_window=900,
    reveal_window=900,
    finalize_window=900,
    unbonding_period=20_000,
)
"""Parameters for a network driven by ``Walker``: the windows tile an epoch (epoch e's four windows run during
epoch e+1's work phase), and chain time keeps flowing between warps, so every window is far longer than what a
slow machine needs to act in it."""


def wait_for(
    condition: Callable[[], object], what: str, *, timeout: float = 240.0, processes: Iterable[EfedllmProcess] = ()
) -> object:
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {p}\n{p.log_tail(2500)}" for p in processes)
            raise EfedError(f"timed out waiting for {what}\n{logs}")
        time.sleep(0.5)
    return result


class Walker:
    """Moves chain time to the windows of an epoch and waits for what each should bring."""

    def __init__(self, protocol: Protocol, processes: Iterable[EfedllmProcess]):
        self.protocol, self.processes = protocol, list(processes)

    def warp(self, epoch: int, phase: Phase) -> None:
        warp_to(self.protocol.w3, self.protocol.window_start(epoch, phase))

    def fresh_epoch(self) -> int:
        """Warp to the start of the next epoch's work phase, wait until every server records under it, and
        return that epoch."""
        epoch = self.protocol.current_epoch() + 1
        self.warp(epoch, Phase.WORK)
        servers = [p for p in self.processes if isinstance(p, ServerProcess)]
        wait_for(
            lambda: all(p.info().epoch in (None, epoch) for p in servers),
            f"servers to notice epoch {epoch}",
            processes=servers,
        )
        return epoch

    def commitments(self, epoch: int, servers: Iterable[str]) -> dict[str, Commitment]:
        self.warp(epoch, Phase.COMMIT_WORK)
        servers = list(servers)
        wait_for(
            lambda: all(self.protocol.commitment_of(epoch, s).work_units for s in servers),
            f"work commitments of epoch {epoch}",
            processes=self.processes,
        )
        return {s: self.protocol.commitment_of(epoch, s) for s in servers}

    def scores(self, epoch: int, verifiers: Iterable[str], servers: Iterable[str]) -> dict[str, Score]:
        """Commit, reveal and finalize ``epoch`` (once ``verifiers`` committed their seed shares, when the epoch
        still takes them); returns each server's Score."""
        scoring = self.protocol.scoring.functions
        verifiers = list(verifiers)

        def committed(verifier: str) -> bool:
            commitment, _revealed = scoring.commitmentOf(epoch, verifier).call()
            return commitment != b"\0" * 32

        def revealed(verifier: str) -> bool:
            _commitment, revealed = scoring.commitmentOf(epoch, verifier).call()
            return revealed

        def seed_share(verifier: str) -> bool:
            commitment, _revealed = scoring.seedShareOf(epoch, verifier).call()
            return commitment != b"\0" * 32

        if self.protocol.phase(epoch) in (Phase.WORK, Phase.COMMIT_WORK):  # seed shares are committed until then
            wait_for(
                lambda: all(seed_share(v) for v in verifiers),
                f"seed shares of epoch {epoch}",
                processes=self.processes,
            )
        self.warp(epoch, Phase.COMMIT_SCORES)
        wait_for(
            lambda: all(committed(v) for v in verifiers),
            f"score commitments of epoch {epoch}",
            timeout=600,
            processes=self.processes,
        )
        self.warp(epoch, Phase.REVEAL_SCORES)
        wait_for(
            lambda: all(revealed(v) for v in verifiers), f"score reveals of epoch {epoch}", processes=self.processes
        )
        self.warp(epoch, Phase.FINALIZE)
        servers = list(servers)
        wait_for(
            lambda: all(self.protocol.score_of(epoch, s).outcome for s in servers),
            f"finalize of epoch {epoch}",
            processes=self.processes,
        )
        return {s: self.protocol.score_of(epoch, s) for s in servers}
