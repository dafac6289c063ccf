"""The main job: a whole eFedLLM network on this machine, run through two epochs, reported as it happens.

Anvil with the contracts; five servers over the default model's 30 layers, each announcing a price per token-layer
and declaring on chain how it computes (IServerRegistry.declareServing): A 0:10 in float32, F 10:20 (a precision
cheat on purpose: it declares float32 but computes in bfloat16, so its answers look fine but are not what the
declared configuration computes), B 20:30 with int8 weights, C 0:10 in bfloat16 (spare capacity, rebalancing on,
automatic claims) and E 20:30 with int8 weights, the cheapest, which equivocates on purpose (it records and commits
the honest output but sends the client a slightly wrong one, signed); two verifiers, which recompute every server's
opened steps as it declared (its dtype, its int8 weights) and hold them to that configuration's bound
(efedllm/verifier/rules.py); a client that deposits into Payments and pays every step with a signed receipt.
Epoch 1: the client generates through the network (E is cheaper than B, so it carries layers 20:30); once the epoch's
work is over the servers redeem the client's receipts, each for price x tokens x layers to the wei. F gets caught by
the verifiers (its outputs are 2e-2 off the float32 it declared, the bound is 1e-3), deactivated and slashed; E passes their checks (what it recorded is honest, and what it sends is off
by less than a recomputation's tolerance, so their paid canaries pass too), but once the epoch's seed is drawn the
client challenges one of E's signed answers on chain (ServingChallenges): E cannot show it committed that answer,
and when the response window ends ``enforce`` slashes and deactivates it. C takes over F's layers.
Epoch 2: the client generates the same text through the new route, and pays for it; honest servers are paid from
the pool and claim, and so are the verifiers. The chain clock is fast-forwarded window by window once every process
has acted (``localnet.Walker``), so the demo never sits waiting for time to pass. Everything the summary reports is
read back from the chain.

This client does not hand its signed answers to the verifiers (``handed_per_server=0``; client/reports.py), which
would get E caught by the verifiers within the epoch: the demo shows the other way a client holds a server to what
it signed, its own challenge.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from web3.logs import DISCARD

from efedllm.chain import explain
from efedllm.chain.anvil import warp_to
from efedllm.chain.claims import claim
from efedllm.chain.connection import Signer
from efedllm.chain.params import ETHER, ONE
from efedllm.chain.protocol import Phase, Protocol, Status
from efedllm.errors import EfedError
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
    price: int
    """Wei per token-layer the server announces (``--price``)."""
    extra: tuple[str, ...] = ()
    note: str = ""


GWEI = 10**9
ROLES = (
    Role(name="A", account=1, layers="0:10", price=10 * GWEI, note="float32"),
    Role(name="B", account=2, layers="20:30", price=30 * GWEI, extra=("--quantize", "int8"), note="int8 weights"),
    # declares float32 and computes bfloat16: what C computes after it takes these layers over, so the text stays
    Role(
        name="F",
        account=3,
        layers="10:20",
        price=10 * GWEI,
        extra=("--fault", "lower", "--fault-as", "bfloat16"),
        note="declares float32, computes bfloat16 on purpose",
    ),
    # dearer than A, so that the client takes A for 0:10 in both epochs
    Role(
        name="C",
        account=4,
        layers="0:10",
        price=20 * GWEI,
        extra=("--dtype", "bfloat16", "--rebalance", "--auto-claim"),
        note="bfloat16, spare, rebalancing",
    ),
    # the cheapest on 20:30 by far (the route planner weighs price against speed), so the client takes it in epoch 1;
    # noise of 4e-6 of its outputs' spread puts its answers about 2e-4 off per token (the spread is set by a few
    # huge activations), within a verifier's recomputation tolerance (1e-3): no canary catches it and the client's
    # text stays the same (B computes as E does: int8 weights; E is the last hop, so no bfloat16 layer after it
    # rounds its noise into a different ulp); the hash it signs is exact, and so is a challenge
    Role(
        name="E",
        account=6,
        layers="20:30",
        price=1 * GWEI,
        extra=("--quantize", "int8", "--fault", "equivocate", "--fault-scale", "4e-6"),
        note="int8 weights, equivocates on purpose",
    ),
)
EQUIVOCATOR = "E"
VERIFIERS = (7, 8)
FUNDER = 5
CLIENT = 9
POOL_ETH = 2
DEPOSIT = ETHER // 100
"""What the client deposits into Payments: far more than its fees in the demo."""


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
    report: dict = field(default_factory=lambda: {"generations": [], "epochs": {}, "claims": [], "fees": []})
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
                    [*self._chain_args(role.account), "--price", str(role.price), *role.extra],
                    log_path=logs / f"server-{role.name}.log",
                )
            )
        for v in VERIFIERS:
            self.processes.append(VerifierProcess(self._chain_args(v), log_path=logs / f"verifier-{v}.log"))
        self.log(
            f"starting {len(ROLES)} servers and {len(VERIFIERS)} verifiers (each loads its part of the model; "
            f"logs in {logs})"
        )
        # two servers at a time, then the verifiers: all at once, seven processes measuring their speed and loading
        # models left a 2-core machine's chain node (Ganache, single-threaded) too little CPU to answer in 30 s
        started: list[EfedllmProcess] = []
        try:
            servers, verifiers = self.processes[: len(ROLES)], self.processes[len(ROLES) :]
            for wave in [servers[i : i + 2] for i in range(0, len(servers), 2)] + [verifiers]:
                start_all(wave, timeout=600)
                started += wave
        except Exception:
            for process in started:
                process.stop()
            raise
        for role in ROLES:
            note = f", {role.note}" if role.note else ""
            declared = self.protocol.server(self.address(role.account)).serving.label
            self.report.setdefault("declared", {})[role.name] = declared
            self.log(
                f"server {role.name} {self.address(role.account)} serves layers {role.layers}, declared {declared} "
                f"on chain ({role.price / GWEI:g} gwei per token-layer{note})"
            )

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
        # what each server computed: the prompt (prefill), then every generated token but the last
        sent = client.encode(prompt=self.prompt).shape[1] + ids.shape[1] - 1
        self.report["generations"].append(
            {
                "epoch": self.protocol.current_epoch(),
                "route": route,
                "text": text,
                "tokens": ids[0].tolist(),
                "tokens_sent": sent,
                "failovers": client.last_failovers,
            }
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

    def fees(self, epoch: int) -> None:
        """Wait for the servers of ``epoch``'s route to redeem the client's receipts, and check each against price x
        tokens x layers of the steps it served."""
        payments = self.protocol.payments.functions
        client = self.address(CLIENT)
        generation = next(g for g in self.report["generations"] if g["epoch"] == epoch)
        owed: dict[str, dict] = {}
        for hop in generation["route"]:
            role = next(r for r in ROLES if r.name == hop["server"])
            start, end = map(int, hop["layers"].split(":"))
            entry = owed.setdefault(
                hop["address"],
                {"epoch": epoch, "server": role.name, "price": role.price, "tokens": generation["tokens_sent"]},
            )
            entry["layers"] = entry.get("layers", 0) + end - start
        wait_for(
            lambda: all(payments.redeemed(epoch, client, s).call() for s in owed),
            f"the servers to redeem the client's receipts of epoch {epoch}",
            processes=self.processes,
        )
        for address, entry in owed.items():
            entry["owed"] = entry["price"] * entry["tokens"] * entry["layers"]
            entry["redeemed"] = payments.redeemed(epoch, client, address).call()
            self.report["fees"].append(entry)
            self.log(
                f"epoch {epoch}: server {entry['server']} redeemed the client's receipt: {entry['redeemed']:,} wei "
                f"{'=' if entry['redeemed'] == entry['owed'] else '!='} {entry['price']:,} wei x {entry['tokens']} "
                f"tokens x {entry['layers']} layers"
            )

    def catch_equivocator(self, client, payer: Protocol, epoch: int) -> None:
        """The client (``client`` holds its signed answers, ``payer`` its account) challenges one of E's signed
        answers of ``epoch``, whose seed is drawn; E has no proof, and ``enforce`` slashes it once the response window
        is over."""
        role = next(r for r in ROLES if r.name == EQUIVOCATOR)
        me = self.address(role.account)
        challenges = payer.challenges
        kept = [a for a in client.answers.kept if a.server == me and a.answer.epoch == epoch]
        if not kept:
            raise EfedError(f"server {role.name} served the client nothing in epoch {epoch}: nothing to challenge")
        signed = kept[len(kept) // 2]
        bond = challenges.functions.BOND().call()
        receipt = payer.tx.send(
            challenges.functions.challenge(signed.answer.as_tuple(), signed.signature), value=bond, label="challenge"
        )
        opened = challenges.events.Challenged().process_receipt(receipt, errors=DISCARD)[0]["args"]
        window = challenges.functions.RESPONSE_WINDOW().call()
        self.log(
            f"epoch {epoch}: {role.name} passed the verifiers (its records are honest, its answers off by less than "
            f"their tolerance), but the client holds what it was sent, signed: it challenges {role.name}'s answer "
            f"#{signed.answer.index} on chain (bond {explain.ether(bond)}); {role.name} must prove within {window} s "
            "that it committed that answer"
        )
        process = next(p for p in self.processes if p.log_path and p.log_path.name == f"server-{role.name}.log")
        wait_for(
            lambda: "cannot be answered" in process.log_tail(20_000),
            f"server {role.name} to look for a proof",
            processes=self.processes,
        )
        self.log(f"server {role.name} finds no such leaf in the tree it committed: it cannot answer")
        stake = self.protocol.server(me).stake
        warp_to(self.protocol.w3, opened["deadline"] + 1)
        receipt = payer.tx.send(challenges.functions.enforce(opened["id"]), label="enforce")
        upheld = challenges.events.ChallengeUpheld().process_receipt(receipt, errors=DISCARD)[0]["args"]
        payer.tx.send(challenges.functions.withdrawBonds(), label="withdrawBonds")
        into = self.protocol.current_epoch()
        self.report["challenge"] = {
            "server": role.name,
            "address": me,
            "epoch": epoch,
            "index": signed.answer.index,
            "id": "0x" + bytes(opened["id"]).hex(),
            "stake_before": stake,
            "slashed": upheld["slashed"],
            "into_epoch": into,
        }
        self.log(
            f"the response window is over: enforce upheld the challenge, slashed {role.name} "
            f"{explain.ether(upheld['slashed'])} of its {explain.ether(stake)} into epoch {into}'s pool and "
            "deactivated it; the client took its bond back"
        )

    def run(self) -> dict:
        from efedllm.client import DistributedModel

        protocol = self.protocol
        walker = Walker(protocol, self.processes)
        e1 = walker.fresh_epoch()
        funder = Protocol(protocol.w3, protocol.deployment, Signer(self.address(FUNDER)))
        for epoch in (e1, e1 + 1):
            funder.tx.send(funder.pool.functions.fundEpoch(epoch), value=POOL_ETH * ETHER, label="fundEpoch")
        self.log(f"epoch {e1} begins; a client funded the pools of epochs {e1} and {e1 + 1} with {POOL_ETH} ETH each")
        payer = Protocol(protocol.w3, protocol.deployment, Signer(self.address(CLIENT)))
        payer.tx.send(payer.payments.functions.deposit(), value=DEPOSIT, label="deposit")
        self.log(
            f"the client {payer.signer.address} deposited {explain.ether(DEPOSIT)} into Payments; it pays every step "
            "with a signed receipt, which the servers redeem once the epoch's work is over"
        )
        client = DistributedModel.from_pretrained(protocol=payer, handed_per_server=0)
        self.generate(client)
        self.settle(walker, e1, {r["address"] for r in self.report["generations"][-1]["route"]})
        self.fees(e1)
        self.catch_equivocator(client, payer, e1)

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
        self.fees(e2)
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
                if role.name == EQUIVOCATOR:  # docs/SECURITY.md: "A server caught only by a challenge keeps ..."
                    self.log(
                        f"({role.name} passed epoch {e1}, whose pay follows its scores: caught by a challenge, it keeps "
                        "its pool share of that epoch, and the fees of its wrong answers)"
                    )
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
