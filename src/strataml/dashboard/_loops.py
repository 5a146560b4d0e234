"""What the loop pages show: each closed-loop run as a timeline of its pipeline steps and
its canary decisions, and the canary's figures against the champion's, round by round."""

from __future__ import annotations

import re
from typing import Any

from strataml.dashboard._observed import _epoch
from strataml.errors import NotFound, StrataError
from strataml.pipelines import get_loop, get_run, list_loops
from strataml.spine import Workspace, list_events

LOOP_ID = re.compile(r"^[0-9a-f]{32}$")


def loops(ws: Workspace, limit: int = 100) -> dict[str, Any]:
    """Every loop run (newest first) with its last figures, and the latest gate verdicts."""
    rows = []
    for r in list_loops(ws, limit=limit):
        last = (r.rounds[-1].get("figures") if r.rounds else None) or {}
        rows.append(
            {
                "id": r.id,
                "model": r.model,
                "deployment": r.deployment,
                "state": r.state,
                "champion": r.champion_version,
                "canary": r.canary_version,
                "weight": r.canary.weight,
                "rounds": len(r.rounds),
                "started_at": r.started_at.isoformat(),
                "ended_at": r.ended_at.isoformat() if r.ended_at else None,
                "pipeline_run": r.pipeline_run,
                "outcome": (r.decision or {}).get("outcome"),
                "reasons": list((r.decision or {}).get("reasons") or []),
                "canary_figures": last.get("canary"),
                "champion_figures": last.get("champion"),
            }
        )
    gates = [
        {"ts": e.ts.isoformat(), "kind": e.kind, "model": e.subject.split(":", 1)[-1], **e.payload}
        for e in reversed(list_events(ws.catalog, kind="loop.gate.", limit=20))
    ]
    return {"loops": rows, "gates": gates}


def _pipeline_events(
    ws: Workspace, run_id: str | None
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    if not run_id:
        return [], None
    try:
        run = get_run(ws, run_id)
    except StrataError:
        return [], None
    out = [
        e.to_dict()
        for e in list_events(ws.catalog, kind="pipeline.", subject=run.pipeline, limit=2000)
        if e.payload.get("run_id") == run_id
    ]
    out += [
        e.to_dict()
        for e in list_events(ws.catalog, kind="loop.gate.", limit=2000)
        if e.payload.get("pipeline_run") == run_id
    ]
    steps = [
        {
            k: v
            for k, v in s.to_dict().items()
            if k in ("name", "state", "attempts", "started_at", "finished_at", "error")
        }
        for s in run.steps
    ]
    return out, {
        "id": run.id,
        "pipeline": run.pipeline,
        "state": run.state,
        "steps": steps,
        "error": run.error,
    }


def _step_label(e: dict[str, Any]) -> str:
    kind, p = str(e["kind"]), e["payload"]
    if kind.startswith("pipeline.step."):
        return f"step {p.get('step')}: {kind.rsplit('.', 1)[-1]}"
    if kind.startswith("pipeline.run."):
        return f"pipeline run {kind.rsplit('.', 1)[-1]}"
    return kind.removeprefix("loop.").replace(".", " ").replace("_", " ")


def _reasons(e: dict[str, Any]) -> list[str]:
    p = e["payload"]
    out = [str(r) for r in p.get("reasons") or []]
    if p.get("outcomes"):
        out += [f"{k}: {v}" for k, v in p["outcomes"].items()]
    if p.get("error"):
        out.append(str(p["error"]))
    return out


def loop(ws: Workspace, loop_id: str) -> dict[str, Any]:
    """One loop run: its rules, its decision, a timeline of every step and decision with
    its reasons, and a table of each round's canary and champion figures."""
    run = _loop_run(ws, loop_id)
    events, pipeline = _pipeline_events(ws, run.pipeline_run)
    events += [e.to_dict() for e in list_events(ws.catalog, subject=f"loop:{run.id}", limit=2000)]
    events.sort(key=lambda e: e["id"])
    timeline = [
        {
            "ts": e["ts"],
            "kind": e["kind"],
            "step": _step_label(e),
            "actor": e["actor"],
            "reasons": _reasons(e),
        }
        for e in events
    ]
    return {
        "run": run.to_dict(),
        "rules": run.canary.to_dict(),
        "timeline": timeline,
        "rounds": _rounds(run),
        "pipeline": pipeline,
    }


def _loop_run(ws: Workspace, loop_id: str) -> Any:
    """The loop run a page's address names (a whole id: an address is never a prefix)."""
    if not LOOP_ID.fullmatch(loop_id):
        raise NotFound(f"no loop run {loop_id[:40]!r}", hint="the loops page lists them")
    return get_loop(ws, loop_id)


def _rounds(run: Any) -> list[dict[str, Any]]:
    """Each round of checks: when, the canary's and the champion's figures, each check's outcome."""
    rounds = []
    for i, r in enumerate(run.rounds, 1):
        f = r.get("figures") or {}
        checks = [*r.get("promote_if", []), *r.get("rollback_if", [])]
        rounds.append(
            {
                "n": i,
                "at": r.get("at"),
                "canary": f.get("canary") or {},
                "champion": f.get("champion") or {},
                "checks": [
                    {"check": c["check"], "outcome": c["outcome"], "reason": c["reason"]}
                    for c in checks
                ],
            }
        )
    return rounds


def loop_chart(ws: Workspace, loop_id: str) -> dict[str, Any]:
    """uPlot data: per round, the canary's and the champion's error rate and p99 latency."""
    rs = _rounds(_loop_run(ws, loop_id))
    x = [_epoch(r["at"]) for r in rs]

    def series(role: str, key: str) -> dict[str, Any]:
        return {
            "label": f"{role} v{(rs[-1][role].get('version') if rs else '')}",
            "values": [r[role].get(key) for r in rs],
        }

    return {
        "error_rate": {
            "x": x,
            "series": [series("canary", "error_rate"), series("champion", "error_rate")],
        },
        "p99_ms": {"x": x, "series": [series("canary", "p99_ms"), series("champion", "p99_ms")]},
        "requests": {
            "x": x,
            "series": [series("canary", "requests"), series("champion", "requests")],
        },
    }
