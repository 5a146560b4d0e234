"""The embedded default: a durable queue in one SQLite file (``sqlite:///path/queue.db``).

Messages, leases and dead letters are rows; every change is one transaction, committed
with ``synchronous=FULL`` in WAL mode, so what was published or acknowledged survives a
crash of the process or the machine. Several processes may share the file: a fetch
takes its messages in one ``BEGIN IMMEDIATE`` transaction, so two consumers never lease
the same message. Consumers poll (backing off to 50 ms) while the queue is empty.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from strataml.spine._sqlite_wal import use_wal
from strataml.spine.queue._protocol import (
    DEFAULT_LEASE_S,
    DEFAULT_MAX_DELIVERIES,
    BaseQueue,
    DeadLetter,
    Delivery,
    Outgoing,
    QueueError,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    id TEXT NOT NULL,
    body BLOB NOT NULL,
    headers TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_until REAL NOT NULL DEFAULT 0,
    lease TEXT,
    last_error TEXT,
    UNIQUE (queue, id)
);
CREATE INDEX IF NOT EXISTS messages_ready ON messages (queue, lease_until, seq);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    id TEXT NOT NULL,
    body BLOB NOT NULL,
    headers TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    error TEXT NOT NULL,
    dead_at REAL NOT NULL,
    UNIQUE (queue, id)
);
"""


def _path(url: str) -> Path:
    if not url.startswith("sqlite:///"):
        raise QueueError(f"not a SQLite queue URL: {url!r}", hint="use sqlite:///path/to/queue.db")
    raw = url[len("sqlite:///"):].split("?", 1)[0]
    if not raw or raw == ":memory:":
        raise QueueError(f"a SQLite queue needs a file: {url!r}", hint="use sqlite:///path/to/queue.db")
    return Path(raw)


class SQLiteQueue(BaseQueue):
    """A durable queue in a SQLite file; a publish of an id still queued is ignored."""

    scheme = "sqlite"

    def __init__(self, url: str, *, max_deliveries: int = DEFAULT_MAX_DELIVERIES) -> None:
        super().__init__(url, max_deliveries=max_deliveries)
        self.path = _path(url)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con: sqlite3.Connection | None = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        use_wal(self._con)
        self._con.execute("PRAGMA synchronous=FULL")
        self._con.executescript(_SCHEMA)

    @property
    def con(self) -> sqlite3.Connection:
        if self._con is None:
            raise QueueError(f"the queue {self.url} is closed")
        return self._con

    def _tx(self, fn: Any, *args: Any) -> Any:
        con = self.con
        con.execute("BEGIN IMMEDIATE")
        try:
            out = fn(con, *args)
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
        return out

    async def _publish(self, queue: str, messages: Sequence[Outgoing]) -> None:
        rows = [(queue, m.id, m.body, orjson.dumps(m.headers).decode()) for m in messages]
        self._tx(lambda con: con.executemany("INSERT OR IGNORE INTO messages (queue, id, body, headers) VALUES (?, ?, ?, ?)", rows))

    def _take(self, con: sqlite3.Connection, queue: str, n: int, lease: float) -> list[Delivery]:
        now = time.time()
        rows = con.execute(
            "SELECT seq, id, body, headers, attempts FROM messages WHERE queue = ? AND lease_until <= ? ORDER BY seq LIMIT ?",
            (queue, now, n),
        ).fetchall()
        if not rows:
            return []
        token = uuid.uuid4().hex
        con.executemany("UPDATE messages SET attempts = attempts + 1, lease_until = ?, lease = ? WHERE seq = ?",
                        [(now + lease, token, r[0]) for r in rows])
        return [Delivery(queue, r[1], r[2], orjson.loads(r[3]), r[4] + 1, (r[0], token)) for r in rows]

    async def _fetch(self, queue: str, max_messages: int, wait: float, lease: float) -> list[Delivery]:
        deadline = time.monotonic() + wait
        pause = 0.002
        while True:
            got: list[Delivery] = self._tx(self._take, queue, max_messages, lease)
            if got or time.monotonic() >= deadline:
                return got
            await asyncio.sleep(min(pause, max(deadline - time.monotonic(), 0.0)))
            pause = min(pause * 2, 0.05)

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Delete the messages, unless their lease lapsed and another consumer took them."""
        if deliveries:
            rows = [d.handle for d in deliveries]
            self._tx(lambda con: con.executemany("DELETE FROM messages WHERE seq = ? AND lease = ?", rows))

    async def _requeue(self, delivery: Delivery, error: str) -> None:
        seq, token = delivery.handle
        self._tx(lambda con: con.execute(
            "UPDATE messages SET lease_until = 0, lease = NULL, last_error = ? WHERE seq = ? AND lease = ?", (error, seq, token)))

    async def _dead_letter(self, delivery: Delivery, error: str) -> None:
        seq, token = delivery.handle

        def move(con: sqlite3.Connection) -> None:
            if con.execute("DELETE FROM messages WHERE seq = ? AND lease = ?", (seq, token)).rowcount:
                con.execute(
                    "INSERT OR REPLACE INTO dead_letters (queue, id, body, headers, attempts, error, dead_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (delivery.queue, delivery.id, delivery.body, orjson.dumps(delivery.headers).decode(), delivery.attempts, error, time.time()),
                )

        self._tx(move)

    async def renew(self, delivery: Delivery, lease: float = DEFAULT_LEASE_S) -> None:
        """Extend the lease; QueueError if it lapsed and another consumer has the message."""
        seq, token = delivery.handle
        n = self._tx(lambda con: con.execute("UPDATE messages SET lease_until = ? WHERE seq = ? AND lease = ?", (time.time() + lease, seq, token)).rowcount)
        if not n:
            raise QueueError(f"message {delivery.id}: the lease lapsed and the message was delivered again", hint="renew leases more often than they last")

    async def _dead_letters(self, queue: str, limit: int) -> list[DeadLetter]:
        rows = self.con.execute(
            "SELECT id, body, headers, attempts, error, dead_at FROM dead_letters WHERE queue = ? ORDER BY seq LIMIT ?", (queue, limit)).fetchall()
        return [DeadLetter(queue, r[0], r[1], orjson.loads(r[2]), r[3], r[4], r[5]) for r in rows]

    def _select(self, con: sqlite3.Connection, queue: str, ids: set[str] | None) -> list[tuple[Any, ...]]:
        rows = con.execute("SELECT seq, id, body, headers FROM dead_letters WHERE queue = ? ORDER BY seq", (queue,)).fetchall()
        return [r for r in rows if ids is None or r[1] in ids]

    async def _replay(self, queue: str, ids: set[str] | None) -> int:
        def move(con: sqlite3.Connection) -> int:
            rows = self._select(con, queue, ids)
            con.executemany("INSERT OR IGNORE INTO messages (queue, id, body, headers) VALUES (?, ?, ?, ?)", [(queue, r[1], r[2], r[3]) for r in rows])
            con.executemany("DELETE FROM dead_letters WHERE seq = ?", [(r[0],) for r in rows])
            return len(rows)

        n: int = self._tx(move)
        return n

    async def _drop(self, queue: str, ids: set[str] | None) -> int:
        def delete(con: sqlite3.Connection) -> int:
            rows = self._select(con, queue, ids)
            con.executemany("DELETE FROM dead_letters WHERE seq = ?", [(r[0],) for r in rows])
            return len(rows)

        n: int = self._tx(delete)
        return n

    async def close(self) -> None:
        """Close the file; leases held stay until they lapse."""
        if self._con is not None:
            self._con.close()
            self._con = None
