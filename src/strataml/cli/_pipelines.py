"""CLI for pipelines: ``strata pipelines list | run | runs | show | resume | cancel``.

Every command first marks runs whose process died as failed (see ``recover_runs``), so
a run killed with SIGKILL shows as failed on the next command and can be resumed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from strataml.cli._common import JsonOpt, WorkspaceOpt, open_workspace
from strataml.cli._output import console, emit, kv, table
from strataml.errors import StrataError

if TYPE_CHECKING:
    from strataml.pipelines import PipelineRun
    from strataml.spine import Workspace

pipelines_app = typer.Typer(
    help="Pipelines: declared DAGs of steps, their runs.", no_args_is_help=True
)

EngineOpt = Annotated[
    str,
    typer.Option(
        "--engine",
        help="where steps run: local (worker processes) or ray (STRATA_RAY=ray://… for a cluster)",
    ),
]
WorkersOpt = Annotated[
    int | None,
    typer.Option("--workers", help="most steps running at once (local engine; default: CPU count)"),
]


def _open(path: Any) -> Workspace:
    from strataml.pipelines import recover_runs

    ws = open_workspace(path)
    recover_runs(ws)
    return ws


def _parse_params(values: list[str] | None) -> dict[str, Any]:
    import orjson

    params: dict[str, Any] = {}
    for item in values or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise StrataError(
                f"--param {item!r} is not KEY=VALUE", hint="write --param threshold=0.5"
            )
        try:
            params[key] = orjson.loads(raw)
        except orjson.JSONDecodeError:
            params[key] = raw  # a bare string
    return params


def _show(run: PipelineRun) -> None:
    kv(
        f"run {run.id}",
        {
            "pipeline": run.pipeline,
            "state": run.state,
            "params": run.params,
            "trigger": run.trigger,
            "created": run.created_at.isoformat(timespec="seconds"),
            "finished": run.finished_at.isoformat(timespec="seconds") if run.finished_at else "",
            **({"error": run.error} if run.error else {}),
        },
    )
    rows = [
        {
            "step": s.name,
            "state": s.state,
            "attempts": s.attempts,
            "output": s.summary,
            "error": (s.error or "")[:120],
        }
        for s in run.steps
    ]
    table("steps", rows, ["step", "state", "attempts", "output", "error"])


def _summary(run: PipelineRun) -> None:
    _show(run)
    states = [s.state for s in run.steps]
    if run.state == "succeeded" and states and all(s == "cached" for s in states):
        console.print(
            "nothing changed: every step's code and inputs match a stored result, so no step ran"
        )
    elif run.state == "succeeded":
        ran = sum(s == "succeeded" for s in states)
        console.print(
            f"succeeded: {ran} step(s) ran, {states.count('cached')} reused a cached result"
        )
    elif run.state == "failed":
        console.print(
            f"[red]failed[/]: {run.error}\nresume it with 'strata pipelines resume {run.id}'",
            highlight=False,
        )


def _progress(json_out: bool) -> Any:
    """Print each step as it ends (people only; --json prints the run at the end)."""
    if json_out:
        return None

    def show(step: str, state: str, error: str | None) -> None:
        colour = {"succeeded": "green", "cached": "cyan", "failed": "red"}.get(state, "yellow")
        console.print(
            f"  {step}: [{colour}]{state}[/]" + (f"  {error}" if error else ""), highlight=False
        )

    return show


def _finish(run: PipelineRun, json_out: bool) -> None:
    emit(run.to_dict(), json_out, lambda _: _summary(run))
    if run.state == "failed":
        raise typer.Exit(1)


@pipelines_app.command("list")
def list_pipelines(json_out: JsonOpt = False, workspace: WorkspaceOpt = None) -> None:
    """The pipelines definitions.py declares, with their steps and parameters."""
    from strataml.pipelines import resolve_pipeline

    ws = _open(workspace)
    rows = []
    for obj in sorted(ws.definitions.all("pipeline"), key=lambda p: p.name):
        built = resolve_pipeline(ws, obj)
        rows.append(
            {
                "name": built.name,
                "steps": built.order(),
                "params": built.params,
                "where": built.where,
            }
        )
    emit(
        rows,
        json_out,
        lambda r: table("pipelines", [{**x, "steps": " → ".join(x["steps"])} for x in r]),
    )


@pipelines_app.command("run")
def run(
    name: Annotated[str, typer.Argument(help="pipeline name")],
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="KEY=VALUE (JSON value or a string); repeatable"),
    ] = None,
    engine: EngineOpt = "local",
    workers: WorkersOpt = None,
    run_key: Annotated[
        str | None,
        typer.Option("--key", help="idempotency key: a run with this key is not created twice"),
    ] = None,
    json_out: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Run a pipeline; steps whose code and inputs are unchanged reuse their stored result."""
    from strataml.pipelines import create_run, execute_run

    ws = _open(workspace)
    run_id, _ = create_run(
        ws, name, params=_parse_params(param), run_key=run_key, trigger={"kind": "cli"}
    )
    if not json_out:
        console.print(f"run {run_id} of {name}", highlight=False)
    _finish(
        execute_run(ws, run_id, engine=engine, workers=workers, progress=_progress(json_out)),
        json_out,
    )


