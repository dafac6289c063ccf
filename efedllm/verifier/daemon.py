"""The verifier's epoch loop: seed share -> seed -> sample -> verify -> commit scores -> reveal -> finalize ->
penalize -> claim.

Chain time decides everything: for each recent epoch the loop looks at its phase and does what that phase asks,
once. While an epoch works (or its servers commit), the verifier commits the hash of a random salt, its share of
the epoch's sampling seed; once commitments are closed it reveals the salt and draws the seed (TrustScoring.drawSeed
waits until every share is revealed, or a quarter into the window), samples with it, verifies and commits its
scores. What it did is kept in a small JSON file, written before each commitment is sent, so a verifier restarted
between a commit and its reveal still reveals (with the same salt) instead of losing its vote or being penalized
for a withheld seed share. Once an epoch settles, the verifier claims its pay for it.
"""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
from pathlib import Path

from efedllm.chain import explain
from efedllm.chain.claims import claim
from efedllm.chain.connection import Signer, message_signer
from efedllm.chain.explain import ether
from efedllm.chain.params import ONE
from efedllm.chain.protocol import Phase, Protocol, Status
from efedllm.chain.transactions import RevertError
from efedllm.verifier.canaries import Canaries, CanaryAccount
from efedllm.verifier.config import VerifyConfig
from efedllm.verifier.inbox import AnswerInbox, pull_answers
from efedllm.verifier.remote import Target
from efedllm.verifier.scoring import verify_server
from efedllm.verifier.stake import apply_penalty, find_penalties

log = logging.getLogger("efedllm.verifier")


