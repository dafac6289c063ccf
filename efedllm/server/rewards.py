"""A server's automatic claims: its pool rewards pulled as they become claimable (efedllm/chain/claims.py decides
which epochs owe it something), and the client fees it redeemed withdrawn from Payments."""

from __future__ import annotations

import asyncio
import logging

from efedllm.chain import explain
from efedllm.chain.claims import claim, withdraw_fees
from efedllm.chain.protocol import Protocol

log = logging.getLogger("efedllm.server.rewards")


async def auto_claim(protocol: Protocol, *, interval: float = 10.0) -> None:
    """Claim whatever becomes claimable, every ``interval`` seconds, for as long as the server runs."""
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(interval)
        try:
            epochs, amount = await loop.run_in_executor(None, lambda: claim(protocol))
            fees = await loop.run_in_executor(None, lambda: withdraw_fees(protocol))
        except Exception as exc:  # noqa: BLE001 - chain away: try again next time
            log.warning("claiming rewards failed (%s: %s)", exc.__class__.__name__, exc)
            continue
        if epochs:
            log.info("claimed %.6f ETH for %s", amount / 10**18, explain.epochs(epochs))
        if fees:
            log.info("withdrew %.6f ETH of client fees", fees / 10**18)
