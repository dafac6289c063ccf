"""A server's pay for the work clients ask for (issue 14): receipts in, redemptions on chain.

A server that sets ``--price`` serves a step only with the client's receipt for it: an EIP-712 ``Receipt{client,
server, epoch, amount}`` signed by the client, where ``amount`` is everything the client owes this server for the
epoch including this step (price x tokens x layers), so each step costs the client one signature and nothing on
chain. ``Paywall`` checks the receipt before computing and books it once the step is served; the step's task leaf
commits to the receipt's digest and its record keeps the signed receipt (server/records.py), so that verifiers who
open the leaf see which work a client asked for. ``Redeemer`` redeems each (client, epoch)'s latest receipt once
that epoch's work period is over (Payments.redeem pays from the client's deposit). A receipt may name the epoch the
server records under or a neighbour (a client reads the chain's clock a moment before or after the server does);
the fees are booked under the receipt's epoch.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from efedllm.chain.protocol import Phase, Protocol
from efedllm.chain.transactions import RevertError
from efedllm.receipts import (
    RECEIPT_HEADER,
    RECEIPT_SIGNATURE_HEADER,
    Receipt,
    ReceiptDomain,
    SignedReceipt,
    recover,
)
from efedllm.server.sessions import SessionError

log = logging.getLogger("efedllm.server.payments")

SCHEMA = """
CREATE TABLE IF NOT EXISTS receipts (
    epoch INTEGER NOT NULL, client TEXT NOT NULL, amount TEXT NOT NULL, signature BLOB NOT NULL,
    redeemed TEXT, PRIMARY KEY (epoch, client)
);
"""


class ReceiptBook:
    """The latest receipt of each (epoch, client), kept across restarts (amounts as decimal text: up to 2^256)."""

    def __init__(self, path: Path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        # Write-ahead log without a sync per receipt: a paid step's signed receipt is also kept, synced, with its
        # task record (TaskStore paid_by), and a crash of the process loses nothing here; only a power loss may
        # lose the last receipts booked, and with them the tail of an epoch's fees (a sync per step cost 0.8 ms)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def owed(self, epoch: int, client: str) -> int | None:
        """What ``client``'s latest receipt for ``epoch`` says; None when it has none; -1 once redeemed."""
        row = self._db.execute(
            "SELECT amount, redeemed FROM receipts WHERE epoch = ? AND client = ?", (epoch, client)
        ).fetchone()
        if row is None:
            return None
        return -1 if row[1] else int(row[0])

    def book(self, receipt: Receipt, signature: bytes) -> None:
        """Keep ``receipt`` as the (epoch, client)'s latest unless one of a larger amount is kept already (receipts
        are cumulative: the largest one pays for everything below it)."""
        with self._lock:
            before = self.owed(receipt.epoch, receipt.client)
            if before is not None and (before == -1 or before >= receipt.amount):  # -1: redeemed already
                return
            self._db.execute(
                "INSERT INTO receipts VALUES (?, ?, ?, ?, NULL) ON CONFLICT (epoch, client) DO UPDATE SET "
                "amount = excluded.amount, signature = excluded.signature WHERE redeemed IS NULL",
                (receipt.epoch, receipt.client, str(receipt.amount), signature),
            )

    def unredeemed(self, before: int) -> list[tuple[int, str, int, bytes]]:
        return [
            (e, c, int(a), s)
            for e, c, a, s in self._db.execute(
                "SELECT epoch, client, amount, signature FROM receipts WHERE redeemed IS NULL AND epoch < ?", (before,)
            ).fetchall()
        ]

    def mark_redeemed(self, epoch: int, client: str, note: str) -> None:
        with self._lock:
            self._db.execute("UPDATE receipts SET redeemed = ? WHERE epoch = ? AND client = ?", (note, epoch, client))


@dataclass(frozen=True, kw_only=True)
class Payment:
    """A checked receipt paying for one step; the step's task leaf commits to its ``digest`` (TaskRecord.receipt)
    and the server keeps the signed receipt with the record, for openings."""

    signed: SignedReceipt
    digest: bytes


