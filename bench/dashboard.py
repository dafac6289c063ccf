"""Load time of the web dashboard with a long history: 100 servers and 200 epochs on Anvil, in headless Chromium.

    python bench/dashboard.py [--servers 100] [--epochs 200] [--runs 3] [--updates 5]

History is generated quickly on a real Anvil with the real contracts: automine is off, every window of an
epoch is one block at the window's start time (evm_setNextBlockTimestamp), and its transactions go in one
JSON-RPC batch of eth_sendTransaction from the node's unlocked accounts. Every epoch: all active servers
commit work, a client funds the next epoch, 2 verifiers commit and reveal accuracies for every server, one
finalize call scores all of them; 5 servers are slashed along the way, servers claim every 10 epochs, some
top up or unbond. Then `efedllm dashboard` serves the page and Chromium (Debian's, via Playwright) measures:

  * load: navigation start to the page fully rendered (history read from event logs, table, charts), fresh
    browser context each run, through the dashboard's RPC relay and, for comparison, straight to Anvil;
  * new block: a transaction sent, to the page showing its block (includes up to one poll interval, 1 s);
  * page work per new block (snapshot + new logs + render) and a sort of the 100-row table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector, keccak

from efedllm.chain.anvil import Anvil, AnvilConfig, free_port
from efedllm.chain.compile import compile_contracts
from efedllm.chain.connection import Signer, connect
from efedllm.chain.deploy import deploy
from efedllm.chain.params import ETHER, ONE, ProtocolParams
from efedllm.chain.transactions import ErrorDecoder, Transactor
from efedllm.localnet import DashboardProcess

# the contract and browser tests' preset (tests/support/params.py)
PARAMS = ProtocolParams(epoch_length=100, commit_scores_window=20, unbonding_period=400, min_verifiers=2)
SLASH_EVERY = 40  # one bad server is slashed every SLASH_EVERY epochs
CLAIM_EVERY = 10
GAS = {
    "commitWork": 300_000,
    "fundEpoch": 150_000,
    "commitScores": 150_000,
    "revealScores": 12_000_000,
    "finalize": 30_000_000,
    "claimRewards": 2_000_000,
    "addStake": 150_000,
    "requestUnstake": 150_000,
    "register": 600_000,
}


def call_data(signature: str, types: list[str], args: list) -> str:
    return "0x" + (function_signature_to_4byte_selector(signature) + encode(types, args)).hex()


class Generator:
    """Writes the history straight through JSON-RPC batches (web3's per-transaction path would take minutes)."""

    def __init__(self, url: str, deployment, accounts: list[str], n_servers: int):
        self.url, self.http, self.d = url, requests.Session(), deployment
        self.gov, self.client, self.verifiers = accounts[0], accounts[1], accounts[2:4]
        self.servers = accounts[4 : 4 + n_servers]
        self.active = list(self.servers)
        self.bad = {
            self.servers[(k * 37 + 7) % n_servers]: SLASH_EVERY * k + SLASH_EVERY // 2
            for k in range(max(1, 200 // SLASH_EVERY))
        }
        self.honest = [s for s in self.servers if s not in self.bad]
        self.claimed_to = -1
        self.genesis = None
        self.sent = 0

    def rpc(self, calls: list[tuple[str, list]]) -> list:
        payload = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
        answers = sorted(self.http.post(self.url, json=payload, timeout=120).json(), key=lambda a: a["id"])
        errors = [a["error"] for a in answers if "error" in a]
        if errors:
            raise RuntimeError(f"{len(errors)} failed calls, first: {errors[0]}")
        return [a["result"] for a in answers]

    def tx(self, sender: str, contract: str, name: str, data: str, value: int = 0) -> tuple[str, list]:
        nonce = self.nonces[sender]  # explicit: with automine off the node would reuse a sender's pending nonce
        self.nonces[sender] += 1
        return (
            "eth_sendTransaction",
            [
                {
                    "from": sender,
                    "to": self.d.address(contract),
                    "data": data,
                    "nonce": hex(nonce),
                    "gas": hex(GAS[name]),
                    "value": hex(value),
                    "gasPrice": "0x0",
                }
            ],
        )

    def block_at(self, timestamp: int, txs: list[tuple[str, list]]) -> None:
        """One block at `timestamp` holding `txs`; raises if any of them reverted."""
        self.rpc([("evm_setNextBlockTimestamp", [timestamp])])
        hashes = self.rpc(txs) if txs else []
        self.rpc([("evm_mine", [])])
        if hashes:
            receipts = self.rpc([("eth_getTransactionReceipt", [h]) for h in hashes])
            failed = [r["transactionHash"] for r in receipts if r is None or r["status"] != "0x1"]
            if failed:
                raise RuntimeError(f"{len(failed)} transactions reverted in the block at {timestamp}")
        self.sent += len(txs)

    def start(self) -> None:
        self.rpc([("evm_setAutomine", [False])])
        everyone = [self.gov, self.client, *self.verifiers, *self.servers]
        counts = self.rpc([("eth_getTransactionCount", [a, "latest"]) for a in everyone])
        self.nonces = {a: int(c, 16) for a, c in zip(everyone, counts)}
        self.genesis = int(
            self.rpc(
                [
                    (
                        "eth_call",
                        [{"to": self.d.address("EpochSchedule"), "data": call_data("GENESIS()", [], [])}, "latest"],
                    )
                ]
            )[0],
            16,
        )
        latest = int(self.rpc([("eth_getBlockByNumber", ["latest", False])])[0]["timestamp"], 16)
        txs = []
        for i, server in enumerate(self.servers):
            n = 16 + (i * 7) % 15
            first = (i * 11) % (PARAMS.num_layers - n + 1)
            data = call_data(
                "register(string,uint256,uint256)",
                ["string", "uint256", "uint256"],
                [f"http://gpu-{i:03d}.example:8080", first, n],
            )
            txs.append(self.tx(server, "ServerRegistry", "register", data, 2 * ETHER))
        txs.append(
            self.tx(
                self.client, "RewardPool", "fundEpoch", call_data("fundEpoch(uint256)", ["uint256"], [0]), 5 * ETHER
            )
        )
        self.block_at(latest + 1, txs)

    def accuracy(self, server: str, epoch: int, verifier: int) -> int:
        if self.bad.get(server) == epoch:
            return ONE // 10
        return ONE - (int(server, 16) * 31 + epoch * 17 + verifier * 7) % 50 * ONE // 1000  # 0.951 .. 1.0

    def epoch(self, e: int) -> None:
        start = self.genesis + e * PARAMS.epoch_length
        commit_work = start + PARAMS.epoch_length
        commit_scores = commit_work + PARAMS.commit_work_window
        reveal = commit_scores + PARAMS.commit_scores_window
        finalize = reveal + PARAMS.reveal_window
        servers = sorted(self.active, key=lambda a: int(a, 16))

        txs = [
            self.tx(
                s,
                "WorkLedger",
                "commitWork",
                call_data(
                    "commitWork(uint256,bytes32,uint256)",
                    ["uint256", "bytes32", "uint256"],
                    [e, keccak(text=f"{s}:{e}"), 20 + (int(s, 16) + e) % 80],
                ),
            )
            for s in servers
        ]
        txs.append(
            self.tx(
                self.client,
                "RewardPool",
                "fundEpoch",
                call_data("fundEpoch(uint256)", ["uint256"], [e + 1]),
                ETHER + (e % 7) * ETHER // 10,
            )
        )
        if e % 25 == 5:
            txs.append(
                self.tx(
                    self.honest[e % len(self.honest)],
                    "ServerRegistry",
                    "addStake",
                    call_data("addStake()", [], []),
                    ETHER // 2,
                )
            )
        if e % 25 == 15:
            who = self.honest[(e + 50) % len(self.honest)]
            txs.append(
                self.tx(
                    who,
                    "ServerRegistry",
                    "requestUnstake",
                    call_data("requestUnstake(uint256)", ["uint256"], [ETHER // 10]),
                )
            )
        self.block_at(commit_work, txs)

        reveals, commits = [], []
        for k, verifier in enumerate(self.verifiers):
            accs = [self.accuracy(s, e, k) for s in servers]
            salt = keccak(text=f"salt:{verifier}:{e}")
            args = [verifier, e, servers, accs, salt]
            digest = keccak(encode(["address", "uint256", "address[]", "uint256[]", "bytes32"], args))
            commits.append(
                self.tx(
                    verifier,
                    "TrustScoring",
                    "commitScores",
                    call_data("commitScores(uint256,bytes32)", ["uint256", "bytes32"], [e, digest]),
                )
            )
            reveals.append(
                self.tx(
                    verifier,
                    "TrustScoring",
                    "revealScores",
                    call_data(
                        "revealScores(uint256,address[],uint256[],bytes32)",
                        ["uint256", "address[]", "uint256[]", "bytes32"],
                        [e, servers, accs, salt],
                    ),
                )
            )
        self.block_at(commit_scores, commits)
        self.block_at(reveal, reveals)

        txs = [
            self.tx(
                self.gov,
                "TrustScoring",
                "finalize",
                call_data("finalize(uint256,address[])", ["uint256", "address[]"], [e, servers]),
            )
        ]
        if e % CLAIM_EVERY == CLAIM_EVERY - 1 and e > 0:
            epochs = list(range(self.claimed_to + 1, e))  # epochs before e are settled by e's finalize window
            txs += [
                self.tx(s, "RewardPool", "claimRewards", call_data("claimRewards(uint256[])", ["uint256[]"], [epochs]))
                for s in self.honest
            ]
            self.claimed_to = e - 1
        self.block_at(finalize, txs)
        self.active = [s for s in self.active if self.bad.get(s) != e]

    def finish(self) -> None:
        self.rpc([("evm_setAutomine", [True])])


def generate(anvil_url: str, w3, n_servers: int, n_epochs: int, out_dir: Path):
    started = time.monotonic()
    artifacts = compile_contracts()
    accounts = w3.eth.accounts
    tx = Transactor(w3, Signer(accounts[0]), ErrorDecoder(a.abi for a in artifacts.values()))
    deployment = deploy(w3, tx, params=PARAMS, artifacts=artifacts, verifiers=accounts[2:4])
    path = deployment.save(out_dir)
    gen = Generator(anvil_url, deployment, accounts, n_servers)
    gen.start()
    for e in range(n_epochs):
        gen.epoch(e)
        if (e + 1) % 20 == 0 or e + 1 == n_epochs:
            print(
                f"  history: epoch {e + 1}/{n_epochs}, {gen.sent:,} transactions, block {w3.eth.block_number:,}, "
                f"{time.monotonic() - started:.0f}s",
                flush=True,
            )
    gen.finish()
    return deployment, path, gen


def measure(url: str, w3, server: str, registry: str, *, runs: int, updates: int, direct_rpc: str) -> dict:
    from playwright.sync_api import sync_playwright

    results: dict = {
        "load_ms": [],
        "direct_load_ms": [],
        "update_ms": [],
        "refresh_ms": [],
        "sort_ms": [],
        "server_page_ms": [],
    }
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=os.environ.get("EFEDLLM_CHROMIUM", "/usr/bin/chromium"), args=["--no-sandbox"]
        )
        for target, key in [(url, "load_ms"), (f"{url}?rpc={direct_rpc}", "direct_load_ms")]:
            for _ in range(runs):
                context = browser.new_context(viewport={"width": 1440, "height": 900})
                page = context.new_page()
                page.goto(target)
                page.wait_for_function(
                    "window.efedDashboard && efedDashboard.state !== 'connecting'", timeout=300_000, polling=50
                )
                state = page.evaluate(
                    "({state: efedDashboard.state, readyAt: efedDashboard.readyAt, logs: efedDashboard.logs, error: efedDashboard.error})"
                )
                if state["state"] != "ready":
                    raise RuntimeError(f"the page did not load: {state}")
                results[key].append(state["readyAt"])
                results["logs"] = state["logs"]
                results["rows"] = page.locator("#servers tbody tr").count()
                if key == "load_ms":
                    results["sort_ms"].append(
                        page.evaluate("""() => { const t = performance.now();
                        document.querySelector('#servers th[data-sort="score"]').click(); return performance.now() - t; }""")
                    )
                    results["server_page_ms"].append(
                        page.evaluate(f"""() => {{ const t = performance.now();
                        location.hash = '#/server/{server}'; window.dispatchEvent(new HashChangeEvent('hashchange'));
                        return performance.now() - t; }}""")
                    )
                    page.evaluate("location.hash = '#/'")
                if key == "load_ms" and len(results[key]) == runs:
                    for _ in range(updates):
                        sent = time.time() * 1000
                        tx_hash = w3.eth.send_transaction(
                            {"from": server, "to": registry, "value": 10**15, "data": call_data("addStake()", [], [])}
                        )
                        block = w3.eth.wait_for_transaction_receipt(tx_hash)["blockNumber"]
                        page.wait_for_function(f"efedDashboard.block >= {block}", timeout=30_000, polling=20)
                        shown = page.evaluate(f"efedDashboard.renderedAt[{block}]")
                        results["update_ms"].append(shown - sent)
                        results["refresh_ms"].append(page.evaluate("efedDashboard.lastRefreshMs"))
                        results.setdefault("refresh_parts", []).append(page.evaluate("efedDashboard.timings"))
                        time.sleep(0.3)
                context.close()
        browser.close()
    return results


def report(r: dict, *, servers: int, epochs: int, sent: int, blocks: int, gen_s: float) -> None:
    med = lambda xs: statistics.median(xs)  # noqa: E731
    print(
        f"\nhistory: {servers} servers x {epochs} epochs, {sent:,} transactions, {blocks:,} blocks, "
        f"{r['logs']:,} event logs read by the page; generated in {gen_s:.0f}s"
    )
    print(f"{'measure':<52}{'median':>10}{'min':>10}{'max':>10}")
    rows = [
        ("page load to fully rendered, via the dashboard relay", r["load_ms"]),
        ("page load to fully rendered, straight to Anvil", r["direct_load_ms"]),
        ("new block: transaction sent -> shown (poll 1 s)", r["update_ms"]),
        ("page work per new block (read + render)", r["refresh_ms"]),
        (f"sort the {r['rows']}-row server table", r["sort_ms"]),
        ("open a server page (history, 3 charts)", r["server_page_ms"]),
    ]
    for name, xs in rows:
        print(f"{name:<52}{med(xs):>8.0f}ms{min(xs):>8.0f}ms{max(xs):>8.0f}ms")
    parts = {k: med([p[k] for p in r["refresh_parts"]]) for k in ("snapshotMs", "historyMs", "modelMs", "renderMs")}
    print(
        "per new block, medians: "
        + ", ".join(f"{k[:-2]} {v:.0f}ms" for k, v in parts.items())
        + " (snapshot and history are read in parallel)"
    )
    print(f"relay / direct load time: {med(r['load_ms']) / med(r['direct_load_ms']):.2f}x")
    print(json.dumps({k: v for k, v in r.items() if k != "refresh_parts"}, default=str))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=100, help="servers (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=200, help="epochs of history (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=3, help="page loads per mode (default: %(default)s)")
    parser.add_argument("--updates", type=int, default=5, help="new blocks to time (default: %(default)s)")
    parser.add_argument(
        "--serve",
        action="store_true",
        help="after measuring, keep the chain and the dashboard running until Ctrl-C (default: stop)",
    )
    args = parser.parse_args(argv)

    config = AnvilConfig(port=0, accounts=args.servers + 4, gas_limit=1_000_000_000)
    with Anvil(config) as anvil, tempfile.TemporaryDirectory() as tmp:
        w3 = connect(anvil.url)
        print(f"generating {args.epochs} epochs with {args.servers} servers on {anvil.url}", flush=True)
        started = time.monotonic()
        deployment, path, gen = generate(anvil.url, w3, args.servers, args.epochs, Path(tmp))
        gen_s = time.monotonic() - started
        blocks = w3.eth.block_number
        port = free_port()
        dashboard = DashboardProcess(
            port, ["--rpc-url", anvil.url, "--deployment", str(path)], log_path=Path(tmp) / "dashboard.log"
        )
        try:
            dashboard.start().wait_ready(120)
            r = measure(
                f"http://127.0.0.1:{port}/",
                w3,
                gen.honest[0],
                deployment.address("ServerRegistry"),
                runs=args.runs,
                updates=args.updates,
                direct_rpc=anvil.url,
            )
            report(r, servers=args.servers, epochs=args.epochs, sent=gen.sent, blocks=blocks, gen_s=gen_s)
            if args.serve:
                print(
                    f"serving the dashboard at http://127.0.0.1:{port}/ (chain {anvil.url}); Ctrl-C to stop", flush=True
                )
                with contextlib.suppress(KeyboardInterrupt):
                    dashboard.process.wait()
        finally:
            dashboard.stop()

    return 0


if __name__ == "__main__":
    sys.exit(main())
