"""CLI for the scheduler: ``strata scheduler`` (run until stopped) and ``strata scheduler status``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from strataml.cli._common import JsonOpt, WorkspaceOpt, open_workspace
from strataml.cli._output import console, emit, table

scheduler_app = typer.Typer(
    help="The scheduler: run pipelines on their schedules and triggers (until SIGTERM or Ctrl-C).",
    invoke_without_command=True,
)


@scheduler_app.callback()
def scheduler(
    ctx: typer.Context,
    pipeline: Annotated[
        list[str] | None, typer.Option("--pipeline", "-p", help="only this pipeline (repeatable)")
    ] = None,
    poll: Annotated[float, typer.Option(help="seconds between polls of the triggers")] = 1.0,
    lease: Annotated[
        float, typer.Option(help="seconds a lease outlives this scheduler's last heartbeat")
    ] = 30.0,
    max_runs: Annotated[int, typer.Option(help="runs executing at once in this process")] = 4,
    engine: Annotated[str, typer.Option(help="where steps run: local or ray")] = "local",
    drain: Annotated[
        float, typer.Option(help="seconds to wait for runs in progress when stopping")
    ] = 30.0,
    duration: Annotated[float | None, typer.Option(help="stop after this many seconds")] = None,
    json_out: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Run the schedules and triggers of the workspace's pipelines until stopped.

    Restart-safe: each tick or event starts exactly one run, however often the scheduler
    is killed and restarted, and however many schedulers share the catalog.
    """
    if ctx.invoked_subcommand is not None:
        return
    import logging

    from strataml.pipelines import run_scheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    ws = open_workspace(workspace)
    launched = run_scheduler(
        ws,
        pipelines=pipeline or None,
        poll_s=poll,
        lease_s=lease,
        max_runs=max_runs,
        engine=engine,
        drain_s=drain,
        duration_s=duration,
    )
    emit(
        {"launched": launched},
        json_out,
        lambda d: console.print(f"scheduler stopped; launched {launched} run(s)"),
    )


@scheduler_app.command("status")
def status(
    last: Annotated[int, typer.Option(help="how many of the last ticks to show")] = 20,
    json_out: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Schedules and their next ticks, triggers, leases, live schedulers and the last runs."""
    from strataml.pipelines import scheduler_status

    data = scheduler_status(open_workspace(workspace), last=last)
    emit(data, json_out, _show)


def _show(data: dict[str, Any]) -> None:
    table(
        "schedules", data["schedules"], ["pipeline", "schedule", "catchup", "next_tick", "held_by"]
    )
    table("triggers", data["triggers"], ["pipeline", "trigger", "cursor", "held_by"])
    table("schedulers", data["schedulers"], ["holder", "heartbeat_at", "expires_at"])
    table("leases", data["leases"], ["name", "holder", "alive", "expires_at"])
    table("last runs", data["last_runs"], ["pipeline", "tick", "state", "run_id", "due_at"])
