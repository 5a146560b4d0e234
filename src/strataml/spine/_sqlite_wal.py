"""Switching a SQLite file to write-ahead logging when several processes open it at once.

``PRAGMA journal_mode=WAL`` needs the file to itself for a moment, and SQLite reports
``database is locked`` at once (its busy timeout does not apply) when another process
is opening the same new file: gateway workers starting together on a fresh online
store, say. The switch is retried briefly; once any connection has made it, it holds
for the file.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_random_exponential


def _locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


def use_wal(cursor: Any, timeout_s: float = 30.0) -> None:
    """Put the database of ``cursor`` (a DB-API cursor or connection) in WAL mode."""
    for attempt in Retrying(
        stop=stop_after_delay(timeout_s), wait=wait_random_exponential(multiplier=0.005, max=0.25),
        retry=retry_if_exception(_locked), reraise=True,
    ):
        with attempt:
            cursor.execute("PRAGMA journal_mode=WAL")
