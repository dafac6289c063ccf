"""``efedllm demo``: the main job. A whole local network (chain, contracts, servers, verifiers, a paying client) on
the real model, run through two epochs with a cheating server caught and replaced and an equivocating one caught by
the client's challenge (see efedllm/demo.py); every process it started is stopped on exit or Ctrl-C."""

from __future__ import annotations

import argparse
import dataclasses
import signal
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from efedllm.chain.compile import compile_contracts
from efedllm.chain.connection import Signer, connect
from efedllm.chain.deploy import deploy
from efedllm.chain.node import NODE_KINDS, LocalNode, NodeConfig
from efedllm.chain.params import ONE
from efedllm.chain.protocol import Protocol
from efedllm.chain.transactions import ErrorDecoder, Transactor
from efedllm.cli.common import ether, say, table

NODE_NAMES = {"anvil": "Anvil", "ganache": "Ganache"}


def register(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="run a whole local eFedLLM network through two epochs and report it")
    parser.add_argument(
        "--rpc-url",
        default=None,
        help="use this running dev chain (Anvil or Ganache) instead of starting one (default: start one, see --node)",
    )
    parser.add_argument(
        "--node",
        choices=NODE_KINDS,
        default="anvil",
        help="the dev chain node to start when no --rpc-url is given (default: %(default)s)",
    )
    parser.add_argument(
        "--work-dir", type=Path, default=None, help="deployment, logs and server data (default: a temporary directory)"
    )
    parser.add_argument(
        "--prompt",
        default="Name three animals that live in the sea.",
        help="what the client asks (default: %(default)s)",
    )
    parser.add_argument(
        "--max-new-tokens", type=int, default=16, help="tokens the client generates each time (default: %(default)s)"
    )
    parser.add_argument("--summary-json", type=Path, default=None, help="also write the report as JSON (default: no)")
    parser.add_argument(
        "--no-dashboard", action="store_true", help="do not start the web dashboard (default: start it)"
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the network (and dashboard) running after the summary until Ctrl-C (default: off)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from efedllm.chain.anvil import free_port
    from efedllm.demo import VERIFIERS, Demo
    from efedllm.localnet import WALKED_PARAMS, DashboardProcess, stop_all

    # Ctrl-C or SIGTERM at any moment ends the run through KeyboardInterrupt, so the ExitStack below stops every
    # process the demo started (servers, verifiers, dashboard, Anvil) before the command exits.
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    with ExitStack() as stack:
        work = args.work_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="efedllm-demo-")))
        rpc_url = args.rpc_url
        if rpc_url is None:
            node = stack.enter_context(LocalNode(NodeConfig(kind=args.node, port=0)))
            rpc_url = node.url
            say(f"[    0s] local chain: {NODE_NAMES[args.node]} at {rpc_url}")
        w3 = connect(rpc_url)
        artifacts = compile_contracts()
        tx = Transactor(w3, Signer(w3.eth.accounts[0]), ErrorDecoder(a.abi for a in artifacts.values()))
        params = dataclasses.replace(WALKED_PARAMS, min_verifiers=len(VERIFIERS))
        deployment = deploy(
            w3, tx, params=params, artifacts=artifacts, verifiers=[w3.eth.accounts[v] for v in VERIFIERS]
        )
        path = deployment.save(work / "deployments")
        say(f"[{time.monotonic() - started:5.0f}s] contracts deployed; deployment file {path}")
        protocol = Protocol(w3, deployment)
        demo = Demo(
            protocol=protocol,
            deployment_path=path,
            work_dir=work,
            rpc_url=rpc_url,
            prompt=args.prompt,
            max_new_tokens=args.max_new_tokens,
            say=say,
            started=started,
        )
        stack.callback(stop_all, demo.processes)
        if not args.no_dashboard:
            dashboard = DashboardProcess(
                free_port(), ["--rpc-url", rpc_url, "--deployment", str(path)], log_path=work / "dashboard.log"
            )
            demo.processes.append(dashboard)  # started with the servers and verifiers
        demo.start()
        if not args.no_dashboard:
            say(f"[{time.monotonic() - started:5.0f}s] dashboard: {dashboard.url} (live from the chain)")
        report = demo.run()
        print_summary(protocol, report, deployment_block=deployment.block)
        if args.summary_json:
            demo.save(args.summary_json)
        say(f"\ndone in {report['elapsed_s']:.0f}s")
        if not args.no_dashboard:
            say(f"dashboard: {dashboard.url}")
        if args.keep:
            say(f"network running (chain {rpc_url}, logs in {work / 'logs'}); Ctrl-C stops every process")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                say("stopping every process")
    return 0


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


