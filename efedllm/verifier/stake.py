"""A verifier's stake and the penalties of other verifiers, without loading a model.

Committing scores needs ``minVerifierStake`` bonded in VerifierStakes (``ensure_stake`` tops the bond up on start).
Once an epoch's reveals are closed, anyone may penalize a verifier that committed and never revealed, or revealed
an accuracy more than κ from a finalized server's median; ``find_penalties`` finds both from the epoch's
ScoresCommitted and ScoresRevealed events and the scores on chain, and ``apply_penalty`` sends one.
"""

from __future__ import annotations

from dataclasses import dataclass

from web3 import Web3
from web3.logs import DISCARD

from efedllm.chain.explain import ether
from efedllm.chain.protocol import Outcome, Protocol
from efedllm.chain.transactions import RevertError
from efedllm.errors import EfedError

NOT_SCORED = (Outcome.NONE, Outcome.NO_QUORUM)


def ensure_stake(protocol: Protocol, target: int | None, *, say=print) -> int:
    """Make sure the signer may commit scores: when its bond is below minVerifierStake, stake up to ``target`` wei
    (None: refuse with a one-line error). Returns the bond."""
    me = protocol.signer.address
    minimum = protocol.scoring.functions.minVerifierStake().call()
    bonded = protocol.stakes.functions.bondedOf(me).call()
    if bonded >= minimum:
        return bonded
    if target is None:
        raise EfedError(
            f"{me} has {ether(bonded)} bonded as a verifier, below minVerifierStake {ether(minimum)}: give "
            f"--stake ETH (the bond to reach, at least {ether(minimum)}) or run `efedllm verifier stake --amount ETH`"
        )
    if target < minimum:
        raise EfedError(f"--stake {ether(target)} is below minVerifierStake {ether(minimum)}")
    amount = target - bonded
    balance = protocol.w3.eth.get_balance(me)
    if balance < amount:
        raise EfedError(f"{me} holds {ether(balance)}, less than the {ether(amount)} it would stake")
    protocol.tx.send(protocol.stakes.functions.stake(), value=amount, label="stake")
    say(f"staked {ether(amount)} as a verifier: {ether(target)} bonded (minVerifierStake {ether(minimum)})")
    return target


@dataclass(frozen=True)
class Penalty:
    """A penalty that applies to ``verifier`` for ``epoch``: ``kind`` "no-reveal" or "deviation" (then with the
    reveal to resubmit and the server whose median it missed)."""

    epoch: int
    verifier: str
    kind: str
    servers: tuple[str, ...] = ()
    accuracies: tuple[int, ...] = ()
    salt: bytes = b""
    server: str = ""
    accuracy: int = 0
    median: int = 0

    def describe(self) -> str:
        if self.kind == "no-reveal":
            return f"verifier {self.verifier} committed scores for epoch {self.epoch} and never revealed them"
        return (
            f"verifier {self.verifier} revealed acc {self.accuracy / 1e18:.3f} for {self.server} in epoch "
            f"{self.epoch}, median {self.median / 1e18:.3f}"
        )


def find_penalties(protocol: Protocol, epoch: int, *, verifier: str | None = None) -> list[Penalty]:
    """The penalties that apply now for ``epoch`` (to ``verifier`` only, when given), not yet applied."""
    events, scoring = protocol.scoring.events, protocol.scoring.functions
    filters = {"epoch": epoch} | ({"verifier": Web3.to_checksum_address(verifier)} if verifier else {})
    start = protocol.deployment.block
    committed = {
        e["args"]["verifier"] for e in events.ScoresCommitted().get_logs(from_block=start, argument_filters=filters)
    }
    reveals = {
        e["args"]["verifier"]: e["args"]
        for e in events.ScoresRevealed().get_logs(from_block=start, argument_filters=filters)
    }
    kappa = scoring.kappa().call()
    medians: dict[str, int | None] = {}
    found = []
    for who in sorted(committed):
        if scoring.isPenalized(epoch, who).call():
            continue
        reveal = reveals.get(who)
        if reveal is None:
            found.append(Penalty(epoch, who, "no-reveal"))
            continue
        for server, acc in zip(reveal["servers"], reveal["accuracies"]):
            if server not in medians:
                score = protocol.score_of(epoch, server)
                medians[server] = None if score.outcome in NOT_SCORED else score.acc
            median = medians[server]
            if median is not None and abs(acc - median) > kappa:
                found.append(
                    Penalty(
                        epoch,
                        who,
                        "deviation",
                        tuple(reveal["servers"]),
                        tuple(reveal["accuracies"]),
                        bytes(reveal["salt"]),
                        server,
                        acc,
                        median,
                    )
                )
                break
    return found


def apply_penalty(protocol: Protocol, penalty: Penalty) -> int | None:
    """Send ``penalty``; the wei slashed, or None when another caller applied it first."""
    scoring = protocol.scoring.functions
    if penalty.kind == "no-reveal":
        call = scoring.penalizeNoReveal(penalty.epoch, penalty.verifier)
    else:
        call = scoring.penalizeDeviation(
            penalty.epoch, penalty.verifier, list(penalty.servers), list(penalty.accuracies), penalty.salt
        )
    try:
        receipt = protocol.tx.send(call, label=f"penalize ({penalty.kind})")
    except RevertError as exc:
        if exc.error == "AlreadyPenalized":
            return None
        raise
    name = "NoRevealPenalized" if penalty.kind == "no-reveal" else "DeviationPenalized"
    logs = getattr(protocol.scoring.events, name)().process_receipt(receipt, errors=DISCARD)
    return sum(log["args"]["amount"] for log in logs)


def stake_node_verifiers(w3, deployment, verifiers, *, amount: int | None = None) -> None:
    """On a dev chain whose node holds the verifiers' keys: each of ``verifiers`` (addresses) bonds ``amount`` wei
    (default: the deployment's minVerifierStake), so that it may commit scores."""
    from efedllm.chain.connection import Signer

    for verifier in verifiers:
        protocol = Protocol(w3, deployment, Signer(verifier))
        value = amount if amount is not None else protocol.scoring.functions.minVerifierStake().call()
        protocol.tx.send(protocol.stakes.functions.stake(), value=value, label="stake")
