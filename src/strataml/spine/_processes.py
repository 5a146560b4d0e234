"""Whether a process of this host still runs.

Leases, pipeline runs and temporary files name the process that holds them; a holder
that died (killed, crashed) must not keep them forever. A zombie (exited, not yet
reaped by its parent) holds nothing. A pid the system has given to a new process is
told apart from the old one by its start time, where the holder recorded it.
"""

from __future__ import annotations

import os


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (Linux), None if unreadable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[-1].decode().split()
    except (OSError, IndexError, UnicodeDecodeError):
        return None


def process_start_time(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, Linux), None if unknown."""
    fields = _stat(pid)
    return fields[19] if fields is not None and len(fields) > 19 else None


def process_alive(pid: int, started: str | None = None) -> bool:
    """Whether process ``pid`` of this host runs: it exists (even as another user's), is
    no zombie, and — when ``started`` (its :func:`process_start_time` when recorded) is
    given — started then, so a reused pid is not mistaken for the process that held it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    fields = _stat(pid)
    if fields is None:  # no /proc: existing is all that can be known
        return True
    if fields and fields[0] == "Z":
        return False
    return started is None or len(fields) <= 19 or fields[19] == started
