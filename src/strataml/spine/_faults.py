"""Failpoints: named places where a test can make the process die, or dawdle, on purpose.

``STRATA_FAILPOINT=name`` kills the process with SIGKILL when execution reaches
``failpoint("name")``; crash-safety tests use it to stop a write at an exact step.
``STRATA_PAUSEPOINT=name:seconds`` makes ``await pausepoint("name")`` wait that long
(the event loop running on), as slow work would; lease tests use it. Each costs one
dictionary lookup when unset.
"""

from __future__ import annotations

import asyncio
import os
import signal


def failpoint(name: str) -> None:
    """Die here (SIGKILL, no cleanup) when ``STRATA_FAILPOINT`` names this point."""
    if os.environ.get("STRATA_FAILPOINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


async def pausepoint(name: str) -> None:
    """Wait here when ``STRATA_PAUSEPOINT`` is ``name:seconds`` (or ``name``: one second)."""
    spec = os.environ.get("STRATA_PAUSEPOINT")
    if spec:
        point, _, seconds = spec.partition(":")
        if point == name:
            await asyncio.sleep(float(seconds or 1.0))
