"""A verifier's stake and the penalties of other verifiers, without loading a model.

Committing scores and seed shares needs ``minVerifierStake`` bonded in VerifierStakes (``ensure_stake`` tops the
bond up on start). Anyone may penalize a verifier that committed scores and never revealed them (once the epoch's
reveals are closed), or committed a seed share and did not reveal it before the seed was drawn; ``find_penalties``
finds both from the epoch's events, and ``apply_penalty`` sends one. A reveal more than κ from a server's median
needs nobody: ``finalize`` slashes it (DeviationPenalized).
"""

from __future__ import annotations

from dataclasses import dataclass

from web3 import Web3
from web3.logs import DISCARD

from efedllm.chain.explain import ether
from efedllm.chain.protocol import Protocol
from efedllm.chain.transactions import RevertError
from efedllm.errors import EfedError


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


def ensure_canary_deposit(protocol: Protocol, target: int, *, say=print) -> int:
    """Top the available deposit in Payments of ``protocol``'s signer (the canary account, verifier/canaries.py)
    up to ``target`` wei from its own ether; returns what it deposited."""
    me = protocol.signer.address
    available = protocol.client_account(me).available
    amount = max(0, target - available)
    if amount == 0:
        return 0
    balance = protocol.w3.eth.get_balance(me)
    if balance < amount:
        raise EfedError(f"{me} holds {ether(balance)}, less than the {ether(amount)} it would deposit for canaries")
    protocol.tx.send(protocol.payments.functions.deposit(), value=amount, label="deposit")
    say(
        f"the canary account {me} deposited {ether(amount)} into Payments to pay priced servers ({ether(target)} available)"
    )
    return amount


PENALTIES = {  # kind -> (TrustScoring function, its event)
    "no-reveal": ("penalizeNoReveal", "NoRevealPenalized"),
    "seed-withheld": ("penalizeSeedWithheld", "SeedWithheldPenalized"),
}


@dataclass(frozen=True)
class Penalty:
    """A penalty that applies to ``verifier`` for ``epoch``: ``kind`` "no-reveal" (it committed scores and never
    revealed them) or "seed-withheld" (it committed a seed share and did not reveal it before the seed was
    drawn)."""

    epoch: int
    verifier: str
    kind: str

    def describe(self) -> str:
        if self.kind == "no-reveal":
            return f"verifier {self.verifier} committed scores for epoch {self.epoch} and never revealed them"
        return (
            f"verifier {self.verifier} committed a seed share for epoch {self.epoch} and withheld it "
            "(not revealed before the seed was drawn)"
        )


def find_penalties(protocol: Protocol, epoch: int, *, verifier: str | None = None) -> list[Penalty]:
    """The penalties that apply for ``epoch`` (to ``verifier`` only, when given), not yet applied: at most one per
    verifier, as the contract allows. A missing score reveal counts once the epoch's reveals are closed (before,
    applying it reverts with the phase it needs); a withheld seed share once the seed is drawn (from the
    SeedShareCommitted and SeedShareRevealed events). Deviations need nobody: ``finalize`` slashes them."""
    events, scoring = protocol.scoring.events, protocol.scoring.functions
    filters = {"epoch": epoch} | ({"verifier": Web3.to_checksum_address(verifier)} if verifier else {})
    start = protocol.deployment.block

    def verifiers(event) -> set[str]:
        return {e["args"]["verifier"] for e in event().get_logs(from_block=start, argument_filters=filters)}

    owed = dict.fromkeys(sorted(verifiers(events.ScoresCommitted) - verifiers(events.ScoresRevealed)), "no-reveal")
    if protocol.ledger.functions.sampleSeed(epoch).call() != bytes(32):
        withheld = verifiers(events.SeedShareCommitted) - verifiers(events.SeedShareRevealed)
        owed |= dict.fromkeys(withheld, "seed-withheld")  # applicable as soon as the seed is drawn
    return [
        Penalty(epoch, who, kind) for who, kind in sorted(owed.items()) if not scoring.isPenalized(epoch, who).call()
    ]


def apply_penalty(protocol: Protocol, penalty: Penalty) -> int | None:
    """Send ``penalty``; the wei slashed, or None when another caller applied it first."""
    function, event = PENALTIES[penalty.kind]
    call = getattr(protocol.scoring.functions, function)(penalty.epoch, penalty.verifier)
    try:
        receipt = protocol.tx.send(call, label=f"penalize ({penalty.kind})")
    except RevertError as exc:
        if exc.error == "AlreadyPenalized":
            return None
        raise
    logs = getattr(protocol.scoring.events, event)().process_receipt(receipt, errors=DISCARD)
    return sum(log["args"]["amount"] for log in logs)


def stake_node_verifiers(w3, deployment, verifiers, *, amount: int | None = None) -> None:
    """On a dev chain whose node holds the verifiers' keys: each of ``verifiers`` (addresses) bonds ``amount`` wei
    (default: the deployment's minVerifierStake), so that it may commit scores."""
    from efedllm.chain.connection import Signer

    for verifier in verifiers:
        protocol = Protocol(w3, deployment, Signer(verifier))
        value = amount if amount is not None else protocol.scoring.functions.minVerifierStake().call()
        protocol.tx.send(protocol.stakes.functions.stake(), value=value, label="stake")
