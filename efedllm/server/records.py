"""Task records: every inference step a server serves, kept on disk until its epoch is settled.

A record commits to what a verifier needs to recompute the step: the epoch, the layers, the session, the step
number, the tokens before it (``past``), a running hash over the session's earlier inputs (``prefix_hash``),
hashes of the input and output hidden states, and the digest of the client's receipt that paid for the step. The
tensors themselves are stored too, so that an opening can hand a verifier the session's whole prefix, and so is the
client's signed receipt (table ``paid_by``, a row per paid step), so that the opening can show it. SQLite with
synchronous commits: a crash or restart loses no served step and no commitment.

The hidden states are kept in the dtype they were served in (the server's declared compute dtype: a bfloat16
server's records take half a float32 server's bytes), as safetensors bytes compressed with zlib at level 1 (about
18% off bfloat16 activations, 6% off float32 ones, some 30 us per decode step) in 16 KiB pages (a decode step's row
no longer takes a 4 KiB page of its own). Stores written before that (format 1) keep their plain tensors and pages.

``prune`` deletes what settled epochs no longer need: a session's steps go only once every step of it lies in a
settled epoch and the session is closed, because an opening of a later step carries the inputs of all earlier
ones (a prefix can span epochs) and a session that goes on needs its last step to chain the next one. Freed
pages are reused, so a steadily serving server's file stops growing.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import zlib
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from efedllm import merkle, wire
from efedllm.openings import Opening
from efedllm.receipts import UNPAID, SignedReceipt
from efedllm.tasks import ZERO_PREFIX, TaskRecord, next_prefix, tensor_hash

if TYPE_CHECKING:
    from efedllm.server.payments import Payment

SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    epoch INTEGER NOT NULL, idx INTEGER NOT NULL, session TEXT NOT NULL, step INTEGER NOT NULL,
    start_layer INTEGER NOT NULL, end_layer INTEGER NOT NULL, past INTEGER NOT NULL,
    prefix_hash BLOB NOT NULL, input_hash BLOB NOT NULL, output_hash BLOB NOT NULL,
    input BLOB NOT NULL, output BLOB NOT NULL,
    PRIMARY KEY (epoch, idx)
);
CREATE INDEX IF NOT EXISTS tasks_by_session ON tasks (session, step);
CREATE TABLE IF NOT EXISTS paid_by (
    epoch INTEGER NOT NULL, idx INTEGER NOT NULL, digest BLOB NOT NULL, receipt TEXT NOT NULL,
    PRIMARY KEY (epoch, idx), FOREIGN KEY (epoch, idx) REFERENCES tasks (epoch, idx) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS commitments (
    epoch INTEGER PRIMARY KEY, root BLOB NOT NULL, work_units INTEGER NOT NULL, tx TEXT
);
CREATE TABLE IF NOT EXISTS nonces (nonce TEXT PRIMARY KEY, expires INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
FORMAT = 2
"""How tensors are stored: 1, safetensors bytes (stores from before issue 15); 2, zlib-compressed safetensors bytes.
A store keeps the format it was created with (an empty one takes this one)."""
PAGE_SIZE = 16384
"""Bytes per SQLite page of a new store."""


class TaskStore:
    def __init__(self, path: Path, *, server: str):
        self.path, self.server = Path(path), server
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        if self._db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0:
            self._db.execute(f"PRAGMA page_size={PAGE_SIZE}")  # a new file: before WAL, which fixes the page size
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")  # pruning a step prunes its receipt (ON DELETE CASCADE)
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()
        self.format = self._format()

    def _format(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        if row is not None:
            return int(row[0])
        empty = self._db.execute("SELECT COUNT(*) FROM tasks").fetchone()[0] == 0
        chosen = FORMAT if empty else 1
        self._db.execute("INSERT INTO meta VALUES ('format', ?)", (str(chosen),))
        return chosen

    def _pack(self, tensor: torch.Tensor) -> bytes:
        data = wire.encode(tensor)
        return zlib.compress(data, 1) if self.format >= 2 else data

    def _unpack(self, blob: bytes) -> torch.Tensor:
        return wire.load(zlib.decompress(blob) if self.format >= 2 else blob)

    def record(
        self,
        *,
        epoch: int,
        session: str,
        start: int,
        end: int,
        past: int,
        inputs: torch.Tensor,
        outputs: torch.Tensor,
        payment: Payment | None = None,
    ) -> TaskRecord:
        """Persist one served step (before its output is returned to the client), with the client's receipt that
        paid for it (``payment``, checked by the server's Paywall; None for an unpaid step)."""
        with self._lock:
            row = self._db.execute(
                "SELECT step, prefix_hash, input_hash FROM tasks WHERE session = ? ORDER BY step DESC LIMIT 1",
                (session,),
            ).fetchone()
            step = 0 if row is None else row[0] + 1
            prefix = ZERO_PREFIX if row is None else next_prefix(row[1], row[2])
            index = self._db.execute(
                "SELECT COALESCE(MAX(idx), -1) + 1 FROM tasks WHERE epoch = ?", (epoch,)
            ).fetchone()[0]
            receipt = UNPAID if payment is None else payment.digest
            hashes = (prefix, tensor_hash(inputs), tensor_hash(outputs), receipt)
            record = TaskRecord(epoch, index, session, step, start, end, past, *hashes)
            self._db.execute("BEGIN")  # the step and its receipt in one transaction: one sync to disk, not two
            try:
                self._db.execute(
                    "INSERT INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        epoch,
                        index,
                        session,
                        step,
                        start,
                        end,
                        past,
                        prefix,
                        record.input_hash,
                        record.output_hash,
                        self._pack(inputs),
                        self._pack(outputs),
                    ),
                )
                if payment is not None:
                    self._db.execute(
                        "INSERT INTO paid_by VALUES (?, ?, ?, ?)",
                        (epoch, index, payment.digest, json.dumps(payment.signed.to_json())),
                    )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return record

    def records(self, epoch: int) -> list[TaskRecord]:
        rows = self._db.execute(
            "SELECT t.epoch, t.idx, session, step, start_layer, end_layer, past, prefix_hash, input_hash, output_hash, "
            "COALESCE(p.digest, ?) FROM tasks t LEFT JOIN paid_by p ON (p.epoch, p.idx) = (t.epoch, t.idx) "
            "WHERE t.epoch = ? ORDER BY t.idx",
            (UNPAID, epoch),
        ).fetchall()
        return [TaskRecord(*row) for row in rows]

    def tree(self, epoch: int) -> tuple[list[TaskRecord], list[list[bytes]]]:
        records = self.records(epoch)
        return records, merkle.levels([r.leaf(self.server) for r in records]) if records else []

    def paid_by(self, epoch: int, index: int) -> SignedReceipt | None:
        """The client's signed receipt that paid for task ``index`` of ``epoch``; None for an unpaid step."""
        row = self._db.execute("SELECT receipt FROM paid_by WHERE epoch = ? AND idx = ?", (epoch, index)).fetchone()
        return None if row is None else SignedReceipt.from_json(json.loads(row[0]))

    def session_inputs(self, session: str, *, up_to_step: int) -> list[torch.Tensor]:
        """The inputs of ``session``'s steps 0..up_to_step (the prefix an opening carries)."""
        rows = self._db.execute(
            "SELECT input FROM tasks WHERE session = ? AND step <= ? ORDER BY step", (session, up_to_step)
        ).fetchall()
        return [self._unpack(row[0]) for row in rows]

    def committed_tree(self, epoch: int, index: int) -> tuple[list[TaskRecord] | None, list[list[bytes]]]:
        """The records and Merkle tree of ``epoch`` as committed (the first ``workUnits`` records), or (None, [])
        when the epoch has no commitment or the tree has no leaf ``index``."""
        committed = self.commitment(epoch)
        if committed is None or not 0 <= index < committed[1]:
            return None, []
        records = self.records(epoch)[: committed[1]]
        return records, merkle.levels([r.leaf(self.server) for r in records])

    def opening(self, epoch: int, index: int) -> Opening | None:
        """Leaf ``index`` of ``epoch``'s committed tree with its proof, prefix and output; None when the epoch has
        no commitment or the tree has no such leaf. Steps recorded after the commitment (served in the moment
        between the epoch's end and the server noticing it) are not part of the tree."""
        records, tree = self.committed_tree(epoch, index)
        if records is None:
            return None
        record = records[index]
        inputs = self.session_inputs(record.session, up_to_step=record.step)
        fields = {k: ("0x" + v.hex() if isinstance(v, bytes) else v) for k, v in asdict(record).items()}
        return Opening(
            record=fields,
            proof=merkle.proof(tree, index),
            steps=[t.shape[1] for t in inputs],
            inputs=torch.cat(inputs, dim=1),
            output=self.output(epoch, index),
            receipt=self.paid_by(epoch, index),
        )

    def use_nonce(self, nonce: str, *, expires: int, now: int) -> bool:
        """Remember a signed request's nonce until it expires; False when it was seen before (a replay)."""
        with self._lock:
            self._db.execute("DELETE FROM nonces WHERE expires < ?", (now,))
            try:
                self._db.execute("INSERT INTO nonces VALUES (?, ?)", (nonce, expires))
            except sqlite3.IntegrityError:
                return False
            return True

    def output(self, epoch: int, index: int) -> torch.Tensor:
        row = self._db.execute("SELECT output FROM tasks WHERE epoch = ? AND idx = ?", (epoch, index)).fetchone()
        return self._unpack(row[0])

    def epochs_with_work(self) -> list[int]:
        return [row[0] for row in self._db.execute("SELECT DISTINCT epoch FROM tasks ORDER BY epoch")]

    def commitment(self, epoch: int) -> tuple[bytes, int, str | None] | None:
        return self._db.execute("SELECT root, work_units, tx FROM commitments WHERE epoch = ?", (epoch,)).fetchone()

    def save_commitment(self, epoch: int, root: bytes, work_units: int, tx: str | None) -> None:
        self._db.execute("INSERT OR REPLACE INTO commitments VALUES (?, ?, ?, ?)", (epoch, root, work_units, tx))

    def prune(self, *, settled_before: int, keep: set[str] = frozenset()) -> int:
        """Delete the steps of every session whose steps all lie in epochs before ``settled_before`` (all of them
        settled) and that is not in ``keep`` (the sessions still open on the server); returns how many."""
        with self._lock:
            done = [
                row[0]
                for row in self._db.execute(
                    "SELECT session FROM tasks GROUP BY session HAVING MAX(epoch) < ?", (settled_before,)
                )
                if row[0] not in keep
            ]
            deleted = 0
            for i in range(0, len(done), 500):
                batch = done[i : i + 500]
                marks = ",".join("?" * len(batch))
                deleted += self._db.execute(f"DELETE FROM tasks WHERE session IN ({marks})", batch).rowcount
            return deleted

    def stored_bytes(self) -> int:
        """Bytes the file holds in pages in use (its size less the free pages that new records will reuse)."""
        pages = (
            self._db.execute("PRAGMA page_count").fetchone()[0]
            - self._db.execute("PRAGMA freelist_count").fetchone()[0]
        )
        return pages * self._db.execute("PRAGMA page_size").fetchone()[0]

    def close(self) -> None:
        self._db.close()
