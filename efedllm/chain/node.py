"""A local development chain: any EVM node that speaks plain JSON-RPC, started from the project's npm packages.

Two kinds are known, Anvil (``@foundry-rs/anvil``, the default) and Ganache (``ganache``); users run either. What
differs between them is here and only here: the command line, when the node is ready, its dev accounts' keys,
where it keeps its state across a restart, and how its clock is moved (``warp_to``). Everything else (deploying,
the servers, the verifiers) talks to the node through standard JSON-RPC and never asks which kind it is.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from efedllm.errors import EfedError

DEFAULT_PORT = 8545
ANVIL_CHAIN_ID = 31337
GANACHE_CHAIN_ID = 1337
NodeKind = Literal["anvil", "ganache"]
NODE_KINDS: tuple[NodeKind, ...] = ("anvil", "ganache")

DEV_MNEMONICS: dict[NodeKind, str] = {
    "anvil": "test test test test test test test test test test test junk",
    "ganache": "myth like bonus scare over problem client lizard pioneer submit female collect",  # --wallet.deterministic
}
"""The mnemonic each kind derives its funded dev accounts from (BIP-44 path m/44'/60'/0'/0/i)."""
INSTALL_HINTS: dict[NodeKind, str] = {
    "anvil": "run `make setup` (it installs @foundry-rs/anvil from npm)",
    "ganache": "run `make setup` (it installs ganache from npm)",
}


DEV_BLOCK_TIME = 1.0
"""Seconds between blocks of a chain that ``efedllm chain up`` starts. Servers and verifiers read the epoch's phase
from the latest block: a node that mines only on transactions stops their clock whenever nobody sends one (a
verifier then misses its window, and nobody is scored or paid), so a dev chain keeps time by default."""


@dataclass(frozen=True, kw_only=True)
class NodeConfig:
    kind: NodeKind = "anvil"
    """Which EVM node to run."""
    host: str = "127.0.0.1"
    """Interface to listen on."""
    port: int = DEFAULT_PORT
    """RPC port; 0 picks a free port."""
    accounts: int = 20
    """Funded dev accounts."""
    balance_ether: int = 10_000
    """Ether of each dev account."""
    gas_limit: int = 30_000_000
    """Gas limit of a block."""
    block_time: float | None = None
    """Seconds between blocks; None or 0 mines a block per transaction only (the chain's clock then stands still
    while nobody sends one). Tests move the clock themselves; ``efedllm chain up`` uses DEV_BLOCK_TIME."""
    chain_id: int | None = field(default=None, metadata={"default_help": "Anvil 31337, Ganache 1337"})
    """Chain id; None: the kind's usual dev chain id."""
    hardfork: str | None = field(default=None, metadata={"default_help": "the node's own; Ganache: shanghai"})
    """EVM rules the node runs, e.g. ``shanghai`` or ``london``."""
    state: Path | None = field(default=None, metadata={"default_help": "the chain is lost on exit"})
    """Keep the chain here (Anvil: a file, Ganache: a folder), loaded at start when it exists and saved as the node
    runs or stops, so that the chain and its clock survive a restart.

    Anvil: ``anvil --state``; Ganache: ``ganache --database.dbPath``."""

    @property
    def effective_chain_id(self) -> int:
        if self.chain_id is not None:
            return self.chain_id
        return GANACHE_CHAIN_ID if self.kind == "ganache" else ANVIL_CHAIN_ID


def node_binary(kind: NodeKind = "anvil") -> Path:
    """The node binary of the project's node_modules, else one on PATH."""
    from efedllm.chain.compile import project_root

    if kind not in NODE_KINDS:
        raise EfedError(f"unknown node kind {kind!r}; choose one of {', '.join(NODE_KINDS)}")
    try:
        local = project_root() / "node_modules" / ".bin" / kind
        if local.exists():
            return local
    except EfedError:
        pass
    found = shutil.which(kind)
    if found:
        return Path(found)
    raise EfedError(f"{kind} not found: {INSTALL_HINTS[kind]}")


def dev_keys(kind: NodeKind, count: int) -> list[str]:
    """The private keys (0x hex) of a freshly started node's first ``count`` dev accounts, in eth_accounts order."""
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    return [
        Account.from_mnemonic(DEV_MNEMONICS[kind], account_path=f"m/44'/60'/0'/0/{i}").key.to_0x_hex()
        for i in range(count)
    ]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class LocalNode:
    """A dev chain node process of the configured kind, started on entry and stopped on exit."""

    def __init__(self, config: NodeConfig = NodeConfig()):
        if config.kind not in NODE_KINDS:
            raise EfedError(f"unknown node kind {config.kind!r}; choose one of {', '.join(NODE_KINDS)}")
        port = config.port or free_port(config.host)
        self.config = config
        self.kind = config.kind
        self.port = port
        self.url = f"http://{config.host}:{port}"
        self.process: subprocess.Popen | None = None

    @property
    def chain_id(self) -> int:
        return self.config.effective_chain_id

    def dev_keys(self) -> list[str]:
        """The private keys of the node's funded dev accounts (the node also signs for them itself)."""
        return dev_keys(self.kind, self.config.accounts)

    def command(self) -> list[str]:
        return self._ganache_command() if self.kind == "ganache" else self._anvil_command()

    def _anvil_command(self) -> list[str]:
        c = self.config
        cmd = [
            str(node_binary("anvil")),
            "--host",
            c.host,
            "--port",
            str(self.port),
            "--accounts",
            str(c.accounts),
            "--balance",
            str(c.balance_ether),
            "--gas-limit",
            str(c.gas_limit),
            "--chain-id",
            str(self.chain_id),
            "--base-fee",
            "0",
            "--silent",
        ]
        if c.block_time:
            cmd += ["--block-time", str(c.block_time)]
        if c.hardfork:
            cmd += ["--hardfork", c.hardfork]
        if c.state is not None:
            cmd += ["--state", str(c.state)]
        return cmd

    def _ganache_command(self) -> list[str]:
        """Without a block time Ganache mines each transaction as it comes. Its default ("eager") holds the answer to
        ``eth_sendTransaction`` until the block is mined, and under concurrent senders it has held one past the RPC
        timeout (120 s; a CI run of the demo lost a server that way, Ganache 7.9.2; its transaction pool's races are
        open upstream: ganache#2489, #4487). "strict" answers with the hash at once, as a real node does; the
        transactor then waits for the receipt with a timeout of its own and says which transaction was not mined."""
        c = self.config
        cmd = [
            str(node_binary("ganache")),
            "--server.host",
            c.host,
            "--server.port",
            str(self.port),
            "--wallet.totalAccounts",
            str(c.accounts),
            "--wallet.defaultBalance",
            str(c.balance_ether),
            "--wallet.deterministic",
            "--miner.blockGasLimit",
            str(c.gas_limit),
            "--chain.chainId",
            str(self.chain_id),
            "--chain.hardfork",
            c.hardfork or "shanghai",
            "--logging.quiet",
        ]
        if c.block_time:
            cmd += ["--miner.blockTime", str(c.block_time)]
        else:
            cmd += ["--miner.instamine", "strict"]
        if c.state is not None:
            Path(c.state).mkdir(parents=True, exist_ok=True)
            cmd += ["--database.dbPath", str(c.state)]
        return cmd

    def _has_state(self) -> bool:
        state = self.config.state
        if state is None or not Path(state).exists():
            return False
        return any(Path(state).iterdir()) if Path(state).is_dir() else True

    def start(self, *, timeout: float = 30.0) -> LocalNode:
        with socket.socket() as s:
            if s.connect_ex((self.config.host, self.port)) == 0:
                raise EfedError(f"port {self.port} is already in use; is a chain running there already?")
        resuming = self._has_state()
        self.process = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            self._wait_until_ready(timeout)
            if resuming:
                self._resume_clock()
        except BaseException:  # an error or an interrupt while starting must not leave the node running
            self.stop()
            raise
        return self

    def _wait_until_ready(self, timeout: float) -> None:
        """Anvil answers as soon as its port is open; Ganache opens its port first and may still be loading
        its database, so for it the node must also answer a JSON-RPC request."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace").strip() if self.process.stderr else ""
                raise EfedError(f"{self.kind} exited with code {self.process.returncode}: {err[-300:]}")
            with socket.socket() as s:
                listening = s.connect_ex((self.config.host, self.port)) == 0
            if listening and (self.kind == "anvil" or self._answers()):
                return
            time.sleep(0.05)
        raise EfedError(f"{self.kind} did not open {self.url} within {timeout:.0f}s")

    def _answers(self) -> bool:
        import requests

        try:
            body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
            return "result" in requests.post(self.url, json=body, timeout=2).json()
        except (requests.RequestException, ValueError):
            return False

    def _resume_clock(self) -> None:
        """Continue chain time from the loaded chain's last block. A node stamps blocks from the wall clock plus
        the offset of the last warp, and a restart forgets that offset: without this, a warped chain's clock would
        run backwards (epochs and windows with it) until the wall clock caught up."""
        from web3 import Web3

        warp_to(Web3(Web3.HTTPProvider(self.url)), 0)  # one block at the last block's time + 1 second

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10 if self.kind == "ganache" else 5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> LocalNode:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def warp_to(w3, timestamp: int) -> None:
    """Mine a block at exactly ``timestamp`` (or the next second, if the chain is past it) on a dev node.

    Sets the next block's timestamp rather than adding a delta (``evm_increaseTime``): nodes stamp new blocks
    from the wall clock, so a delta measured from an old block would overshoot by however long the chain sat idle.
    Anvil (and Hardhat) take ``evm_setNextBlockTimestamp``; a node without it (Ganache) takes the timestamp as
    ``evm_mine``'s parameter, which also sets its clock for the blocks after; a node with neither gets the
    standard ``evm_increaseTime`` + ``evm_mine``.
    """
    target = int(max(timestamp, w3.eth.get_block("latest")["timestamp"] + 1))
    response = w3.provider.make_request("evm_setNextBlockTimestamp", [target])
    if "error" not in response:
        w3.provider.make_request("evm_mine", [])
        return
    for _ in range(WARP_TRIES):
        if "error" in w3.provider.make_request("evm_mine", [target]):
            break
        if _reached(w3, target, within=WARP_WAIT_S):
            return
        # Ganache answered and mined no block at ``target`` (seen under load): mine again
        target = int(max(target, w3.eth.get_block("latest")["timestamp"] + 1))
    else:
        return
    # the plainest dev node: a delta from the latest block (it may overshoot by the time the chain sat idle)
    delta = target - w3.eth.get_block("latest")["timestamp"]
    moved = w3.provider.make_request("evm_increaseTime", [max(delta, 1)])
    if "error" in moved:
        raise EfedError(f"this node cannot move its clock: {moved['error'].get('message', moved['error'])}")
    w3.provider.make_request("evm_mine", [])


WARP_TRIES = 3
WARP_WAIT_S = 5.0
"""How long ``warp_to`` waits for the block Ganache's ``evm_mine`` makes to be the latest (under interval mining it
may come a moment after the answer; under load Ganache has answered and mined none), before it mines again."""


def _reached(w3, timestamp: int, *, within: float) -> bool:
    """Whether the latest block's timestamp reaches ``timestamp`` within ``within`` seconds."""
    deadline = time.monotonic() + within
    while w3.eth.get_block("latest")["timestamp"] < timestamp:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def give_ether(w3, address: str, wei: int, *, faucets: list[str]) -> None:
    """Give ``address`` ``wei`` on a dev node: out of thin air on Anvil (``anvil_setBalance``: no transaction, so
    nothing on chain says where the ether came from); elsewhere (Ganache) as a transfer from the first of the node's
    unlocked ``faucets`` that can afford it. Ganache's ``evm_setAccountBalance`` is not used: it races with blocks
    mined at the same moment, losing the balance or another account's nonce."""
    if "error" not in w3.provider.make_request("anvil_setBalance", [address, hex(wei)]):
        return
    for faucet in faucets:
        if w3.eth.get_balance(faucet) > 2 * wei:
            tx = w3.eth.send_transaction({"from": faucet, "to": address, "value": wei})
            w3.eth.wait_for_transaction_receipt(tx, timeout=60)
            return
    raise EfedError(f"no unlocked account of this node can give {address} ether")
