"""Noticing commits to a SQLite database cheaply.

``PRAGMA data_version`` on a connection changes when another connection commits, and
reading it does no I/O when nothing changed; still, a statement per request adds up.
:class:`DataVersion` reads it at most once per ``recheck_ns``, and at once when this
process's own commit count (which the caller keeps) has moved: a commit by another
process is seen within 10 ms by default, one made here immediately.
"""

from __future__ import annotations

import sqlite3
import time

#: how long another process's commit may go unnoticed (a check is a read transaction,
#: with file locks, costing about what an online-store lookup does)
RECHECK_NS = 10_000_000


class DataVersion:
    """The ``data_version`` of one connection, re-read as the module docstring says."""

    __slots__ = ("_commits", "_cursor", "_next_ns", "_recheck_ns", "value")

    def __init__(self, cursor: sqlite3.Cursor, recheck_ns: int = RECHECK_NS) -> None:
        self._cursor = cursor
        self._recheck_ns = recheck_ns
        self._next_ns = 0
        self._commits = -1
        self.value = int(cursor.execute("PRAGMA data_version").fetchone()[0])

    def read(self, commits: int) -> int:
        """The current value; ``commits`` is this process's count of commits to the database."""
        now = time.monotonic_ns()
        if now >= self._next_ns or commits != self._commits:
            self._next_ns, self._commits = now + self._recheck_ns, commits
            self.value = int(self._cursor.execute("PRAGMA data_version").fetchone()[0])
        return self.value