class VerifierState:
    """Per epoch: the seed share's salt, the servers and accuracies committed, their salt, and which steps are
    done."""

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
        inbox: AnswerInbox | None = None,
        canary_account: Signer | None = None,
    ):
        """``canary_account``: the client account canaries pay priced servers from (verifier/canaries.py; None:
        priced servers get no canaries)."""
        self.protocol, self.model, self.tokenizer, self.config = protocol, model, tokenizer, config
        self.inbox = inbox
        """The answers clients handed this verifier (verifier/inbox.py); None: it runs no inbox."""
        self.progress, self.penalize = progress, penalize
        self.accuracy = lambda tally: tally.accuracy(config.policy)
        """A server's acc (scaled by ONE) from its checks' tally under the policy (replaceable, e.g. by a test aid,
        efedllm/aids/)."""
        self.me = protocol.signer.address
        self.sign = message_signer(protocol.w3, protocol.signer)
        self.chain_id = protocol.w3.eth.chain_id
        self.state = VerifierState(Path(data_dir) / f"verifier-{self.me}.json")
        self.rng = random.Random(secrets.randbits(64))
        self.canaries = Canaries(
            model=model,
            tokenizer=tokenizer,
            config=config,
            domain=protocol.answer_domain,
            account=None
            if canary_account is None
            else CanaryAccount(protocol, canary_account, owed=self._owed(canary_account.address)),
            rng=self.rng,
        )
        self.first_epoch = protocol.current_epoch()
        """Epochs before this one had windows before this verifier started: missing them is not its fault."""

    # ------------------------------------------------------------------ phases

    def tick(self) -> None:
        now = self.protocol.current_epoch()
        for epoch in range(max(0, now - 4), now + 1):
            phase, st = self.protocol.phase(epoch), self.state.get(epoch)
            if phase in (Phase.WORK, Phase.COMMIT_WORK) and "seed_committed" not in st:
                self.commit_seed_share(epoch, st)
            elif phase == Phase.COMMIT_SCORES and "committed" not in st:
                self.score_and_commit(epoch, st)
            elif phase == Phase.REVEAL_SCORES and "committed" in st and "revealed" not in st and st["servers"]:
                self.reveal(epoch, st)
            elif phase == Phase.FINALIZE and "finalized" not in st:
                self.finalize(epoch, st)
            elif phase in (Phase.FINALIZE, Phase.SETTLED) and self.penalize and "penalized" not in st:
                self.penalize_others(epoch, st)
            self._say_if_missed(epoch, phase, st)
        self.claim_pay()

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

    # ------------------------------------------------------------------ the sampling seed

    def commit_seed_share(self, epoch: int, st: dict) -> None:
        """Commit the hash of a random salt as this verifier's share of ``epoch``'s seed (its Work or CommitWork
        phase). The salt is saved before the transaction is sent: a verifier that stops after sending it still
        reveals the share when it comes back, instead of being penalized for withholding it."""
        scoring = self.protocol.scoring.functions
        commitment, _revealed = scoring.seedShareOf(epoch, self.me).call()
        if commitment != bytes(32):  # sent before a restart (with the salt saved), or by another copy of this key
            ours = "seed_salt" in st and commitment == self._seed_commitment(epoch, st)
            st["seed_committed"] = "before a restart" if ours else None
            if not ours:
                log.error(
                    "epoch %d: a seed share of %s is on chain but its salt is not in %s",
                    epoch,
                    self.me,
                    self.state.path,
                )
            self.state.save()
            return
        if "seed_salt" not in st:
            st["seed_salt"] = "0x" + secrets.token_hex(32)
            self.state.save()
        call = scoring.commitSeed(epoch, self._seed_commitment(epoch, st))
        try:
            receipt = self.protocol.tx.send(call, label="commitSeed")
        except RevertError as exc:
            if exc.error == "VerifierStakeTooLow":  # slashed below it: it cannot commit scores either
                if "seed_low_stake" not in st:
                    st["seed_low_stake"] = True
                    log.error(
                        "epoch %d: no seed share committed (%s): top the bond up with `efedllm verifier stake`",
                        epoch,
                        exc,
                    )
                self.state.save()
                return  # tried again next tick: the bond may be topped up meanwhile
            if exc.error != "WrongPhase":  # a paused contract: the next tick tries again
                raise
            st["seed_committed"] = None  # commitments closed while it was sent: no share for this epoch
            log.warning("epoch %d: no seed share committed: %s", epoch, exc)
        else:
            st["seed_committed"] = receipt["transactionHash"].hex()
            self.progress(f"epoch {epoch}: committed a seed share")
        self.state.save()

    def _seed_commitment(self, epoch: int, st: dict) -> bytes:
        salt = bytes.fromhex(st["seed_salt"][2:])
        return self.protocol.scoring.functions.seedShareHash(self.me, epoch, salt).call()

    def _reveal_seed_share(self, epoch: int, st: dict) -> None:
        if not st.get("seed_committed") or "seed_revealed" in st:
            return
        call = self.protocol.scoring.functions.revealSeed(epoch, bytes.fromhex(st["seed_salt"][2:]))
        try:
            st["seed_revealed"] = self.protocol.tx.send(call, label="revealSeed")["transactionHash"].hex()
        except RevertError as exc:
            if exc.error == "SeedShareAlreadyRevealed":
                st["seed_revealed"] = "before a restart"
            elif exc.error == "SeedAlreadyDrawn":
                st["seed_revealed"] = None
                log.error(
                    "epoch %d: the seed was drawn before this verifier revealed its share: it will be penalized for "
                    "withholding it; check that verifying keeps up with the chain's windows",
                    epoch,
                )
            else:
                raise
        self.state.save()

    def _seed(self, epoch: int, st: dict) -> bytes | None:
        """The epoch's sampling seed: reveal this verifier's share, then draw the seed from the revealed shares.
        None while TrustScoring waits for other verifiers' shares (the next tick tries again)."""
        ledger, scoring = self.protocol.ledger.functions, self.protocol.scoring.functions
        seed = ledger.sampleSeed(epoch).call()
        if seed != bytes(32):
            return seed
        self._reveal_seed_share(epoch, st)
        try:
            self.protocol.tx.send(scoring.drawSeed(epoch), label="drawSeed")
        except RevertError as exc:
            if exc.error == "SeedNotReady":
                if "seed_waiting" not in st:
                    st["seed_waiting"] = True
                    committed, revealed = scoring.seedShares(epoch).call()
                    self.progress(
                        f"epoch {epoch}: waiting for the seed ({revealed} of {committed} share(s) revealed; drawn "
                        f"at the latest at {explain.utc(scoring.seedReadyAt(epoch).call())})"
                    )
                return None
            if exc.error != "SeedAlreadyDrawn":
                raise
        else:
            committed, revealed = scoring.seedShares(epoch).call()
            self.progress(f"epoch {epoch}: drew the seed from {revealed} of {committed} seed share(s)")
        return ledger.sampleSeed(epoch).call()

    # ------------------------------------------------------------------ scores

    def score_and_commit(self, epoch: int, st: dict) -> None:
        seed = self._seed(epoch, st)
        if seed is None:
            return
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
        handed = self._handed(epoch)
        results = {}
        for s, work in targets:
            target = Target(
                address=s.address,
                endpoint=s.endpoint,
                first_layer=s.first_layer,
                num_layers=s.num_layers,
                price=self.protocol.payments.functions.priceOf(s.address).call(),
                serving=self.protocol.serving_of(s.address, epoch),
            )
            tally = verify_server(
                target,
                model=self.model,
                config=self.config,
                canaries=self.canaries,
                sign=self.sign,
                chain_id=self.chain_id,
                receipts=self.protocol.receipt_domain,
                epoch=epoch,
                seed=seed,
                root=work.root,
                work_units=work.work_units,
                handed=handed.get(s.address, []),
            )
            self._keep_owed()
            acc = self.accuracy(tally)
            results[s.address] = acc
            caught = f"; caught: {tally.frauds[0]}" if tally.frauds else ""
            down = f", {len(tally.unreachable)} unreachable" if tally.unreachable else ""
            down += f", {tally.handed} of clients' answers" if tally.handed else ""
            self.progress(
                f"epoch {epoch}: {s.address} acc {acc / ONE:.3f} ({tally.passed}/{tally.checked} checks{down}, "
                f"{work.work_units} work units; opened {tally.paid} client-paid, {tally.unpaid} unpaid){caught}"
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

    def _handed(self, epoch: int) -> dict[str, list]:
        """Server -> the signed answers clients handed in for ``epoch``: this verifier's and, pulled now, every
        other announced verifier's, so that verifiers holding the same answers reach the same scores."""
        if self.inbox is None:
            return {}
        for address, endpoint in self.protocol.verifier_endpoints().items():
            if address != self.me:
                pulled = pull_answers(endpoint, epoch)
                if pulled is None:
                    log.warning(
                        "epoch %d: could not pull handed answers from verifier %s at %s", epoch, address, endpoint
                    )
                else:
                    self.inbox.take(pulled, pulled=True)
        by_server: dict[str, list] = {}
        for signed in self.inbox.of(epoch):
            by_server.setdefault(signed.server, []).append(signed)
        return by_server

    def reveal(self, epoch: int, st: dict) -> None:
        call = self.protocol.scoring.functions.revealScores(
            epoch, st["servers"], st["accuracies"], bytes.fromhex(st["salt"][2:])
        )
        st["revealed"] = self.protocol.tx.send(call, label="revealScores")["transactionHash"].hex()
        self.state.save()
        self.progress(f"epoch {epoch}: revealed scores")

    def finalize(self, epoch: int, st: dict) -> None:
        servers = sorted((s.address for s in self.protocol.servers()), key=lambda a: int(a, 16))
        receipt = None
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
        if receipt is not None:
            # from the chain's logs, not this transaction's receipt: another verifier's finalize may have come first
            # (on Ganache two sent at once both succeed, and the penalties are in whichever was mined first)
            penalized = self.protocol.scoring.events.DeviationPenalized().get_logs(
                from_block=self.protocol.deployment.block, argument_filters={"epoch": epoch}
            )
            for event in penalized:
                a = event["args"]
                who = "this verifier" if a["verifier"] == self.me else f"verifier {a['verifier']}"
                self.progress(
                    f"epoch {epoch}: {who} revealed acc {a['accuracy'] / ONE:.3f} for {a['server']}, median "
                    f"{a['median'] / ONE:.3f} (more than κ away): slashed {ether(a['amount'])}, not paid for the epoch"
                )

    def penalize_others(self, epoch: int, st: dict) -> None:
        """Slash the verifiers that committed scores for ``epoch`` and never revealed them, or committed a seed
        share and withheld it (once per epoch; another verifier may have done it first)."""
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

    # ------------------------------------------------------------------ pay

    def claim_pay(self) -> None:
        """Claim this verifier's pay for the epochs it revealed scores for once they settle (a part of each epoch's
        verifier pot, unless it was penalized); each epoch is looked at once."""
        due = [
            int(e)
            for e, st in self.epochs_with("revealed")
            if "claimed" not in st and self.protocol.phase(int(e)) == Phase.SETTLED
        ]
        if not due:
            return
        pool = self.protocol.pool.functions
        shares = {e: pool.shareOf(e, self.me).call() for e in due}
        owed = [
            e
            for e in due
            if shares[e] and not pool.hasClaimed(e, self.me).call() and not self.protocol.pool_of(e).rolled_out
        ]
        claimed, amount = [], 0
        if owed:
            try:
                claimed, amount = claim(self.protocol, epochs=owed)
            except RevertError as exc:
                if exc.error not in ("NothingToClaim", "AlreadyClaimed"):
                    raise  # the next tick tries again
                # claimed meanwhile (`efedllm verifier claim`): nothing more to do for these epochs
        for e in due:
            self.state.get(e)["claimed"] = shares[e] if e in claimed else 0
        self.state.save()
        if amount:
            self.progress(f"claimed {ether(amount)} of verifier pay for {explain.epochs(claimed)}")

    # ------------------------------------------------------------------ what canaries owe

    def _owed(self, canary: str) -> dict[tuple[str, int], int]:
        """What the ``canary`` account's receipts say it owes each server, as saved: a verifier restarted within
        an epoch goes on from the amounts servers booked, instead of a receipt they would refuse as too small."""
        return {
            (server, int(e)): amount
            for e, st in self.state.epochs.items()
            for server, amount in st.get("canary_owed", {}).get(canary, {}).items()
        }

    def _keep_owed(self) -> None:
        account = self.canaries.account
        if account is None or not account.owed:
            return
        for (server, epoch), amount in account.owed.items():
            self.state.get(epoch).setdefault("canary_owed", {}).setdefault(account.address, {})[server] = amount
        self.state.save()

    def epochs_with(self, step: str) -> list[tuple[str, dict]]:
        return [(e, st) for e, st in self.state.epochs.items() if st.get(step)]

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
