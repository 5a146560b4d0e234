"""CLI for the models layer: ``strata train``, ``strata runs …`` and ``strata models …``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from strataml.cli._common import JsonOpt, WorkspaceOpt, open_workspace
from strataml.cli._output import console, emit, kv, table

runs_app = typer.Typer(help="List, show and compare tracked runs.", no_args_is_help=True)
models_app = typer.Typer(help="The model registry: versions, aliases, rollback, lineage.", no_args_is_help=True)


def train(
    name: Annotated[str, typer.Argument(help="model name declared in definitions.py")],
    tune: Annotated[int | None, typer.Option("--tune", help="run N Optuna trials first, as child runs (default: the model's tune.trials; 0 skips tuning)", min=0)] = None,
    engine: Annotated[str, typer.Option("--engine", help="where tuning trials run: local or ray")] = "local",
    promote: Annotated[bool, typer.Option("--promote", help="make the new version champion when it passes the gate")] = False,
    seed: Annotated[int | None, typer.Option("--seed", help="random seed (default: the model's)")] = None,
    profile: Annotated[bool, typer.Option("--profile/--no-profile", help="store the new version's reference profile for drift checks")] = True,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Build the training set, split, fit, evaluate, gate and register a model version (and
    store its reference profile, which monitoring would otherwise build on first use)."""
    from strataml.models import train as run_train

    ws = open_workspace(workspace)
    if as_json:
        result = run_train(ws, name, tune=tune, engine=engine, promote=promote, seed=seed)
    else:
        with console.status(f"training {name}…"):
            result = run_train(ws, name, tune=tune, engine=engine, promote=promote, seed=seed)
    if profile and result.version is not None:
        from strataml.monitoring import profile as build_profile

        build_profile(ws, f"{name}@v{result.version}")
    emit(result.to_dict(), as_json, _print_train)
    if not result.gate["passed"]:
        raise typer.Exit(1)


def _print_train(r: dict[str, Any]) -> None:
    if r["version"] is not None:
        moved = ", ".join(f"{a} → v{v}" for a, v in r["aliases"].items())
        console.print(f"[green]registered {r['model']} v{r['version']}[/] ({moved})  run {r['run']}")
    else:
        console.print(f"[red]gate failed: nothing registered[/]  run {r['run']}")
        for reason in r["gate"]["reasons"]:
            console.print(f"  - {reason}")
    champ = (r.get("champion") or {}).get("metrics") or {}
    table("holdout metrics", [{"metric": k, "value": f"{v:.5f}", "champion": f"{champ[k]:.5f}" if k in champ else ""} for k, v in r["metrics"].items()])
    if r.get("tuning"):
        t = r["tuning"]
        console.print(f"tuning: {t['trials']} trials on {t['engine']}, best {t['metric']} {t['best_value']:.5f} (trial {t['best_trial']})")
    console.print("timings: " + "  ".join(f"{k[:-2]} {v:.2f}s" for k, v in r["timings"].items()))


