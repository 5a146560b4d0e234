"""A workspace whose definitions.py declares pipelines, for the pipeline tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

import strataml as st

HEADER = '''
import os
import time
from pathlib import Path

import strataml as st

MARKS = Path(os.environ.get("STRATA_TEST_MARKS", "."))


def mark(name):
    """Count one execution of ``name`` (a line in a file the test reads)."""
    with open(MARKS / f"{name}.count", "a") as fh:
        fh.write("x\\n")


def count(name):
    path = MARKS / f"{name}.count"
    return len(path.read_text().splitlines()) if path.exists() else 0


def wait_for(name, seconds=60.0):
    """Block until the test creates file ``name`` (fail after ``seconds``)."""
    end = time.monotonic() + seconds
    while not (MARKS / name).exists():
        if time.monotonic() > end:
            raise RuntimeError(f"{name} never appeared")
        time.sleep(0.05)
'''


def pipeline_workspace(root: Path, body: str, **overrides: str) -> st.Workspace:
    """A workspace at ``root`` whose definitions.py is the helpers above plus ``body``."""
    st.Workspace.init(root, example=False).close()
    (root / "definitions.py").write_text(HEADER + textwrap.dedent(body))
    (root / "marks").mkdir(exist_ok=True)
    return st.Workspace.open(root, **overrides)


def counts(root: Path, name: str) -> int:
    """How many times step code called ``mark(name)``."""
    path = root / "marks" / f"{name}.count"
    return len(path.read_text().splitlines()) if path.exists() else 0
