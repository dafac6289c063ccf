"""Task records: every inference step a server serves, kept on disk until its epoch is settled.

A record commits to what a verifier needs to recompute the step: the epoch, the layers, the session, the step
number, the tokens before it (``past``), a running hash over the session's earlier inputs (``prefix_hash``),
and hashes of the input and output hidden states. The tensors themselves are stored too, so that an opening
can hand a verifier the session's whole prefix. SQLite with synchronous commits: a crash or restart loses no
served step and no commitment.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

import torch
from eth_abi import encode as abi_encode
from eth_utils import keccak

from efedllm import merkle, wire

SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    epoch INTEGER NOT NULL, idx INTEGER NOT NULL, session TEXT NOT NULL, step INTEGER NOT NULL,
    start_layer INTEGER NOT NULL, end_layer INTEGER NOT NULL, past INTEGER NOT NULL,
    prefix_hash BLOB NOT NULL, input_hash BLOB NOT NULL, output_hash BLOB NOT NULL,
    input BLOB NOT NULL, output BLOB NOT NULL,
    PRIMARY KEY (epoch, idx)
);
CREATE INDEX IF NOT EXISTS tasks_by_session ON tasks (session, step);
CREATE TABLE IF NOT EXISTS commitments (
    epoch INTEGER PRIMARY KEY, root BLOB NOT NULL, work_units INTEGER NOT NULL, tx TEXT
);
"""


def tensor_hash(hidden: torch.Tensor) -> bytes:
    """keccak256 over the shape and the little-endian float bytes: what a leaf commits to."""
    t = hidden.detach().to("cpu").contiguous()
    shape = b"".join(int(d).to_bytes(4, "big") for d in t.shape)
    return keccak(str(t.dtype).encode() + shape + t.view(torch.uint8).numpy().tobytes())


@dataclass(frozen=True)
class TaskRecord:
    epoch: int
    index: int
    session: str
    step: int
    start: int
    end: int
    past: int
    prefix_hash: bytes
    input_hash: bytes
    output_hash: bytes

    def leaf(self, server: str) -> bytes:
        """The Merkle leaf: ABI-encoded so that a contract could check it too."""
        return keccak(abi_encode(
            ["uint256", "address", "uint256", "uint256", "bytes32", "uint256", "uint256", "bytes32", "bytes32", "bytes32"],
            [self.epoch, server, self.start, self.end, keccak(text=self.session), self.step, self.past,
             self.prefix_hash, self.input_hash, self.output_hash],
        ))


class TaskStore:
    def __init__(self, path: Path, *, server: str):
        self.path, self.server = Path(path), server
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def record(self, *, epoch: int, session: str, start: int, end: int, past: int, inputs: torch.Tensor,
               outputs: torch.Tensor) -> TaskRecord:
        """Persist one served step (before its output is returned to the client)."""
        with self._lock:
            row = self._db.execute(
                "SELECT step, prefix_hash, input_hash FROM tasks WHERE session = ? ORDER BY step DESC LIMIT 1", (session,)
            ).fetchone()
            step = 0 if row is None else row[0] + 1
            prefix = b"\0" * 32 if row is None else keccak(row[1] + row[2])
            index = self._db.execute("SELECT COALESCE(MAX(idx), -1) + 1 FROM tasks WHERE epoch = ?", (epoch,)).fetchone()[0]
            record = TaskRecord(epoch, index, session, step, start, end, past, prefix, tensor_hash(inputs),
                                tensor_hash(outputs))
            self._db.execute(
                "INSERT INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (epoch, index, session, step, start, end, past, prefix, record.input_hash, record.output_hash,
                 wire.encode(inputs), wire.encode(outputs)),
            )
            return record

    def records(self, epoch: int) -> list[TaskRecord]:
        rows = self._db.execute(
            "SELECT epoch, idx, session, step, start_layer, end_layer, past, prefix_hash, input_hash, output_hash "
            "FROM tasks WHERE epoch = ? ORDER BY idx", (epoch,)).fetchall()
        return [TaskRecord(*row) for row in rows]

    def tree(self, epoch: int) -> tuple[list[TaskRecord], list[list[bytes]]]:
        records = self.records(epoch)
        return records, merkle.levels([r.leaf(self.server) for r in records]) if records else []

    def session_inputs(self, session: str, *, up_to_step: int) -> list[bytes]:
        """The stored input messages of ``session``'s steps 0..up_to_step (the prefix an opening carries)."""
        rows = self._db.execute("SELECT input FROM tasks WHERE session = ? AND step <= ? ORDER BY step",
                                (session, up_to_step)).fetchall()
        return [row[0] for row in rows]

    def output(self, epoch: int, index: int) -> bytes:
        return self._db.execute("SELECT output FROM tasks WHERE epoch = ? AND idx = ?", (epoch, index)).fetchone()[0]

    def epochs_with_work(self) -> list[int]:
        return [row[0] for row in self._db.execute("SELECT DISTINCT epoch FROM tasks ORDER BY epoch")]

    def commitment(self, epoch: int) -> tuple[bytes, int, str | None] | None:
        return self._db.execute("SELECT root, work_units, tx FROM commitments WHERE epoch = ?", (epoch,)).fetchone()

    def save_commitment(self, epoch: int, root: bytes, work_units: int, tx: str | None) -> None:
        self._db.execute("INSERT OR REPLACE INTO commitments VALUES (?, ?, ?, ?)", (epoch, root, work_units, tx))

    def close(self) -> None:
        self._db.close()
