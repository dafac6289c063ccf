"""What happened to a server's money, told by the server itself: one log line per epoch of its own once the epoch
is settled (accuracy, trust score, outcome, any slash, its reward share), and whether committing work can still
earn anything (a deactivated server, or an inactive one with no bonded stake, only pays gas to commit).

Without this a running server never said it was slashed or deactivated; the operator learned it from the wallet.
"""

from __future__ import annotations

import asyncio
import logging

from efedllm.chain.enums import Outcome, Phase, Status
from efedllm.chain.params import ETHER, ONE
from efedllm.chain.protocol import Protocol
from efedllm.chain.views import ServerRecord

log = logging.getLogger("efedllm.server.verdicts")


def idle_reason(record: ServerRecord) -> str | None:
    """Why committing work cannot earn anything for ``record`` (the gas would be lost), or None if it can."""
    if record.status == Status.DEACTIVATED:
        return "deactivated (slashed for a trust score below θ): it can never be paid again; unstake and withdraw"
    if record.status == Status.INACTIVE and record.stake == 0:
        return "inactive with no bonded stake: it is not paid until it stakes again (`efedllm server stake`)"
    return None


def slashed_in(protocol: Protocol, epoch: int, server: str) -> int:
    """Wei slashed from ``server`` for ``epoch`` (the registry's Slashed events)."""
    logs = protocol.registry.events.Slashed().get_logs(
        from_block=protocol.deployment.block, argument_filters={"server": server, "epoch": epoch}
    )
    return sum(e["args"]["amount"] for e in logs)


def verdict_line(protocol: Protocol, epoch: int, server: str) -> str | None:
    """One line on ``server``'s settled ``epoch``, or None if it was never scored there (no work, not finalized)."""
    score = protocol.score_of(epoch, server)
    if score.outcome == Outcome.NONE:
        return None
    slashed = slashed_in(protocol, epoch, server)
    share = protocol.pool.functions.shareOf(epoch, server).call()
    return (
        f"epoch {epoch} verdict: acc {score.acc / ONE:.4f}, S {score.score / ONE:.4f} -> {score.outcome.label}"
        f"; slashed {slashed / ETHER:.6f} ETH; reward share {share / ETHER:.6f} ETH"
    )


class Verdicts:
    """Logs the verdict of each of the server's epochs once it is settled, from the epochs still open at start."""

    def __init__(self, protocol: Protocol, *, interval: float = 5.0):
        self.protocol, self.interval = protocol, interval
        self.server = protocol.signer.address
        epoch = protocol.current_epoch()
        while epoch > 0 and protocol.phase(epoch - 1) != Phase.SETTLED:
            epoch -= 1
        self.next_epoch = epoch

    def check(self) -> list[str]:
        """One pass: log (and return) the verdicts of the epochs settled since the last pass."""
        lines = []
        while self.protocol.phase(self.next_epoch) == Phase.SETTLED:
            line = verdict_line(self.protocol, self.next_epoch, self.server)
            if line is not None:
                log.info("%s", line)
                lines.append(line)
            self.next_epoch += 1
        return lines

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.interval)
            try:
                await loop.run_in_executor(None, self.check)
            except Exception as exc:  # noqa: BLE001 - chain away: try again next time
                log.warning("reading this server's verdicts failed (%s: %s)", exc.__class__.__name__, exc)
