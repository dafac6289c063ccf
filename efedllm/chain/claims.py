"""An account's rewards: which settled epochs owe it something, and claiming them (pull payments).

One RewardPool pays both kinds of work: a server's share of an epoch's pool by its reward weight, and a verifier's
equal part of the epoch's verifier pot (``VERIFIER_SHARE`` of the pool) when it revealed its scores and was not
penalized for deviating. ``RewardPool.shareOf`` adds the two, and one ``claimRewards`` pays both, so a server and a
verifier claim alike (``efedllm server claim``, ``efedllm verifier claim``, the server's ``--auto-claim`` and the
verifier daemon).
"""

from __future__ import annotations

from collections.abc import Iterable

from web3 import Web3

from efedllm.chain.protocol import Phase, Protocol, Status


def verifier_epochs(protocol: Protocol, verifier: str) -> set[int]:
    """The epochs whose pool counted ``verifier`` among its paid verifiers at some point (VerifierAdded)."""
    logs = protocol.pool.events.VerifierAdded().get_logs(
        from_block=protocol.deployment.block, argument_filters={"verifier": Web3.to_checksum_address(verifier)}
    )
    return {log["args"]["epoch"] for log in logs}


def candidate_epochs(protocol: Protocol, account: str) -> list[int]:
    """The epochs ``account`` may have a share of: as a server, every epoch since it registered; as a verifier,
    every epoch that added it to its paid verifiers."""
    epochs = verifier_epochs(protocol, account)
    record = protocol.server(account)
    if record.status != Status.NONE:
        epochs |= set(range(record.registered_epoch, protocol.current_epoch()))
    return sorted(epochs)


def claimable_epochs(protocol: Protocol, account: str, epochs: Iterable[int] | None = None) -> list[int]:
    """Of ``epochs`` (default: ``candidate_epochs``), the settled ones in which ``account`` has a share it has not
    claimed yet and can still claim (an epoch whose rest was rolled over after its claim period is skipped:
    claiming it would revert)."""
    pool = protocol.pool.functions
    account = Web3.to_checksum_address(account)
    found = []
    for epoch in sorted(candidate_epochs(protocol, account) if epochs is None else set(epochs)):
        if protocol.phase(epoch) != Phase.SETTLED:
            break  # later epochs are not settled either
        if pool.shareOf(epoch, account).call() == 0 or pool.hasClaimed(epoch, account).call():
            continue
        if not protocol.pool_of(epoch).rolled_out:
            found.append(epoch)
    return found


def pending(protocol: Protocol, account: str) -> tuple[list[int], int]:
    """(epochs, wei) that ``account`` could claim now."""
    epochs = claimable_epochs(protocol, account)
    return epochs, protocol.pool.functions.pendingRewards(account, epochs).call() if epochs else 0


def claim(protocol: Protocol, *, epochs: Iterable[int] | None = None) -> tuple[list[int], int]:
    """Claim the signer's rewards for ``epochs`` (default: every claimable one); returns (epochs, wei)."""
    me = protocol.signer.address
    epochs = claimable_epochs(protocol, me) if epochs is None else list(epochs)
    if not epochs:
        return [], 0
    amount = protocol.pool.functions.pendingRewards(me, epochs).call()
    if amount == 0:
        return [], 0
    protocol.tx.send(protocol.pool.functions.claimRewards(epochs), label="claimRewards")
    return epochs, amount


def withdraw_fees(protocol: Protocol) -> int:
    """Withdraw the client fees the signer's server redeemed in Payments (pull payment); returns the wei (0 when
    there were none, and then nothing is sent)."""
    amount = protocol.payments.functions.feesOf(protocol.signer.address).call()
    if amount:
        protocol.tx.send(protocol.payments.functions.withdrawFees(), label="withdrawFees")
    return amount
