"""The verifier's epoch loop: commitment -> sample -> verify -> commit scores -> reveal -> finalize -> penalize.

Chain time decides everything: for each recent epoch the loop looks at its phase and does what that phase asks,
once. What it did is kept in a small JSON file, so a verifier restarted between commit and reveal still reveals
(with the same salt) instead of losing its vote.
"""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
from pathlib import Path

from efedllm.chain.connection import message_signer
from efedllm.chain.explain import ether
from efedllm.chain.params import ONE
from efedllm.chain.protocol import Phase, Protocol, Status
from efedllm.chain.transactions import RevertError
from efedllm.verifier.config import VerifyConfig
from efedllm.verifier.remote import Target
from efedllm.verifier.scoring import verify_server
from efedllm.verifier.stake import apply_penalty, find_penalties

log = logging.getLogger("efedllm.verifier")


class VerifierState:
    """Per epoch: the servers and accuracies committed, the salt, and which steps are done."""

    def __init__(self, path: Path):
        self.path = path
        self.epochs: dict[str, dict] = json.loads(path.read_text())["epochs"] if path.exists() else {}

    def get(self, epoch: int) -> dict:
        return self.epochs.setdefault(str(epoch), {})

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"epochs": self.epochs}, indent=1))
        os.replace(tmp, self.path)


