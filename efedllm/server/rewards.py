"""A server's rewards: which settled epochs owe it something, and claiming them (pull payments)."""

from __future__ import annotations

import asyncio
import logging

from efedllm.chain import explain
from efedllm.chain.protocol import Phase, Protocol

log = logging.getLogger("efedllm.server.rewards")


def claimable_epochs(protocol: Protocol, server: str) -> list[int]:
    """Settled epochs since ``server`` registered with a reward weight it has not claimed yet, and can still claim
    (an epoch whose rest was rolled over after its claim period is skipped: claiming it would revert)."""
    record = next((s for s in protocol.servers() if s.address == server), None)
    if record is None:
        return []
    pool = protocol.pool.functions
    epochs = []
    for epoch in range(record.registered_epoch, protocol.current_epoch()):
        if protocol.phase(epoch) != Phase.SETTLED:
            break  # later epochs are not settled either
        owed = pool.rewardWeight(epoch, server).call() and not pool.hasClaimed(epoch, server).call()
        if owed and not protocol.pool_of(epoch).rolled_out:
            epochs.append(epoch)
    return epochs


def claim(protocol: Protocol, *, epochs: list[int] | None = None) -> tuple[list[int], int]:
    """Claim the signer's rewards for ``epochs`` (default: every claimable one); returns (epochs, wei)."""
    me = protocol.signer.address
    epochs = claimable_epochs(protocol, me) if epochs is None else epochs
    if not epochs:
        return [], 0
    amount = protocol.pool.functions.pendingRewards(me, epochs).call()
    if amount == 0:
        return [], 0
    protocol.tx.send(protocol.pool.functions.claimRewards(epochs), label="claimRewards")
    return epochs, amount


async def auto_claim(protocol: Protocol, *, interval: float = 10.0) -> None:
    """Claim whatever becomes claimable, every ``interval`` seconds, for as long as the server runs."""
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(interval)
        try:
            epochs, amount = await loop.run_in_executor(None, lambda: claim(protocol))
        except Exception as exc:  # noqa: BLE001 - chain away: try again next time
            log.warning("claiming rewards failed (%s: %s)", exc.__class__.__name__, exc)
            continue
        if epochs:
            log.info("claimed %.6f ETH for %s", amount / 10**18, explain.epochs(epochs))
