"""``strata pipelines loops | advance | abort``: the closed loop's canary analyses
(commands of the ``pipelines`` sub-app)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from strataml.cli._common import JsonOpt, WorkspaceOpt, open_workspace
from strataml.cli._output import console, emit, table
from strataml.cli._pipelines import pipelines_app


def _row(d: dict[str, Any]) -> dict[str, Any]:
    last = (d.get("rounds") or [{}])[-1].get("figures") or {}
    return {
        "loop": d["id"][:12],
        "model": d["model"],
        "state": d["state"],
        "champion": d["champion_version"],
        "canary": d["canary_version"],
        "weight": d["canary"]["weight"],
        "rounds": len(d.get("rounds") or []),
        "canary requests": (last.get("canary") or {}).get("requests"),
        "started": d["started_at"][:19],
        "decision": "; ".join((d.get("decision") or {}).get("reasons") or [])[:80],
    }


@pipelines_app.command("loops")
def loops_cmd(
    model: Annotated[str | None, typer.Option("--model", help="only this model's loops")] = None,
    active: Annotated[
        bool, typer.Option("--active", help="only the live ones (canary, approval, bake)")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", help="at most N loops")] = 50,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The closed loop's canary analyses, newest first: state, versions, rounds, decision."""
    from strataml.pipelines import list_loops

    ws = open_workspace(workspace)
    runs = [
        r.to_dict()
        for r in list_loops(ws, model=model, active=True if active else None, limit=limit)
    ]
    emit(runs, as_json, lambda rs: table("loops", [_row(r) for r in rs]))


@pipelines_app.command("advance")
def advance_cmd(
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Advance every live loop once, as each scheduler pass does (check, extend, promote, roll back)."""
    from strataml.pipelines import advance_loops

    ws = open_workspace(workspace)
    runs = [r.to_dict() for r in advance_loops(ws)]
    emit(
        runs,
        as_json,
        lambda rs: (
            table("loops advanced", [_row(r) for r in rs]) if rs else console.print("no live loop")
        ),
    )


@pipelines_app.command("abort")
def abort_cmd(
    loop: Annotated[
        str, typer.Argument(help="loop id or its start (from 'strata pipelines loops')")
    ],
    reason: Annotated[
        str, typer.Option("--reason", help="why (recorded with the decision)")
    ] = "aborted by hand",
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Roll a live loop back now: its canary removed, or during the bake the previous champion restored."""
    from strataml.pipelines import abort, get_loop

    ws = open_workspace(workspace)
    emit(
        abort(ws, get_loop(ws, loop).id, reason=reason).to_dict(),
        as_json,
        lambda d: console.print(f"loop {d['id']}: {d['state']}"),
    )
