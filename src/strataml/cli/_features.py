"""CLI for the feature store: apply, list, show, training-set, materialize, get, check-skew."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from strataml.cli._common import JsonOpt, WorkspaceOpt, open_workspace
from strataml.cli._output import console, emit, kv, table
from strataml.errors import StrataError

features_app = typer.Typer(help="Feature views: register, build training sets, materialise, look up.", no_args_is_help=True)


@features_app.command("apply")
def apply(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Register every feature view declared in definitions.py (a changed view gets a new version)."""
    from strataml.features import apply as run_apply

    rows = run_apply(open_workspace(workspace))
    emit(rows, as_json, lambda r: table("feature views", r, ["name", "version", "status", "entity", "source"]))


@features_app.command("list")
def list_(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Registered feature views and their current versions."""
    from strataml.features import list_views

    rows = list_views(open_workspace(workspace))
    emit(rows, as_json, lambda r: table("feature views", r, ["name", "version", "entity", "source", "features", "updated_at"]))


@features_app.command("show")
def show(
    view: Annotated[str, typer.Argument(help="VIEW or VIEW@VERSION")],
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A view's definition, feature types and versions."""
    from strataml.features import show_view

    out = show_view(open_workspace(workspace), view)

    def human(o: dict[str, Any]) -> None:
        kv(f"feature view {o['name']}", {k: v for k, v in o.items() if k not in ("features", "versions")})
        table("features", o["features"], ["name", "kind", "type", "expr", "agg", "column", "window"])
        table("versions", o["versions"])

    emit(out, as_json, human)


@features_app.command("training-set")
def training_set(
    labels: Annotated[str, typer.Option("--labels", help="labels dataset, NAME or NAME@vN")],
    features: Annotated[str, typer.Option("--features", help="comma-separated views (VIEW or VIEW@VERSION)")],
    out: Annotated[str | None, typer.Option("--out", help="also write the training set to this Parquet file")] = None,
    full_names: Annotated[bool, typer.Option("--full-names", help="name feature columns VIEW__FEATURE")] = False,
    timestamp: Annotated[str | None, typer.Option("--timestamp", help="labels' time column (default: its contract's)")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Build a point-in-time correct training set and record it as a dataset version."""
    from strataml.features import build_training_set

    views = [v.strip() for v in features.split(",") if v.strip()]
    ts = build_training_set(open_workspace(workspace), labels, views, full_names=full_names, out=out, timestamp=timestamp)

    def human(o: dict[str, Any]) -> None:
        console.print(f"[green]training set {o['ref']}[/]: {o['rows']:,} rows, {len(o['feature_columns'])} features ({o['seconds']}s)")
        if out:
            console.print(f"  written to {out}")
        kv("lineage", o["lineage"])

    emit(ts.to_dict() | ({"out": out} if out else {}), as_json, human)


@features_app.command("materialize")
def materialize(
    view: Annotated[list[str] | None, typer.Option("--view", help="view to materialise (repeatable; default: all)")] = None,
    incremental: Annotated[bool, typer.Option("--incremental", help="only entities with data since the last run")] = False,
    as_of: Annotated[str | None, typer.Option("--as-of", help="compute values as of this ISO time (UTC; default: now)")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write each entity's latest feature values to the online store."""
    import datetime as dt

    from strataml.features import materialize as run

    when = None
    if as_of is not None:
        try:
            when = dt.datetime.fromisoformat(as_of)
        except ValueError:
            raise StrataError(f"--as-of {as_of!r} is not an ISO time", hint="e.g. --as-of 2026-01-31T00:00:00") from None
    out = run(open_workspace(workspace), view or None, incremental=incremental, as_of=when)
    emit(out, as_json, lambda o: table(f"materialised to {o['store']}", o["views"], ["view", "version", "status", "mode", "entities", "seconds"]))


def _parse_key(pairs: list[str]) -> dict[str, Any]:
    key: dict[str, Any] = {}
    for p in pairs:
        name, sep, value = p.partition("=")
        if not sep or not name:
            raise StrataError(f"--key {p!r} is not COLUMN=VALUE", hint="e.g. --key user_id=u1")
        key[name.strip()] = value
    return key


@features_app.command("get")
def get(
    view: Annotated[str, typer.Argument(help="feature view")],
    key: Annotated[list[str], typer.Option("--key", help="COLUMN=VALUE (repeat for multi-column keys)")],
    feature: Annotated[list[str] | None, typer.Option("--feature", help="only these features (repeatable)")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Look up one entity's online feature values (nulls when the store has none)."""
    from strataml.features import entity_key_types, get_online_features, resolve_view

    ws = open_workspace(workspace)
    k = _parse_key(key)
    for col, typ in entity_key_types(ws, view).items():  # the command line gives text; convert integer keys
        if typ is int and col in k:
            try:
                k[col] = int(k[col])
            except ValueError:
                raise StrataError(f"--key {col}={k[col]!r}: view {view!r} keys {col!r} as an integer") from None
    for name in feature or []:
        resolve_view(ws, view).feature(name)  # an unknown feature is an error naming the view's features
    values = get_online_features(ws, [view], [k])[0]
    if feature:
        values = {name: values.get(name) for name in feature}
    emit({"view": view, "key": k, "features": values}, as_json, lambda o: kv(f"{view} {k}", o["features"]))


@features_app.command("check-skew")
def check_skew(
    view: Annotated[str, typer.Argument(help="feature view")],
    sample: Annotated[int, typer.Option("--sample", min=1, help="entities to compare")] = 100,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compare online values with the offline computation at the materialisation time."""
    from strataml.features import check_skew as run

    out = run(open_workspace(workspace), view, sample=sample)

    def human(o: dict[str, Any]) -> None:
        colour = "green" if o["ok"] else "red"
        console.print(f"[{colour}]{o['view']}@{o['version']}: {len(o['mismatches'])} mismatches in {o['checked']} entities[/] (as of {o['as_of']})")
        if o["mismatches"]:
            table("mismatches", o["mismatches"])

    emit(out, as_json, human)
    if not out["ok"]:
        raise typer.Exit(1)