@pipelines_app.command("runs")
def runs(
    name: Annotated[str | None, typer.Argument(help="only this pipeline's runs")] = None,
    state: Annotated[str | None, typer.Option("--state", help="only runs in this state")] = None,
    limit: Annotated[int, typer.Option("--limit", help="most runs to list")] = 50,
    json_out: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Recent runs, newest first."""
    from strataml.pipelines import list_runs

    found = list_runs(_open(workspace), name, limit, state=state)
    rows = [
        {
            "id": r.id,
            "pipeline": r.pipeline,
            "state": r.state,
            "created": r.created_at.isoformat(timespec="seconds"),
            "steps": " ".join(f"{s.name}:{s.state}" for s in r.steps),
        }
        for r in found
    ]
    emit([r.to_dict() for r in found], json_out, lambda _: table("pipeline runs", rows))


@pipelines_app.command("show")
def show(
    run_id: Annotated[str, typer.Argument(help="run id (or a unique prefix)")],
    logs: Annotated[bool, typer.Option("--logs", help="also print the steps' log lines")] = False,
    json_out: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """One run: its parameters, steps, attempts, outputs and errors."""
    from strataml.pipelines import get_run, run_attempts, run_logs

    ws = _open(workspace)
    found = get_run(ws, run_id)
    data = found.to_dict() | {
        "attempts": run_attempts(ws, found.id),
        "logs": run_logs(ws, found.id),
    }

    def human(_: Any) -> None:
        _show(found)
        if logs:
            for line in data["logs"]:
                console.print(
                    f"{line['step']}#{line['attempt']} {line['stream']}: {line['line']}",
                    highlight=False,
                    markup=False,
                )

    emit(data, json_out, human)


@pipelines_app.command("resume")
def resume(
    run_id: Annotated[str, typer.Argument(help="run id (or a unique prefix)")],
    engine: EngineOpt = "local",
    workers: WorkersOpt = None,
    json_out: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Continue a failed or cancelled run from its last completed step."""
    from strataml.pipelines import resume_run

    ws = _open(workspace)
    _finish(
        resume_run(ws, run_id, engine=engine, workers=workers, progress=_progress(json_out)),
        json_out,
    )


@pipelines_app.command("cancel")
def cancel(
    run_id: Annotated[str, typer.Argument(help="run id (or a unique prefix)")],
    wait: Annotated[
        float, typer.Option("--wait", help="seconds to wait for a running run to stop")
    ] = 10.0,
    json_out: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Cancel a queued, running or failed run (a running run's attempts are killed)."""
    from strataml.pipelines import cancel_run

    found = cancel_run(_open(workspace), run_id, wait=wait)
    emit(
        found.to_dict(),
        json_out,
        lambda _: console.print(f"run {found.id}: {found.state}", highlight=False),
    )