class Paywall:
    """Checks each step's receipt before the step runs and books it once the step is served.

    Receipts are cumulative, so a step's receipt must cover everything the client owes for the epoch: the latest
    receipt booked, every step checked and not yet served (still running, or sent in the same request before it),
    and this step. Counting the steps in flight is what stops a client from sending several steps at once (in
    concurrent requests, or in one ``POST /steps``) with receipts that each pay for one step on top of the last
    booked receipt, and getting them all served for the price of one: each would be checked before any is booked.
    A client's own steps to one server go one after the other (client/payments.py), or in one request with
    receipts that add up in the request's order, so an honest client never meets the difference."""

    def __init__(self, *, price: int, me: str, domain: ReceiptDomain, epoch: Callable[[], int], book: ReceiptBook):
        self.price, self.me, self.domain, self.epoch, self.book = price, me, domain, epoch, book
        self._lock = threading.Lock()
        self._in_flight: dict[tuple[int, str], list[Payment]] = {}
        """(epoch, client) -> the payments checked whose steps are neither served nor refused yet."""

    def check(self, *, tokens: int, layers: int, headers: Mapping[str, str]) -> Payment | None:
        """The payment for a step of ``tokens`` over ``layers`` layers, counted in flight until ``accept`` or
        ``release``; SessionError 402 when none pays for it."""
        if self.price == 0:
            return None
        cost = self.price * tokens * layers
        raw, signature = headers.get(RECEIPT_HEADER), headers.get(RECEIPT_SIGNATURE_HEADER)
        if not raw or not signature:
            raise SessionError(402, f"payment required: {cost} wei for this step ({self.price} wei per token-layer)")
        try:
            receipt = Receipt.from_header(raw)
            sig = bytes.fromhex(signature.removeprefix("0x"))
            digest = self.domain.digest(receipt)
            signer = recover(digest, sig)
        except ValueError as exc:
            raise SessionError(402, f"bad receipt: {exc}") from None
        if signer != receipt.client:
            raise SessionError(402, f"bad receipt: signed by {signer}, not by its client {receipt.client}")
        if receipt.server != self.me:
            raise SessionError(402, f"bad receipt: it pays {receipt.server}, not this server ({self.me})")
        now = self.epoch()
        if abs(receipt.epoch - now) > 1:
            raise SessionError(402, f"bad receipt: epoch {receipt.epoch}, and this server records epoch {now}")
        key = (receipt.epoch, receipt.client)
        with self._lock:
            before = self.book.owed(*key)
            if before == -1:
                raise SessionError(402, f"bad receipt: epoch {receipt.epoch} of this client was redeemed already")
            covered = max([before or 0, *(p.signed.receipt.amount for p in self._in_flight.get(key, []))])
            due = covered + cost
            if receipt.amount < due:
                running = len(self._in_flight.get(key, []))
                also = f" (with {running} of its steps running or sent before it)" if running else ""
                raise SessionError(402, f"receipt covers {receipt.amount} wei; {due} wei are due with this step{also}")
            payment = Payment(signed=SignedReceipt(receipt=receipt, signature=sig), digest=digest)
            self._in_flight.setdefault(key, []).append(payment)
        return payment

    def accept(self, payment: Payment | None) -> None:
        """Book a checked payment, once its step was served."""
        if payment is not None:
            with self._lock:
                self._forget(payment)
                self.book.book(payment.signed.receipt, payment.signed.signature)

    def release(self, payments: Iterable[Payment | None]) -> None:
        """Steps checked and then not served (refused, failed, timed out): what they promised no longer counts.
        Payments already accepted are left as they are."""
        with self._lock:
            for payment in payments:
                if payment is not None:
                    self._forget(payment)

    def _forget(self, payment: Payment) -> None:
        receipt = payment.signed.receipt
        key = (receipt.epoch, receipt.client)
        flying = self._in_flight.get(key, [])
        if any(p is payment for p in flying):
            flying[:] = [p for p in flying if p is not payment]
            if not flying:
                del self._in_flight[key]


class Redeemer:
    """Redeems every booked receipt of epochs whose work period is over.

    ``epoch`` is the chain's current epoch as the server last read it (its EpochTracker): an epoch before it is
    past its work period. The book is looked at first, so a server with nothing to redeem sends the chain nothing:
    it runs beside every served step, and each RPC call costs the server's event loop time."""

    def __init__(
        self, protocol: Protocol, book: ReceiptBook, *, epoch: Callable[[], int] | None = None, interval: float = 2.0
    ):
        self.protocol, self.book, self.interval = protocol, book, interval
        self.epoch = epoch or protocol.current_epoch

    def redeem_ready(self) -> int:
        me, redeemed = self.protocol.signer.address, 0
        for epoch, client, amount, signature in self.book.unredeemed(before=self.epoch()):
            if self.protocol.phase(epoch) <= Phase.WORK:
                continue
            receipt = Receipt(client=client, server=me, epoch=epoch, amount=amount)
            try:
                tx = self.protocol.tx.send(
                    self.protocol.payments.functions.redeem(receipt.as_tuple(), signature), label="redeem"
                )
                note = tx["transactionHash"].hex()
                redeemed += 1
                log.info("epoch %d: redeemed %d wei from client %s", epoch, amount, client)
            except RevertError as exc:  # AlreadyRedeemed, or a client with nothing left (ZeroAmount)
                note = f"reverted: {exc.error}"
                log.warning("epoch %d: the receipt of client %s was not paid (%s)", epoch, client, exc.error)
            self.book.mark_redeemed(epoch, client, note)
        return redeemed

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.interval)
            try:
                await loop.run_in_executor(None, self.redeem_ready)
            except Exception as exc:  # noqa: BLE001 - chain away: try again
                log.warning("redeeming receipts failed (%s: %s)", exc.__class__.__name__, exc)