def print_summary(protocol: Protocol, report: dict, *, deployment_block: int) -> None:
    """What happened, read back from the chain."""
    from efedllm.demo import CLIENT, ROLES, VERIFIERS

    names = {protocol.w3.eth.accounts[r.account]: r.name for r in ROLES}
    fees: dict[str, int] = {}
    for event in protocol.payments.events.Redeemed().get_logs(from_block=deployment_block):
        fees[event.args.server] = fees.get(event.args.server, 0) + event.args.paid
    claimed: dict[str, int] = {}
    for event in protocol.pool.events.RewardsClaimed().get_logs(from_block=deployment_block):
        claimed[event.args.server] = claimed.get(event.args.server, 0) + event.args.amount
    epochs = sorted(int(e) for e in report["epochs"])
    rows = []
    for s in sorted(protocol.servers(), key=lambda s: names[s.address]):
        cells = [
            names[s.address],
            s.address[:10] + "…",
            f"{s.first_layer}:{s.first_layer + s.num_layers}",
            s.serving.label,
            s.status.name.lower(),
            ether(s.stake),
            s.times_slashed,
        ]
        for epoch in epochs:
            score = protocol.score_of(epoch, s.address)
            cells.append(
                f"{score.acc / ONE:.2f} / {score.score / ONE:.2f} {score.outcome.label}" if score.outcome else "-"
            )
        cells.append(ether(claimed.get(s.address, 0)))
        price = protocol.payments.functions.priceOf(s.address).call()
        cells += [f"{price / 10**9:g} gwei", f"{fees.get(s.address, 0):,} wei"]
        rows.append(cells)
    headers = [
        "server",
        "address",
        "layers",
        "declared",
        "status",
        "stake",
        "slashed",
        *(f"epoch {e}: acc / S" for e in epochs),
        "rewards claimed",
        "price/token-layer",
        "fees redeemed",
    ]
    say("\n== servers (read from the chain) ==")
    say(table(headers, rows))
    say("\n== verifiers ==")
    verifier_rows = []
    for v in VERIFIERS:
        address = protocol.w3.eth.accounts[v]
        stake = protocol.verifier_stake(address)
        verifier_rows.append(
            [address[:10] + "…", ether(stake.bonded), stake.times_slashed, ether(claimed.get(address, 0))]
        )
    say(table(["verifier", "stake", "slashed", "pay claimed"], verifier_rows))
    say("\n== generations ==")
    for g in report["generations"]:
        route = " -> ".join(f"{r['server']} [{r['layers']}]" for r in g["route"])
        say(f"epoch {g['epoch']}: {route}\n  {g['text']!r}")
    same = len({tuple(g["tokens"]) for g in report["generations"]}) == 1
    say(f"identical text before and after the takeover: {'yes' if same else 'NO'}")
    say("\n== the client's payments (receipts redeemed, read from the chain) ==")
    client = protocol.w3.eth.accounts[CLIENT]
    for f in report["fees"]:
        address = protocol.w3.eth.accounts[next(r.account for r in ROLES if r.name == f["server"])]
        redeemed = protocol.payments.functions.redeemed(f["epoch"], client, address).call()
        exact = "yes" if redeemed == f["price"] * f["tokens"] * f["layers"] else "NO"
        say(
            f"epoch {f['epoch']}: {f['server']} redeemed {redeemed:,} wei = {f['price']:,} wei x {f['tokens']} tokens x "
            f"{f['layers']} layers: {exact}"
        )
    available, _pending, _unlock = protocol.payments.functions.accountOf(client).call()
    say(f"the client has {ether(available)} left in Payments")
    caught = report.get("challenge")
    if caught:
        upheld = protocol.challenges.events.ChallengeUpheld().get_logs(from_block=deployment_block)
        slashed = sum(e.args.slashed for e in upheld if e.args.server == caught["address"])
        say(
            f"\n== challenges ==\n{caught['server']}'s signed answer #{caught['index']} of epoch {caught['epoch']}: "
            f"unanswered, upheld; {caught['server']} slashed {ether(slashed)} into epoch {caught['into_epoch']}'s pool"
        )
    say("\n== pools ==")
    for epoch in epochs:
        pool = protocol.pool_of(epoch)
        pot = protocol.pool.functions.verifierPot(epoch).call()
        say(
            f"epoch {epoch}: funded {ether(pool.funded)}, slashed stake {ether(pool.slashed)}, paid {ether(pool.claimed)}; "
            f"the verifiers' share {ether(pot)}, split by {pool.verifiers} verifier(s)"
        )
