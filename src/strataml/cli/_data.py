"""CLI for the spine and the data layer: init, ingest, datasets, contracts, events."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from strataml.cli._common import JsonOpt, WorkspaceOpt, open_workspace
from strataml.cli._output import console, emit, kv, table

datasets_app = typer.Typer(help="List, show, diff and inspect versioned datasets.", no_args_is_help=True)
contracts_app = typer.Typer(help="Draft and list data contracts.", no_args_is_help=True)


def init(
    directory: Annotated[Path, typer.Argument(help="folder to make a workspace")] = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Create a workspace: strata.toml, an example definitions.py and .strata/."""
    from strataml.spine import Workspace

    ws = Workspace.init(directory)
    out = {"workspace": str(ws.root), "catalog": ws.catalog.safe_url, "artifacts": ws.artifacts.url}
    emit(out, as_json, lambda o: console.print(f"[green]workspace ready[/] at {o['workspace']}"))


def ingest(
    source: Annotated[str, typer.Argument(help="file, glob, fsspec URL, database URL (with --query) or http(s) URL")],
    contract: Annotated[str, typer.Option("--contract", "-c", help="contract name declared in definitions.py")],
    dataset: Annotated[str | None, typer.Option("--dataset", "-d", help="dataset name (default: the contract's name)")] = None,
    query: Annotated[str | None, typer.Option("--query", "-q", help="SQL query for a database source")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="csv, jsonl or parquet (default: from the extension)")] = None,
    delimiter: Annotated[str | None, typer.Option("--delimiter", help="CSV delimiter (default: detected)")] = None,
    encoding: Annotated[str | None, typer.Option("--encoding", help="CSV encoding (utf-8, utf-16, latin-1)")] = None,
    allow_breaking: Annotated[bool, typer.Option("--allow-breaking", help="accept an incompatible contract change")] = False,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate a source against a contract and add its good rows as a new dataset version."""
    from strataml.data import SourceSpec
    from strataml.data import ingest as run_ingest

    ws = open_workspace(workspace)
    spec = SourceSpec(uri=source, query=query, format=fmt, delimiter=delimiter, encoding=encoding)
    report = run_ingest(ws, spec, contract=contract, dataset=dataset, allow_breaking=allow_breaking)
    emit(report.to_dict(), as_json, _print_report)


def _print_report(r: dict[str, Any]) -> None:
    status = {"created": f"[green]created {r['dataset']}@{r['version']}[/]", "unchanged": "[yellow]nothing new[/]"}
    console.print(f"{status.get(r['status'], r['status'])}  from {r['source']}  ({r['seconds']}s)")
    console.print(
        f"  read {r['rows_read']:,}  accepted {r['accepted']:,}  rejected {r['rejected']:,}  duplicates {r['duplicates']:,}"
    )
    if r["rejected_by_rule"]:
        table("quarantine by rule", [{"rule": k, "rows": v} for k, v in r["rejected_by_rule"].items()])
        console.print(f"  quarantine: {r['quarantine']}")


@datasets_app.command("list")
def datasets_list(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Every dataset with its latest version."""
    from strataml.data import list_datasets

    ws = open_workspace(workspace)
    rows = list_datasets(ws.catalog)
    emit(rows, as_json, lambda r: table("datasets", r, ["name", "latest", "rows", "kind", "updated_at"]))


@datasets_app.command("show")
def datasets_show(
    ref: Annotated[str, typer.Argument(help="NAME, NAME@latest or NAME@v3")],
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One version: rows, hash, schema, contract, parent and lineage."""
    from strataml.data import get_version

    ws = open_workspace(workspace)
    emit(get_version(ws, ref).to_dict(), as_json, lambda d: kv(f"{d['name']}@{d['version']}", d))


@datasets_app.command("versions")
def datasets_versions(name: str, workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Every version of one dataset."""
    from strataml.data import list_versions

    ws = open_workspace(workspace)
    rows = [
        {"version": f"v{v.number}", "rows": v.rows, "sha256": v.sha256[:16], "contract_version": v.contract_version, "created_at": v.created_at.isoformat()}
        for v in list_versions(ws, name)
    ]
    emit(rows, as_json, lambda r: table(f"{name} versions", r))


@datasets_app.command("diff")
def datasets_diff(a: str, b: str, workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """What changed between two versions of a dataset."""
    from strataml.data import diff

    ws = open_workspace(workspace)
    emit(diff(ws, a, b), as_json, lambda d: kv(f"{a} → {b}", d))


@datasets_app.command("quarantine")
def datasets_quarantine(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION (the ingest that made it) or NAME (the newest ingest)")],
    limit: Annotated[int | None, typer.Option(help="at most this many rows")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The rows an ingest rejected, each with its original fields and the rules it broke."""
    from strataml.data import quarantine_rows

    ws = open_workspace(workspace)
    rows = quarantine_rows(ws, ref, limit)

    def human(rs: list[dict[str, Any]]) -> None:
        table(f"quarantine of {ref} ({len(rs)} rows)", [{**r, "_errors": ", ".join(r["_errors"])} for r in rs[:200]])

    emit(rows, as_json, human)


@contracts_app.command("infer")
def contracts_infer(
    path: Annotated[str, typer.Argument(help="a sample file (CSV, JSON Lines or Parquet)")],
    name: Annotated[str | None, typer.Option(help="contract name (default: from the file name)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Draft a contract from a sample file, as Python to paste into definitions.py."""
    from strataml.data import infer_contract

    draft = infer_contract(path, name)
    emit(draft, as_json, lambda d: print(d["python"]))


@contracts_app.command("list")
def contracts_list(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Contracts declared in definitions.py, with their current version."""
    ws = open_workspace(workspace)
    rows = [
        {"name": c.name, "version": c.version, "columns": len(c.columns), "key": ",".join(c.key_columns), "rules": len(c.rules)}
        for c in ws.definitions.all("contract")
    ]
    emit(rows, as_json, lambda r: table("contracts", r))


def events(
    kind: Annotated[str | None, typer.Option(help="only kinds starting with this (e.g. 'dataset.')")] = None,
    subject: Annotated[str | None, typer.Option(help="only events about this subject")] = None,
    limit: Annotated[int, typer.Option(help="newest N events")] = 100,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The event log: every state change, oldest first."""
    from strataml.spine import list_events

    ws = open_workspace(workspace)
    rows = [e.to_dict() for e in list_events(ws.catalog, kind=kind, subject=subject, limit=limit)]
    emit(rows, as_json, lambda r: table("events", [{**e, "payload": str(e["payload"])[:80]} for e in r], ["id", "ts", "kind", "subject", "actor", "payload"]))


def gc(
    apply: Annotated[bool, typer.Option("--apply", help="delete what is listed (default: only list it)")] = False,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List what interrupted writes left behind (staging folders of dead processes, objects no catalog row names); --apply deletes it."""
    from strataml.spine import collect_garbage as collect

    ws = open_workspace(workspace)
    out = collect(ws, apply=apply)

    def human(o: dict[str, Any]) -> None:
        verb = "removed" if o["applied"] else "would remove"
        for e in o["staging"]:
            console.print(f"  staging  {e['path']}  ({e['bytes']:,} bytes)")
        for e in o["objects"]:
            console.print(f"  object   {e['sha256']}  ({e['bytes']:,} bytes)")
        n = len(o["staging"]) + len(o["objects"])
        console.print(f"{verb} {n} orphan(s), {o['bytes']:,} bytes" + ("" if o["applied"] or not n else "; pass --apply to delete"))

    emit(out, as_json, human)
