"""The main job: a whole eFedLLM network on this machine, run through two epochs, reported as it happens.

Anvil with the contracts; four servers over the default model's 30 layers: A 0:10, B 10:20, F 20:30 (faulty on
purpose: it adds small noise to its outputs, so its answers look fine but are not what the layers compute), and
C 0:10 (spare capacity, rebalancing on, automatic claims); two verifiers; a client. Epoch 1: the client generates
through the network, F gets caught, deactivated and slashed; C takes over F's layers. Epoch 2: the client
generates the same text through the new route; honest servers are paid and claim, and so are the verifiers. The chain clock is
fast-forwarded window by window once every process has acted (``localnet.Walker``), so the demo never sits
waiting for time to pass. Everything the summary reports is read back from the chain.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from efedllm.chain import explain
from efedllm.chain.claims import claim
from efedllm.chain.connection import Signer
from efedllm.chain.params import ETHER, ONE
from efedllm.chain.protocol import Phase, Protocol, Status
from efedllm.localnet import (
    EfedllmProcess,
    ServerProcess,
    VerifierProcess,
    Walker,
    chain_args,
    start_all,
    wait_for,
)


@dataclass(frozen=True, kw_only=True)
class Role:
    name: str
    account: int
    layers: str
    extra: tuple[str, ...] = ()
    note: str = ""


ROLES = (
    Role(name="A", account=1, layers="0:10"),
    Role(name="B", account=2, layers="10:20"),
    Role(
        name="F",
        account=3,
        layers="20:30",
        extra=("--fault", "noise", "--fault-scale", "0.005"),
        note="faulty on purpose",
    ),
    Role(name="C", account=4, layers="0:10", extra=("--rebalance", "--auto-claim"), note="spare, rebalancing"),
)
VERIFIERS = (7, 8)
FUNDER = 5
POOL_ETH = 2


@dataclass
class Demo:
    protocol: Protocol
    deployment_path: Path
    work_dir: Path
    rpc_url: str
    prompt: str
    max_new_tokens: int
    say: callable = print
    processes: list[EfedllmProcess] = field(default_factory=list)
    report: dict = field(default_factory=lambda: {"generations": [], "epochs": {}, "claims": []})
    started: float = field(default_factory=time.monotonic)

    def log(self, message: str) -> None:
        self.say(f"[{time.monotonic() - self.started:5.0f}s] {message}")

    def address(self, account: int) -> str:
        return self.protocol.w3.eth.accounts[account]

    def _chain_args(self, account: int) -> list[str]:
        return chain_args(
            rpc_url=self.rpc_url, deployment=self.deployment_path, account=account, data_dir=self.work_dir
        )

    def start(self) -> None:
        from efedllm.chain.anvil import free_port

        logs = self.work_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for role in ROLES:
            self.processes.append(
                ServerProcess(
                    role.layers,
                    free_port(),
                    [*self._chain_args(role.account), *role.extra],
                    log_path=logs / f"server-{role.name}.log",
                )
            )
        for v in VERIFIERS:
            self.processes.append(VerifierProcess(self._chain_args(v), log_path=logs / f"verifier-{v}.log"))
        self.log(
            f"starting {len(ROLES)} servers and {len(VERIFIERS)} verifiers (each loads its part of the model; "
            f"logs in {logs})"
        )
        start_all(self.processes, timeout=600)
        for role in ROLES:
            note = f" ({role.note})" if role.note else ""
            self.log(f"server {role.name} {self.address(role.account)} serves layers {role.layers}{note}")

    def generate(self, client) -> None:
        ids = client.generate(prompt=self.prompt, max_new_tokens=self.max_new_tokens, eos_token_id=[])
        text = client.tokenizer.decode(ids[0], skip_special_tokens=True)
        names = {self.address(r.account): r.name for r in ROLES}
        route = [
            {
                "server": names.get(h.peer.address, h.peer.address),
                "address": h.peer.address,
                "layers": f"{h.start}:{h.end}",
            }
            for h in client.last_route
        ]
        self.report["generations"].append(
            {"epoch": self.protocol.current_epoch(), "route": route, "text": text, "tokens": ids[0].tolist()}
        )
        self.log("route: " + " -> ".join(f"{r['server']} [{r['layers']}]" for r in route))
        self.log(f"generated: {text!r}")

    def settle(self, walker: Walker, epoch: int, served: set[str]) -> None:
        """Commit work, verify, reveal and finalize ``epoch``, saying what happens."""
        self.log(f"epoch {epoch}: servers commit their work (Merkle roots of every step they served)")
        work = walker.commitments(epoch, served)
        self.log(f"epoch {epoch}: verifiers open sampled tasks, recompute them, send canaries; commit and reveal")
        servers = [s.address for s in self.protocol.servers()]
        scores = walker.scores(epoch, [self.address(v) for v in VERIFIERS], servers)
        names = {self.address(r.account): r.name for r in ROLES}
        entry = {}
        for address, score in scores.items():
            acc, s, outcome = score.acc, score.score, score.outcome
            committed = work.get(address)
            entry[address] = {
                "server": names[address],
                "acc": acc,
                "score": s,
                "outcome": outcome.label,
                "work_units": committed.work_units if committed else 0,
            }
            if outcome:
                self.log(f"epoch {epoch}: {names[address]}: acc {acc / ONE:.2f}, S {s / ONE:.2f} -> {outcome.label}")
        self.report["epochs"][epoch] = {"scores": entry, "pool": self.protocol.pool.functions.poolSize(epoch).call()}

    def run(self) -> dict:
        from efedllm.client import DistributedModel

        protocol = self.protocol
        walker = Walker(protocol, self.processes)
        e1 = walker.fresh_epoch()
        funder = Protocol(protocol.w3, protocol.deployment, Signer(self.address(FUNDER)))
        for epoch in (e1, e1 + 1):
            funder.tx.send(funder.pool.functions.fundEpoch(epoch), value=POOL_ETH * ETHER, label="fundEpoch")
        self.log(f"epoch {e1} begins; a client funded the pools of epochs {e1} and {e1 + 1} with {POOL_ETH} ETH each")
        client = DistributedModel.from_pretrained(protocol=protocol)
        self.generate(client)
        self.settle(walker, e1, {r["address"] for r in self.report["generations"][-1]["route"]})

        self.log("waiting for a server to take over layers nobody serves any more")
        wait_for(
            lambda: protocol.missing_layers() == [],
            "the takeover of the slashed server's layers",
            timeout=300,
            processes=self.processes,
        )
        names = {self.address(r.account): r for r in ROLES}
        for s in protocol.servers():
            role = names[s.address]
            if f"{s.first_layer}:{s.first_layer + s.num_layers}" != role.layers and s.status == Status.ACTIVE:
                self.report["takeover"] = {
                    "server": role.name,
                    "address": s.address,
                    "layers": f"{s.first_layer}:{s.first_layer + s.num_layers}",
                }
                self.log(f"server {role.name} moved to layers {self.report['takeover']['layers']} (updateServer)")

        e2 = protocol.current_epoch()
        self.log(f"epoch {e2}: the client generates again")
        self.generate(client)
        self.settle(walker, e2, {r["address"] for r in self.report["generations"][-1]["route"]})
        walker.warp(e2, Phase.SETTLED)
        self.log(f"epochs {e1} and {e2} settled: servers claim their rewards")
        for role in ROLES:
            if "--auto-claim" in role.extra:
                continue
            signer = Protocol(protocol.w3, protocol.deployment, Signer(self.address(role.account)))
            epochs, amount = claim(signer)
            if epochs:
                self.report["claims"].append({"server": role.name, "epochs": epochs, "amount": amount, "how": "claim"})
                self.log(f"server {role.name} claimed {amount / ETHER:.4f} ETH for {explain.epochs(epochs)}")
        self._wait_auto_claims((e1, e2))
        self.report["elapsed_s"] = round(time.monotonic() - self.started, 1)
        return self.report

    def _wait_auto_claims(self, epochs) -> None:
        pool = self.protocol.pool.functions
        for role in ROLES:
            if "--auto-claim" not in role.extra:
                continue
            me = self.address(role.account)
            owed = [e for e in epochs if pool.rewardWeight(e, me).call()]
            wait_for(
                lambda me=me, owed=owed: all(pool.hasClaimed(e, me).call() for e in owed),
                f"{role.name}'s automatic claim",
                timeout=120,
                processes=self.processes,
            )
            if owed:
                amount = sum(pool.shareOf(e, me).call() for e in owed)
                self.report["claims"].append({"server": role.name, "epochs": owed, "amount": amount, "how": "auto"})
                self.log(f"server {role.name} claimed {amount / ETHER:.4f} ETH for {explain.epochs(owed)} on its own")
        for v in VERIFIERS:  # each verifier claims its part of the verifiers' share once an epoch settles
            me = self.address(v)
            owed = [e for e in epochs if pool.shareOf(e, me).call()]
            wait_for(
                lambda me=me, owed=owed: all(pool.hasClaimed(e, me).call() for e in owed),
                f"verifier {me}'s claim of its pay",
                timeout=120,
                processes=self.processes,
            )
            if owed:
                amount = sum(pool.shareOf(e, me).call() for e in owed)
                self.report["claims"].append({"verifier": me, "epochs": owed, "amount": amount, "how": "auto"})
                self.log(f"verifier {me} claimed {amount / ETHER:.4f} ETH of verifier pay for {explain.epochs(owed)}")

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.report, indent=1, default=str))
