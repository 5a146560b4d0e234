"""Path confinement and safe names.

Every name that becomes part of a path (datasets, contracts, models…) must be a
safe name; every relative path must stay inside the directory it is joined to.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from strataml.errors import UnsafePath

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,127}$")


def check_name(name: str, what: str = "name") -> str:
    """Return ``name`` if it is a safe identifier, else raise a clear error."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise UnsafePath(
            f"invalid {what} {name!r}",
            hint="use letters, digits, '_' and '-', starting with a letter or '_' (at most 128 characters)",
        )
    return name


def confine(root: Path | str, relative: str) -> Path:
    """Join ``relative`` to ``root`` and refuse any result outside ``root``.

    Absolute paths, ``..`` segments that climb out, and symlinks that lead out are all
    refused.
    """
    root_path = Path(root).resolve()
    rel = PurePosixPath(relative.replace("\\", "/"))
    if rel.is_absolute() or relative.startswith("~") or "\x00" in relative:
        raise UnsafePath(f"path {relative!r} must be relative to {root_path}")
    target = (root_path / rel).resolve()
    if target != root_path and root_path not in target.parents:
        raise UnsafePath(f"path {relative!r} escapes {root_path}", hint="remove '..' segments and symlinks")
    return target


def confine_key(relative: str) -> str:
    """Normalise an object-store key and refuse one that climbs out (``..``) or is absolute."""
    if not relative or "\x00" in relative or relative.startswith(("/", "\\", "~")):
        raise UnsafePath(f"storage key {relative!r} must be a non-empty relative path")
    parts = relative.replace("\\", "/").split("/")
    if any(p in ("..", ".") for p in parts) or re.match(r"^[A-Za-z]:", relative):
        raise UnsafePath(f"storage key {relative!r} may not contain '.' or '..' segments or a drive")
    return "/".join(p for p in parts if p)
