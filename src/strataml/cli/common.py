"""Options and helpers shared by every CLI command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from strataml.spine.workspace import Workspace

WorkspaceOpt = Annotated[
    Path | None,
    typer.Option("--workspace", "-w", help="workspace folder (default: found from the current folder upward)", envvar="STRATA_WORKSPACE"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print machine-readable JSON")]


def open_workspace(path: Path | None) -> Workspace:
    """The workspace named by ``--workspace`` or found upward from the current folder."""
    return Workspace.open(path)
