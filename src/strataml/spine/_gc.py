"""Garbage collection: what interrupted writers left behind, found and (on request) removed.

Two kinds of orphans: staging entries whose owning process is gone (a killed ingest's
folder, a half-copied ``.part`` file), and stored objects that no catalog row mentions.
An object counts as referenced when its sha256 appears anywhere in the catalog, in any
column of any table, so nothing a version, run, model or export names is ever listed;
objects younger than a grace period are left alone too, since a writer stores its files
before the transaction that references them commits.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from strataml.spine._artifacts import orphans, remove
from strataml.spine._workspace import Workspace

#: an unreferenced object younger than this may belong to a commit under way
GRACE_SECONDS = 24 * 3600
_SHA = re.compile(r"[0-9a-f]{64}")


def referenced(ws: Workspace) -> set[str]:
    """Every sha256 the catalog mentions, in any table and column."""
    found: set[str] = set()
    with ws.catalog.read() as conn:
        # the tables the database holds, whichever layers this process has imported
        tables = sa.MetaData()
        tables.reflect(conn)
        for table in tables.sorted_tables:
            for row in conn.execute(sa.select(table)):
                for value in row:
                    if value is not None:
                        found.update(_SHA.findall(str(value)))
    return found


def collect(ws: Workspace, *, apply: bool = False, grace: float = GRACE_SECONDS) -> dict[str, Any]:
    """The orphans of a workspace (deleted with ``apply``): a JSON-ready summary."""
    store = ws.artifacts
    staging: list[dict[str, Any]] = []
    for folder, prefix in store.tmp_dirs:
        for path in orphans(folder, prefix):
            staging.append({"path": str(path), "bytes": remove(path) if apply else _size(path)})
    objects: list[dict[str, Any]] = []
    if store.is_local:
        known = referenced(ws)
        now = time.time()
        for path in sorted(Path(store.root, "objects").glob("*/*")):
            if path.name in known or not _SHA.fullmatch(path.name):
                continue
            try:
                if now - path.stat().st_mtime < grace:
                    continue
            except OSError:
                continue
            objects.append({"sha256": path.name, "path": str(path), "bytes": remove(path) if apply else _size(path)})
    return {
        "applied": apply,
        "staging": staging,
        "objects": objects,
        "bytes": sum(e["bytes"] for e in staging + objects),
        "objects_checked": store.is_local,
    }


def _size(path: Path) -> int:
    try:
        if not path.is_dir():
            return path.lstat().st_size
        return sum(f.lstat().st_size for f in path.rglob("*") if f.is_file())
    except OSError:
        return 0