class Verifier:
    def __init__(
        self,
        protocol: Protocol,
        model,
        tokenizer,
        config: VerifyConfig,
        *,
        data_dir: Path,
        progress=print,
        penalize: bool = True,
    ):
        self.protocol, self.model, self.tokenizer, self.config = protocol, model, tokenizer, config
        self.progress, self.penalize = progress, penalize
        self.accuracy = lambda tally: tally.accuracy(config.policy)
        """A server's acc (scaled by ONE) from its checks' tally under the policy (replaceable, e.g. by a test aid,
        efedllm/aids/)."""
        self.me = protocol.signer.address
        self.sign = message_signer(protocol.w3, protocol.signer)
        self.chain_id = protocol.w3.eth.chain_id
        self.state = VerifierState(Path(data_dir) / f"verifier-{self.me}.json")
        self.rng = random.Random(secrets.randbits(64))
        self.first_epoch = protocol.current_epoch()
        """Epochs before this one had windows before this verifier started: missing them is not its fault."""

    # ------------------------------------------------------------------ phases

    def tick(self) -> None:
        now = self.protocol.current_epoch()
        for epoch in range(max(0, now - 4), now):
            phase, st = self.protocol.phase(epoch), self.state.get(epoch)
            if phase == Phase.COMMIT_SCORES and "committed" not in st:
                self.score_and_commit(epoch, st)
            elif phase == Phase.REVEAL_SCORES and "committed" in st and "revealed" not in st and st["servers"]:
                self.reveal(epoch, st)
            elif phase == Phase.FINALIZE and "finalized" not in st:
                self.finalize(epoch, st)
            elif phase in (Phase.FINALIZE, Phase.SETTLED) and self.penalize and "penalized" not in st:
                self.penalize_others(epoch, st)
            self._say_if_missed(epoch, phase, st)

    def _say_if_missed(self, epoch: int, phase: Phase, st: dict) -> None:
        """Loudly, once: a window of an epoch this verifier was running for closed before it acted (a chain whose
        clock stood still and then jumped, a verifier too slow for its windows). Its vote is lost for that epoch."""
        if epoch < self.first_epoch or "missed" in st:
            return
        if phase > Phase.COMMIT_SCORES and "committed" not in st:
            what = "commit-scores"
        elif phase > Phase.REVEAL_SCORES and st.get("servers") and "revealed" not in st:
            what = "reveal"
        else:
            return
        st["missed"] = what
        self.state.save()
        log.error(
            "epoch %d: MISSED its %s window (the epoch is already in its %s phase): this verifier's scores for it "
            "count for nothing; check that the chain's clock moves (a dev chain needs a block interval) and that "
            "verifying fits in the window",
            epoch,
            what,
            phase.name.lower().replace("_", "-"),
        )

    def _seed(self, epoch: int) -> bytes:
        ledger = self.protocol.ledger.functions
        seed = ledger.sampleSeed(epoch).call()
        if seed == b"\0" * 32:
            try:
                self.protocol.tx.send(ledger.drawSeed(epoch), label="drawSeed")
            except RevertError as exc:
                if exc.error != "SeedAlreadyDrawn":
                    raise
            seed = ledger.sampleSeed(epoch).call()
        return seed

    def score_and_commit(self, epoch: int, st: dict) -> None:
        seed = self._seed(epoch)
        targets = []
        for s in self.protocol.servers():
            work = self.protocol.commitment_of(epoch, s.address)
            if work.lost:
                self.progress(f"epoch {epoch}: {s.address} declared its records lost: not verified (no pay, no slash)")
                continue
            if s.status == Status.ACTIVE or (s.status == Status.INACTIVE and work.work_units > 0):
                targets.append((s, work))
        self.progress(
            f"epoch {epoch}: verifying {len(targets)} server(s) "
            f"({self.config.samples} openings each at most, {self.config.canaries} canary prompt(s))"
        )
        results = {}
        for s, work in targets:
            target = Target(address=s.address, endpoint=s.endpoint, first_layer=s.first_layer, num_layers=s.num_layers)
            tally = verify_server(
                target,
                model=self.model,
                tokenizer=self.tokenizer,
                config=self.config,
                sign=self.sign,
                chain_id=self.chain_id,
                epoch=epoch,
                seed=seed,
                root=work.root,
                work_units=work.work_units,
                rng=self.rng,
            )
            acc = self.accuracy(tally)
            results[s.address] = acc
            caught = f"; caught: {tally.frauds[0]}" if tally.frauds else ""
            down = f", {len(tally.unreachable)} unreachable" if tally.unreachable else ""
            self.progress(
                f"epoch {epoch}: {s.address} acc {acc / ONE:.3f} ({tally.passed}/{tally.checked} checks{down}, "
                f"{work.work_units} work units){caught}"
            )
        servers = sorted(results, key=lambda a: int(a, 16))
        st.update(servers=servers, accuracies=[results[a] for a in servers], salt="0x" + secrets.token_hex(32))
        if servers:
            salt = bytes.fromhex(st["salt"][2:])
            digest = self.protocol.scoring.functions.scoresHash(self.me, epoch, servers, st["accuracies"], salt).call()
            receipt = self.protocol.tx.send(
                self.protocol.scoring.functions.commitScores(epoch, digest), label="commitScores"
            )
            st["committed"] = receipt["transactionHash"].hex()
            self.progress(f"epoch {epoch}: committed scores for {len(servers)} server(s)")
        else:
            st["committed"] = None
        self.state.save()

    def reveal(self, epoch: int, st: dict) -> None:
        call = self.protocol.scoring.functions.revealScores(
            epoch, st["servers"], st["accuracies"], bytes.fromhex(st["salt"][2:])
        )
        st["revealed"] = self.protocol.tx.send(call, label="revealScores")["transactionHash"].hex()
        self.state.save()
        self.progress(f"epoch {epoch}: revealed scores")

    def finalize(self, epoch: int, st: dict) -> None:
        servers = sorted((s.address for s in self.protocol.servers()), key=lambda a: int(a, 16))
        if servers:
            receipt = self.protocol.tx.send(self.protocol.scoring.functions.finalize(epoch, servers), label="finalize")
            st["finalized"] = receipt["transactionHash"].hex()
        else:
            st["finalized"] = None
        self.state.save()
        for address in servers:
            score = self.protocol.score_of(epoch, address)
            if score.outcome:  # outcome None: nothing happened to this server
                self.progress(
                    f"epoch {epoch}: finalized {address}: acc {score.acc / ONE:.3f}, "
                    f"S {score.score / ONE:.3f} -> {score.outcome.label}"
                )

    def penalize_others(self, epoch: int, st: dict) -> None:
        """Slash the verifiers that committed for ``epoch`` and never revealed, or revealed more than κ from a
        finalized median (once per epoch; another verifier may have done it first)."""
        done = []
        for penalty in find_penalties(self.protocol, epoch):
            if penalty.verifier == self.me:
                continue
            amount = apply_penalty(self.protocol, penalty)
            if amount is not None:
                self.progress(f"epoch {epoch}: penalized: {penalty.describe()}; slashed {ether(amount)}")
                done.append(penalty.verifier)
        st["penalized"] = done
        self.state.save()

    # ------------------------------------------------------------------ loop

    def run(self, stop, *, interval: float = 1.0, max_backoff: float = 30.0) -> None:
        """Until ``stop`` (a threading.Event) is set."""
        delay = interval
        while not stop.wait(delay):
            try:
                self.tick()
                delay = interval
            except Exception as exc:  # noqa: BLE001 - chain away or a window missed: log and go on
                delay = min(delay * 2, max_backoff)
                log.warning("verifier step failed (%s: %s); retrying in %.0fs", exc.__class__.__name__, exc, delay)
