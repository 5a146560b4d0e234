"""The worker's record of effects: which message ids took effect, and with what result.

Delivery is at least once, so a worker may see a message again after it already took
effect (it died before acknowledging). Before acting, the worker asks the ledger; a
message recorded there is not acted on again. A message is recorded *before* its effect
starts (``pending``: a scoring request about to be logged, an event in a batch about to
be ingested), so a worker that dies at any point leaves a record saying where to look:
the prediction log for the request's id, the dataset's versions for the batch's id. One
SQLite file per workspace (``<state>/queue-effects.db``), shared by its workers, written
with ``synchronous=FULL`` so a record survives a crash of the machine.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

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

#: states: pending (a request about to be predicted and logged, or an event in a batch
#: about to be ingested), answered (a reply stored, maybe not sent), replied (the reply
#: sent), done (the batch's dataset version is committed)
Entry = tuple[str, str | None, bytes | None, float]  #: (state, batch, result, when recorded)


class Ledger:
    """Effects by (queue, message id)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.con = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        use_wal(self.con)
        self.con.execute("PRAGMA synchronous=FULL")
        self.con.executescript(_SCHEMA)

    def get(self, queue: str, ids: Sequence[str]) -> dict[str, Entry]:
        """The recorded (state, batch, result, when) of those of ``ids`` the ledger knows."""
        out: dict[str, Entry] = {}
        for i in range(0, len(ids), 500):
            chunk = list(ids[i:i + 500])
            marks = ",".join("?" * len(chunk))
            for mid, state, batch, result, at in self.con.execute(
                f"SELECT id, state, batch, result, at FROM effects WHERE queue = ? AND id IN ({marks})", [queue, *chunk]):
                out[mid] = (state, batch, result, at)
        return out

    def put(self, queue: str, rows: Iterable[tuple[str, str, str | None, bytes | None]]) -> None:
        """Record ``(id, state, batch, result)`` rows in one transaction."""
        now = time.time()
        self._write("INSERT OR REPLACE INTO effects (queue, id, state, batch, result, at) VALUES (?, ?, ?, ?, ?, ?)",
                    [(queue, mid, state, batch, result, now) for mid, state, batch, result in rows])

    def forget(self, queue: str, ids: Sequence[str]) -> None:
        """Delete the records of ``ids`` (their effect did not happen) in one transaction."""
        self._write("DELETE FROM effects WHERE queue = ? AND id = ?", [(queue, mid) for mid in ids])

    def set_state(self, queue: str, ids: Sequence[str], state: str) -> None:
        """Move ``ids`` to ``state`` (their result no longer kept) in one transaction."""
        self._write("UPDATE effects SET state = ?, result = NULL WHERE queue = ? AND id = ?", [(state, queue, mid) for mid in ids])

    def _write(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        con = self.con
        con.execute("BEGIN IMMEDIATE")
        try:
            con.executemany(sql, rows)
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def prune(self, older_than_s: float) -> int:
        """Forget finished effects recorded more than ``older_than_s`` seconds ago; how many."""
        cur = self.con.execute("DELETE FROM effects WHERE state IN ('replied', 'done') AND at < ?", (time.time() - older_than_s,))
        return int(cur.rowcount)

    def close(self) -> None:
        """Close the file."""
        self.con.close()