@runs_app.command("list")
def runs_list(
    name: Annotated[str | None, typer.Option("--name", help="only runs of this model / experiment")] = None,
    metric: Annotated[list[str] | None, typer.Option("--metric", "-m", help="metric filter, e.g. 'roc_auc>=0.8' (repeatable)")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="parameter filter, e.g. 'num_leaves=31' (repeatable)")] = None,
    status: Annotated[str | None, typer.Option("--status", help="running, finished or failed")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="train, trial or custom")] = None,
    parent: Annotated[str | None, typer.Option("--parent", help="only child runs of this run")] = None,
    sort: Annotated[str | None, typer.Option("--sort", help="order by this metric (best first for its direction)")] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="at most N runs")] = 100,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Runs, newest first, filtered by metrics and parameters."""
    from strataml.models import METRICS, higher_is_better, list_runs, resolve_run_id

    ws = open_workspace(workspace)
    ascending = sort is not None and sort in METRICS and not higher_is_better(sort)
    rows = list_runs(
        ws, name=name, metric_filters=metric, param_filters=param, status=status, kind=kind,
        parent=resolve_run_id(ws, parent) if parent else None, order_by=sort, ascending=ascending, limit=limit,
    )
    emit(rows, as_json, _print_runs)


def _print_runs(rows: list[dict[str, Any]]) -> None:
    keys = sorted({k for r in rows for k in r["metrics"]})[:6]
    table(
        f"runs ({len(rows)})",
        [
            {"id": r["id"][:12], "name": r["name"], "kind": r["kind"], "status": r["status"], "started": (r["started_at"] or "")[:19],
             **{k: f"{r['metrics'][k]:.4f}" if k in r["metrics"] else "" for k in keys}}
            for r in rows
        ],
        ["id", "name", "kind", "status", "started", *keys],
    )


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(help="run id (or a unique prefix of it)")],
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One run: params, metrics (with history), artifacts, lineage, timings, children."""
    from strataml.models import get_run

    ws = open_workspace(workspace)
    emit(get_run(ws, run_id), as_json, lambda d: kv(f"run {d['id']}", {k: v for k, v in d.items() if k != "history"}))


