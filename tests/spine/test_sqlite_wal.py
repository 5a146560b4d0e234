"""Switching to WAL waits for another process's hold on the file instead of failing."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from strataml.spine._sqlite_wal import use_wal


def test_the_switch_waits_for_a_lock_held_elsewhere(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")  # as another process opening the file would, briefly
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        other.execute("PRAGMA journal_mode=WAL")  # what a plain switch does meanwhile
    threading.Timer(0.3, holder.execute, ("COMMIT",)).start()
    use_wal(other, timeout_s=10)
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    holder.close()
    other.close()


def test_other_errors_are_not_retried(tmp_path: Path) -> None:
    class Broken:
        calls = 0

        def execute(self, sql: str) -> None:
            Broken.calls += 1
            raise sqlite3.OperationalError("disk I/O error")

    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        use_wal(Broken(), timeout_s=5)
    assert Broken.calls == 1
