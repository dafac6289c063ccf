"""A server answers the challenges of its signed answers (ServingChallenges), by itself.

Anyone holding an answer the server signed may challenge it on chain once the epoch's seed is drawn; the server
must show, within the response window, the Merkle proof of that answer's leaf at its index in the root it
committed. An honest server always can: the answer it signed is the step it recorded. ``Responder`` watches the
chain for challenges naming this server and sends each proof it has; it says loudly when it has none (records
lost, or an answer that was not recorded as signed), since an unanswered challenge is slashed.
"""

from __future__ import annotations

import asyncio
import logging

from efedllm import merkle
from efedllm.chain.protocol import ChallengeState, Protocol
from efedllm.server.records import TaskStore

log = logging.getLogger("efedllm.server.challenges")


class Responder:
    def __init__(self, protocol: Protocol, store: TaskStore, *, interval: float = 2.0):
        self.protocol, self.store, self.interval = protocol, store, interval
        self.from_block = protocol.deployment.block
        self.answered: set[bytes] = set()

    def proof_for(self, epoch: int, index: int, leaf: bytes) -> list[bytes] | None:
        """The siblings that show ``leaf`` at ``index`` of ``epoch``'s committed tree, or None."""
        records, tree = self.store.committed_tree(epoch, index)
        if records is None or records[index].leaf(self.store.server) != leaf:
            return None
        return merkle.proof(tree, index)

    def respond_all(self) -> int:
        """One pass over new Challenged events naming this server; returns how many were answered."""
        latest = self.protocol.w3.eth.block_number
        if latest < self.from_block:
            return 0
        me = self.protocol.signer.address
        events = self.protocol.challenges.events.Challenged().get_logs(
            from_block=self.from_block, to_block=latest, argument_filters={"server": me}
        )
        answered = 0
        for event in events:
            cid = bytes(event["args"]["id"])
            if cid in self.answered:
                continue
            challenge = self.protocol.challenge(cid)
            epoch, index, leaf = challenge.epoch, challenge.index, bytes(challenge.leaf)
            if challenge.state != ChallengeState.OPEN:
                self.answered.add(cid)
                continue
            proof = self.proof_for(epoch, index, leaf)
            if proof is None:
                log.error(
                    "epoch %d: challenge 0x%s of answer %d cannot be answered (no such leaf in the committed "
                    "tree): this server will be slashed when the response window ends",
                    epoch,
                    cid.hex(),
                    index,
                )
                self.answered.add(cid)
                continue
            self.protocol.tx.send(self.protocol.challenges.functions.respond(cid, proof), label="respond")
            log.info("epoch %d: answered challenge 0x%s of answer %d with its Merkle proof", epoch, cid.hex(), index)
            self.answered.add(cid)
            answered += 1
        self.from_block = latest + 1
        return answered

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.interval)
            try:
                await loop.run_in_executor(None, self.respond_all)
            except Exception as exc:  # noqa: BLE001 - chain away: look again (the window is long)
                log.warning("checking challenges failed (%s: %s)", exc.__class__.__name__, exc)