@runs_app.command("compare")
def runs_compare(
    run_ids: Annotated[list[str], typer.Argument(help="two or more run ids (or unique prefixes)")],
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Runs side by side: every parameter and metric, with what differs."""
    from strataml.models import compare_runs

    ws = open_workspace(workspace)
    result = compare_runs(ws, run_ids)

    def human(d: dict[str, Any]) -> None:
        ids = [r["id"][:12] for r in d["runs"]]
        rows = [{"": f"param {k}", **dict(zip(ids, map(str, v), strict=True))} for k, v in d["params"].items()]
        rows += [{"": f"metric {k}", **dict(zip(ids, ("" if x is None else f"{x:.5f}" for x in v), strict=True))} for k, v in d["metrics"].items()]
        table("compare", rows, ["", *ids])
        console.print("differs: " + ", ".join(d["differs"]))

    emit(result, as_json, human)


@models_app.command("list")
def models_list(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Registered models with their latest version and aliases."""
    from strataml.models import list_models

    ws = open_workspace(workspace)
    rows = list_models(ws)
    emit(rows, as_json, lambda r: table("models", [
        {**x, "versions": len(x["versions"]), "aliases": ", ".join(f"{a}=v{v}" for a, v in x["aliases"].items())} for x in r
    ]))


@models_app.command("show")
def models_show(
    name: Annotated[str, typer.Argument(help="model name")],
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A model's versions (sha256, metrics, run, exports) and aliases."""
    from strataml.models import get_model

    ws = open_workspace(workspace)

    def human(d: dict[str, Any]) -> None:
        by_version: dict[int, list[str]] = {}
        for a, v in d["aliases"].items():
            by_version.setdefault(v, []).append(a)
        table(
            f"model {d['name']}",
            [
                {"version": f"v{v['version']}", "aliases": ", ".join(by_version.get(v["version"], [])), "sha256": v["sha256"][:16],
                 "metrics": ", ".join(f"{k}={x:.4f}" for k, x in v["metrics"].items()), "run": (v["run"] or "")[:12], "created": v["created_at"][:19],
                 "exports": ", ".join(f"onnx{'-' + e['quantization'] if e['quantized'] else ''} {e['sha256'][:12]}" for e in v.get("exports", []))}
                for v in d["versions"]
            ],
        )

    emit(get_model(ws, name), as_json, human)


@models_app.command("export")
def models_export(
    spec: Annotated[str, typer.Argument(help="NAME, NAME@VERSION (3 or v3) or NAME@ALIAS (default: the champion)")],
    fmt: Annotated[str, typer.Option("--format", help="export format (onnx)")] = "onnx",
    quantize: Annotated[str | None, typer.Option("--quantize", help="int8: dynamic int8 quantisation of weight matrices (neural networks)")] = None,
    tolerance: Annotated[float | None, typer.Option("--tolerance", help="largest accepted |export - native| on the sample (default 1e-4; 0.05 with --quantize)", min=0)] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Convert a registered version to ONNX, check its predictions against the native model, store and record it."""
    from strataml.models import export_model

    ws = open_workspace(workspace)
    name, _, ref = spec.partition("@")
    ref = ref or "champion"
    if as_json:
        out = export_model(ws, name, ref, format=fmt, quantize=quantize, tolerance=tolerance)
    else:
        with console.status(f"exporting {spec} to {fmt}…"):
            out = export_model(ws, name, ref, format=fmt, quantize=quantize, tolerance=tolerance)

    def human(d: dict[str, Any]) -> None:
        what = f"{d['model']} v{d['version']} → {d['format']}{' (' + d['quantization'] + ')' if d['quantized'] else ''}"
        console.print(f"[green]exported {what}[/]{'' if d['created'] else ' (already exported)'}  sha256 {d['sha256']}")
        sizes = f"size {d['size']:,} B (native {d['size_native']:,} B"
        sizes += f", unquantised ONNX {d['size_unquantized']:,} B)" if d["quantized"] else ")"
        console.print(sizes)
        diff = f"max |onnx - native| {d['max_abs_diff']:.3g} on {d['sample']['rows']} rows of {d['sample']['source']} (tolerance {d['tolerance']:g})"
        if d["quantized"]:
            diff += f"; before quantisation {d['max_abs_diff_unquantized']:.3g}"
        console.print(diff)

    emit(out, as_json, human)


@models_app.command("alias")
def models_alias(
    name: Annotated[str, typer.Argument(help="model name")],
    alias: Annotated[str, typer.Argument(help="alias, e.g. champion or challenger")],
    version: Annotated[str, typer.Argument(help="version number (3 or v3)")],
    reason: Annotated[str, typer.Option("--reason", help="why (recorded in the event log)")] = "",
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Point an alias at a version (recorded as an event with who, when and why)."""
    from strataml.models import resolve_version, set_alias

    ws = open_workspace(workspace)
    number = resolve_version(ws, name, version)
    out = set_alias(ws, name, alias, number, reason=reason)
    emit(out, as_json, lambda d: console.print(f"{d['model']}@{d['alias']}: v{d['from'] or '—'} → v{d['to']}"))


@models_app.command("rollback")
def models_rollback(
    name: Annotated[str, typer.Argument(help="model name")],
    alias: Annotated[str, typer.Option("--alias", help="the alias to move back")] = "champion",
    reason: Annotated[str, typer.Option("--reason", help="why (recorded in the event log)")] = "",
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Move the champion (or --alias) back to the version it pointed at before."""
    from strataml.models import rollback

    ws = open_workspace(workspace)
    out = rollback(ws, name, alias=alias, reason=reason)
    emit(out, as_json, lambda d: console.print(f"{d['model']}@{d['alias']}: v{d['from']} → v{d['to']} (rolled back)"))


@models_app.command("approve")
def models_approve(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION of the canary waiting for approval, e.g. fraud@3")],
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Approve the promotion of a canary (the closed loop's optional human step): promoted
    at once when its checks have passed, else as soon as they do."""
    from strataml.pipelines import approve

    ws = open_workspace(workspace)
    run = approve(ws, ref)

    def human(d: dict[str, Any]) -> None:
        console.print(f"{d['model']} v{d['canary_version']}: approved by {d['approved_by']}; loop {d['id']} is {d['state']}")

    emit(run.to_dict(), as_json, human)


@models_app.command("lineage")
def models_lineage(
    name: Annotated[str, typer.Argument(help="model name")],
    ref: Annotated[str, typer.Argument(help="alias or version")] = "champion",
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Where a version came from: run, training set, views, datasets, code and packages."""
    from strataml.models import model_lineage

    ws = open_workspace(workspace)
    emit(model_lineage(ws, name, ref), as_json, lambda d: kv(f"lineage of {d['model']} v{d['version']}", d))
