"""Failpoints: named places where a test can make the process die on purpose.

``STRATA_FAILPOINT=name`` kills the process with SIGKILL when execution reaches
``failpoint("name")``; crash-safety tests use it to stop a write at an exact step.
It costs one dictionary lookup when unset.
"""

from __future__ import annotations

import os
import signal


def failpoint(name: str) -> None:
    """Die here (SIGKILL, no cleanup) when ``STRATA_FAILPOINT`` names this point."""
    if os.environ.get("STRATA_FAILPOINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
