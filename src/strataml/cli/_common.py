"""Options and helpers shared by every CLI command."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from strataml.spine import Workspace

WorkspaceOpt = Annotated[
    Path | None,
    typer.Option("--workspace", "-w", help="workspace folder (default: found from the current folder upward)", envvar="STRATA_WORKSPACE"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print machine-readable JSON")]


def open_workspace(path: Path | None) -> Workspace:
    """The workspace named by ``--workspace`` or found upward from the current folder."""
    from strataml.spine import Workspace

    return Workspace.open(path)
