"""From served steps to on-chain commitments: the server half of "server work -> commitment -> verifier".

``EpochTracker`` follows the chain's epoch (polled, so chain time, not the local clock, decides); the step hook
records every served step in the ``TaskStore`` under that epoch; ``Committer`` posts
``commitWork(epoch, root, workUnits)`` for each epoch with work once its CommitWork window opens, retrying with
backoff while the chain is unreachable, until the window closes. A server that finds on chain a commitment of its
own that its store does not hold (a lost or new data directory) declares those records lost while it still may
(``declare_lost``): the epoch is then forfeited, not slashed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from efedllm import merkle
from efedllm.chain.protocol import Phase, Protocol
from efedllm.server.records import TaskStore
from efedllm.tasks import TaskRecord

log = logging.getLogger("efedllm.server.work")
MISSED = "missed"


class EpochTracker:
    def __init__(self, protocol: Protocol, *, interval: float = 1.0):
        self.protocol, self.interval = protocol, interval
        self.epoch = protocol.current_epoch()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.epoch = await loop.run_in_executor(None, self.protocol.current_epoch)
            except Exception as exc:  # noqa: BLE001 - keep the last epoch while the chain is away
                log.warning("cannot read the current epoch (%s); keeping epoch %d", exc.__class__.__name__, self.epoch)


def recorder(store: TaskStore, tracker: EpochTracker):
    """The step hook that persists each served step (before its output is returned) and returns its TaskRecord;
    the leaf commits to the digest of the client's receipt that paid for the step (``payment``; None: unpaid)."""

    def record(*, session, inputs, outputs, past, payment) -> TaskRecord:
        return store.record(
            epoch=tracker.epoch,
            session=session.id,
            start=session.start,
            end=session.end,
            past=past,
            inputs=inputs,
            outputs=outputs,
            payment=payment,
        )

    return record


class Committer:
    def __init__(self, protocol: Protocol, store: TaskStore, *, interval: float = 1.0, max_backoff: float = 30.0):
        self.protocol, self.store, self.interval, self.max_backoff = protocol, store, interval, max_backoff
        self._idle_said: str | None = None
        self.claim_units = lambda served: served
        """The work units to claim on chain for n served tasks: n (replaceable, e.g. by a test aid, efedllm/aids/)."""
        self.live_sessions: Callable[[], set[str]] = frozenset
        """The ids of the sessions open on the server now: their records are kept (``prune``)."""
        self._pruned_before = 0

    def idle_reason(self) -> str | None:
        """Why committing cannot earn anything now (deactivated, or inactive with no stake), said once; or None."""
        from efedllm.server.verdicts import idle_reason

        me = self.protocol.signer.address
        reason = idle_reason(self.protocol.server(me))
        if reason is not None and reason != self._idle_said:
            log.warning("not committing work: %s is %s", me, reason)
        self._idle_said = reason
        return reason

    def pending(self) -> list[int]:
        return [e for e in self.store.epochs_with_work() if self.store.commitment(e) is None]

    def commit_ready(self) -> None:
        """One pass: commit every epoch whose window is open; give up on those whose window has closed."""
        for epoch in self.pending():
            phase = self.protocol.phase(epoch)
            if phase < Phase.COMMIT_WORK:
                continue
            records, _ = self.store.tree(epoch)
            root = merkle.root([r.leaf(self.store.server) for r in records])
            if phase > Phase.COMMIT_WORK:
                log.error("epoch %d: the commit window closed before %d tasks were committed", epoch, len(records))
                self.store.save_commitment(epoch, root, len(records), MISSED)
                continue
            if self.idle_reason() is not None:
                continue  # the window may still be open if it stakes again
            units = self.claim_units(len(records))
            receipt = self.protocol.tx.send(
                self.protocol.ledger.functions.commitWork(epoch, root, units), label="commitWork"
            )
            self.store.save_commitment(epoch, root, len(records), receipt["transactionHash"].hex())
            log.info("epoch %d: committed %d tasks, root 0x%s", epoch, len(records), root.hex())

    def declare_lost(self) -> list[int]:
        """Declare lost the records of every epoch this server committed on chain but does not hold (its data
        directory was lost or replaced), while the epoch's seed is not drawn yet; say loudly what cannot be saved."""
        declared = []
        for epoch in lost_epochs(self.protocol, self.store):
            if self.protocol.ledger.functions.sampleSeed(epoch).call() != bytes(32):
                log.error(
                    "epoch %d: its committed records are not in this data directory and its leaves are already "
                    "being sampled: unopened leaves count as fraud (restore the directory if you can)",
                    epoch,
                )
                continue
            self.protocol.tx.send(self.protocol.ledger.functions.declareLoss(epoch), label="declareLoss")
            log.warning(
                "epoch %d: committed records missing from the data directory: declared lost (no pay, no slash)", epoch
            )
            declared.append(epoch)
        return declared

    def prune(self) -> int:
        """Delete the records that settled epochs no longer need, once per newly settled epoch."""
        before = first_unsettled(self.protocol)
        if before <= self._pruned_before:
            return 0
        deleted = self.store.prune(settled_before=before, keep=self.live_sessions())
        self._pruned_before = before
        if deleted:
            log.info("pruned %d task records of epochs settled before %d", deleted, before)
        return deleted

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self.declare_lost)
        except Exception as exc:  # noqa: BLE001 - the chain may be away at start; the commit loop says so too
            log.warning("checking for lost records failed (%s: %s)", exc.__class__.__name__, exc)
        delay = self.interval
        while True:
            await asyncio.sleep(delay)
            try:
                await loop.run_in_executor(None, self.commit_ready)
                await loop.run_in_executor(None, self.prune)
                delay = self.interval
            except Exception as exc:  # noqa: BLE001 - chain away or tx failed: retry until the window closes
                delay = min(delay * 2, self.max_backoff)
                log.warning("committing work failed (%s: %s); retrying in %.0fs", exc.__class__.__name__, exc, delay)


def lost_epochs(protocol: Protocol, store: TaskStore) -> list[int]:
    """Epochs still open to a declaration (CommitWork or CommitScores) that the signer committed on chain, has not
    declared lost, and whose commitment its store does not hold."""
    me = protocol.signer.address
    current = protocol.current_epoch()
    lost = []
    for epoch in range(current - 1, -1, -1):
        if protocol.phase(epoch) > Phase.COMMIT_SCORES:
            break  # and every earlier epoch too
        work = protocol.commitment_of(epoch, me)
        if work.work_units and not work.lost and store.commitment(epoch) is None:
            lost.append(epoch)
    return lost


def first_unsettled(protocol: Protocol) -> int:
    """The oldest epoch that is not settled yet (the current one when every earlier one is)."""
    epoch = protocol.current_epoch()
    while epoch > 0 and protocol.phase(epoch - 1) != Phase.SETTLED:
        epoch -= 1
    return epoch
