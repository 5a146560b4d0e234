"""Whether a process holding a lease, a run or a temporary file still runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from strataml.spine import process_alive, process_start_time


def test_a_process_is_alive_until_killed_even_unreaped_and_a_reused_pid_is_told_apart() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = process_start_time(child.pid)
        assert started is not None and process_start_time(os.getpid()) is not None
        assert process_alive(child.pid) and process_alive(child.pid, started)
        assert not process_alive(child.pid, str(int(started) + 1))  # another process with that pid
        os.kill(child.pid, signal.SIGKILL)
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # dead, not reaped: a zombie
        assert not process_alive(child.pid)
    finally:
        child.kill()
        child.wait()
    assert not process_alive(child.pid)
