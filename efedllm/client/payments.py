"""A client pays for the steps it asks for (issue 14): one signed cumulative receipt per step and server.

Each paid step goes out with the client's EIP-712 ``Receipt{client, server, epoch, amount}``, where ``amount`` is
everything it owes that server for the epoch including this step (the server's announced price x tokens x
layers). The server serves only a step its receipt pays for, and redeems the epoch's latest receipt from the
client's deposit in Payments once the epoch's work is over; the server's signed answer and its task leaf name the
receipt's digest, so verifiers who open the leaf know the client asked and paid for that step. The client pays
under the later of the chain's epoch (read at most every ``EPOCH_TTL_S``) and the epoch of that server's last
signed answer: the server's answers keep both on the same epoch while a step crosses a boundary, and the chain's
moves a long-lived client on once a new epoch starts (a receipt for an epoch the server already redeemed is
refused).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from efedllm.client.routing import Peer
from efedllm.receipts import RECEIPT_HEADER, RECEIPT_SIGNATURE_HEADER, UNPAID, Receipt, ReceiptDomain, TypedSigner

EPOCH_TTL_S = 2.0
"""How long the client trusts the chain's epoch it last read, in seconds (one read per step would double the
client's RPC traffic)."""


@dataclass(frozen=True, kw_only=True)
class Paid:
    """How one step is paid: the request's headers, the digest of the receipt they carry (UNPAID when none: the
    server's signed answer must name it, client/answers.py), and what to call once the server has served it."""

    headers: dict[str, str]
    digest: bytes
    served: Callable[[], None]
    abandon: Callable[[], None] = lambda: None
    """What to call instead of ``served`` when the step was not served (an error, no answer)."""


class Payer:
    def __init__(
        self,
        *,
        client: str,
        sign: Callable[[dict], bytes],
        domain: ReceiptDomain,
        epoch: Callable[[], int],
        owed: dict[tuple[str, int], int] | None = None,
    ):
        self.client, self.sign, self.domain, self.epoch = client, sign, domain, epoch
        self.owed: dict[tuple[str, int], int] = {} if owed is None else owed
        """(server, epoch) -> the amount of the last receipt a server accepted (``owed``: a dict to keep it in,
        shared with payers before and after this one, as a verifier's canaries share their account's)."""
        self.epochs: dict[str, int] = {}
        """server -> the epoch of its last signed answer."""
        self._chain_epoch, self._read_at = 0, float("-inf")
        self._reading = threading.Lock()
        self._servers: dict[str, threading.Lock] = {}
        """Per server, held from a receipt's signing until its step is served or abandoned: receipts are cumulative,
        so concurrent generations (efedllm api) pay one server one step at a time, each on top of the last."""
        self._making = threading.Lock()

    def chain_epoch(self) -> int:
        """The chain's epoch: read now when never read (or after ``start``); once stale, re-read in the background
        while steps go on under the last value (a read is an RPC round trip, on every step's critical path
        otherwise; a step paid under the old epoch for a moment is accepted, the server takes epoch +- 1)."""
        if self._read_at == float("-inf"):
            self._chain_epoch, self._read_at = self.epoch(), time.monotonic()
        elif time.monotonic() - self._read_at > EPOCH_TTL_S and self._reading.acquire(blocking=False):
            self._read_at = time.monotonic()
            threading.Thread(target=self._refresh, daemon=True, name="payer-epoch").start()
        return self._chain_epoch

    def _refresh(self) -> None:
        try:
            self._chain_epoch = max(self._chain_epoch, self.epoch())
        except Exception:  # noqa: BLE001 - the chain is away: keep the last epoch, try again later
            pass
        finally:
            self._reading.release()

    def pay(self, *, peer: Peer, tokens: int, layers: int) -> Paid:
        """The headers that pay for a step, the receipt's digest and what to call once the server has served it."""
        return self.pay_steps(peer=peer, steps=[(tokens, layers)])[0]

    def pay_steps(self, *, peer: Peer, steps: list[tuple[int, int]]) -> list[Paid]:
        """Receipts for several steps that go to ``peer`` in one request (``POST /steps``), each (tokens, layers):
        cumulative in that order, each on top of the one before (the server checks them in the request's order).
        The server's turn is held for all of them: calling any step's ``served`` (or ``abandon``) settles them all."""
        if not peer.price or peer.address is None:
            return [Paid(headers={}, digest=UNPAID, served=lambda: None) for _ in steps]
        server = peer.address
        with self._making:
            turn = self._servers.setdefault(server, threading.Lock())
        turn.acquire()
        try:
            epoch = max(self.epochs.get(server, 0), self.chain_epoch())
            amount, signed = self.owed.get((server, epoch), 0), []
            for tokens, layers in steps:
                amount += peer.price * tokens * layers
                receipt = Receipt(client=self.client, server=server, epoch=epoch, amount=amount)
                digest = self.domain.digest(receipt)
                headers = {
                    RECEIPT_HEADER: receipt.to_header(),
                    RECEIPT_SIGNATURE_HEADER: "0x" + self._signature(receipt, digest).hex(),
                }
                signed.append((headers, digest))
        except BaseException:
            turn.release()
            raise
        held = [True]

        def release() -> None:
            if held[0]:
                held[0] = False
                turn.release()

        def served() -> None:
            if held[0]:
                self.owed[(server, epoch)] = amount
            release()

        return [Paid(headers=headers, digest=digest, served=served, abandon=release) for headers, digest in signed]

    def _signature(self, receipt: Receipt, digest: bytes) -> bytes:
        if isinstance(self.sign, TypedSigner):  # signs the digest, without building the typed data
            return self.sign.sign(self.domain, receipt, digest32=digest)
        return self.sign(self.domain.data(receipt))

    def saw_epoch(self, server: str, epoch: int) -> None:
        self.epochs[server] = epoch

    def start(self) -> None:
        """A new generation: learn each server's epoch afresh. A server redeems an epoch's receipts as soon as its
        work period is over, so a receipt for the epoch of an earlier generation's answers would be refused (402)
        once the chain has moved on; within a generation the server's answers keep both on the same epoch."""
        self.epochs.clear()
        self._read_at = float("-inf")

    def total(self) -> int:
        """Wei owed over every server and epoch."""
        return sum(self.owed.values())
