"""CLI for the dashboard: ``strata ui`` serves it alone; ``strata serve`` mounts it beside the gateway."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

from strataml.cli._common import WorkspaceOpt, open_workspace
from strataml.cli._output import console

if TYPE_CHECKING:
    from starlette.applications import Starlette



def gateway_with_dashboard() -> Starlette:
    """The ASGI factory ``strata serve`` hands to uvicorn: the gateway with the dashboard at ``/ui``."""
    from strataml.dashboard import dashboard_mounts
    from strataml.serving import app_from_env

    return app_from_env(mounts=dashboard_mounts)


def dashboard_from_env() -> Starlette:
    """The ASGI factory ``strata ui`` hands to uvicorn (the workspace from ``STRATA_UI_WORKSPACE``)."""
    from strataml.dashboard import standalone_app
    from strataml.spine import Workspace

    return standalone_app(Workspace.open(os.environ["STRATA_UI_WORKSPACE"]))


def ui(
    host: Annotated[str, typer.Option(help="address to bind (loopback unless told otherwise)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8080,
    log_level: Annotated[str, typer.Option(help="log level")] = "info",
    workspace: WorkspaceOpt = None,
) -> None:
    """Serve the web dashboard alone at http://HOST:PORT/ui (log in with a key that has the 'read' scope)."""
    import uvicorn

    ws = open_workspace(workspace)
    ws.catalog  # noqa: B018 - migrate before serving
    os.environ["STRATA_UI_WORKSPACE"] = str(ws.root)
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(f"[yellow]binding to {host}: the dashboard is reachable from other machines[/]")
    console.print(f"dashboard at http://{host}:{port}/ui (log in with a key created by 'strata keys create --scope read')")
    uvicorn.run(
        "strataml.cli._dashboard:dashboard_from_env", factory=True, host=host, port=port, log_level=log_level,
        access_log=False, proxy_headers=False, forwarded_allow_ips="", timeout_graceful_shutdown=10,
    )
