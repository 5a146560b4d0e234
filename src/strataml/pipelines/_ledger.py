"""The worker's record of effects: which message ids took effect, and with what result.

Delivery is at least once, so a worker may see a message again after it already took
effect (it died before acknowledging). Before acting, the worker asks the ledger; a
message recorded there is not acted on again: a scoring request's stored reply is sent
if it was not yet, an event batch is looked up among the dataset's versions. One SQLite
file per workspace (``<state>/queue-effects.db``), shared by its workers, written with
``synchronous=FULL`` so a record survives a crash of the machine.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from strataml.spine import use_wal

_SCHEMA = """
CREATE TABLE IF NOT EXISTS effects (
    queue TEXT NOT NULL,
    id TEXT NOT NULL,
    state TEXT NOT NULL,
    batch TEXT,
    result BLOB,
    at REAL NOT NULL,
    PRIMARY KEY (queue, id)
) WITHOUT ROWID;
"""

#: states: answered (result stored, reply maybe not sent), replied, pending (in an event
#: batch being ingested), done (the batch's dataset version is committed)
Entry = tuple[str, str | None, bytes | None]


class Ledger:
    """Effects by (queue, message id)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.con = sqlite3.connect(
            path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        use_wal(self.con)
        self.con.execute("PRAGMA synchronous=FULL")
        self.con.executescript(_SCHEMA)

    def get(self, queue: str, ids: Sequence[str]) -> dict[str, Entry]:
        """The recorded (state, batch, result) of those of ``ids`` the ledger knows."""
        out: dict[str, Entry] = {}
        for i in range(0, len(ids), 500):
            chunk = list(ids[i : i + 500])
            marks = ",".join("?" * len(chunk))
            for mid, state, batch, result in self.con.execute(
                f"SELECT id, state, batch, result FROM effects WHERE queue = ? AND id IN ({marks})",
                [queue, *chunk],
            ):
                out[mid] = (state, batch, result)
        return out

    def put(self, queue: str, rows: Iterable[tuple[str, str, str | None, bytes | None]]) -> None:
        """Record ``(id, state, batch, result)`` rows in one transaction."""
        now = time.time()
        con = self.con
        con.execute("BEGIN IMMEDIATE")
        try:
            con.executemany(
                "INSERT OR REPLACE INTO effects (queue, id, state, batch, result, at) VALUES (?, ?, ?, ?, ?, ?)",
                [(queue, mid, state, batch, result, now) for mid, state, batch, result in rows],
            )
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def set_state(self, queue: str, ids: Sequence[str], state: str) -> None:
        """Move ``ids`` to ``state`` in one transaction."""
        con = self.con
        con.execute("BEGIN IMMEDIATE")
        try:
            con.executemany(
                "UPDATE effects SET state = ? WHERE queue = ? AND id = ?",
                [(state, queue, mid) for mid in ids],
            )
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def prune(self, older_than_s: float) -> int:
        """Forget finished effects recorded more than ``older_than_s`` seconds ago; how many."""
        cur = self.con.execute(
            "DELETE FROM effects WHERE state IN ('replied', 'done') AND at < ?",
            (time.time() - older_than_s,),
        )
        return int(cur.rowcount)

    def close(self) -> None:
        """Close the file."""
        self.con.close()
