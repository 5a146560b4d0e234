"""CLI for serving: serve, keys, deploy traffic, predictions query|stats, predict (batch)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from strataml.cli._common import JsonOpt, WorkspaceOpt, open_workspace
from strataml.cli._output import console, emit, kv, table
from strataml.errors import StrataError

keys_app = typer.Typer(help="Create, list and revoke API keys for the gateway.", no_args_is_help=True)
deploy_app = typer.Typer(help="Deployments: traffic between model versions.", no_args_is_help=True)
predictions_app = typer.Typer(help="The prediction log: query and summarise served predictions.", no_args_is_help=True)


def serve(
    host: Annotated[str, typer.Option(help="address to bind (loopback unless told otherwise)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(help="worker processes")] = 1,
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="model to load before accepting traffic (repeatable)")] = None,
    rate: Annotated[float, typer.Option(help="default requests per second per key and model (0: unlimited)")] = 1000.0,
    burst: Annotated[float, typer.Option(help="default bucket size per key and model")] = 2000.0,
    concurrency: Annotated[int, typer.Option(help="requests in flight before answering 503")] = 512,
    timeout_ms: Annotated[float, typer.Option(help="default per-request deadline in ms")] = 2000.0,
    max_body: Annotated[int, typer.Option(help="largest accepted body in bytes")] = 1 << 20,
    max_header_bytes: Annotated[int, typer.Option(help="largest request line and headers in bytes (431 beyond)")] = 16 * 1024,
    max_headers: Annotated[int, typer.Option(help="most headers in a request (431 beyond)")] = 100,
    header_timeout: Annotated[float, typer.Option(help="seconds to receive a request's headers (408 after)")] = 10.0,
    body_timeout: Annotated[float, typer.Option(help="seconds to receive a request's body once its headers arrived (408 after)")] = 30.0,
    max_batch: Annotated[int, typer.Option(help="largest coalesced model call in rows")] = 64,
    max_wait_ms: Annotated[float, typer.Option(help="longest wait for a batch to fill, in ms")] = 0.0,
    cache: Annotated[str | None, typer.Option(help="response cache URL: memory:// (default) or redis://…")] = None,
    ratelimit: Annotated[str | None, typer.Option(help="rate-limit store URL (default: the online store)")] = None,
    ratelimit_fail: Annotated[str, typer.Option(help="when the rate-limit store fails: 'open' limits per process, 'closed' answers 503")] = "open",
    backend_timeout_ms: Annotated[float, typer.Option(help="longest wait for a network backend (Redis) call, in ms")] = 500.0,
    trusted_proxy: Annotated[list[str] | None, typer.Option(help="address whose X-Forwarded-For is trusted (repeatable)")] = None,
    fsync: Annotated[bool, typer.Option(
        "--fsync/--no-fsync",
        help="answer a prediction once its log record is flushed to disk (default); --no-fsync answers once the log's "
             "writer has written it: it survives a crash of the gateway but not of the machine",
    )] = True,
    log_level: Annotated[str, typer.Option(help="log level")] = "info",
    workspace: WorkspaceOpt = None,
) -> None:
    """Run the HTTP gateway (uvicorn), with the dashboard at /ui; SIGTERM drains requests in flight before exiting."""
    import uvicorn

    if ratelimit_fail not in ("open", "closed"):
        raise StrataError(f"--ratelimit-fail {ratelimit_fail!r} is neither 'open' nor 'closed'", hint="use --ratelimit-fail open or --ratelimit-fail closed")
    ws = open_workspace(workspace)
    ws.catalog  # noqa: B018 - migrate once before the workers start
    _check_preload(ws, list(model or []))
    edge = {"max_header_bytes": max_header_bytes, "max_headers": max_headers, "header_timeout_s": header_timeout, "body_timeout_s": body_timeout}
    spec = {
        "workspace": str(ws.root), "preload": list(model or []), "rate": rate or None, "burst": burst if rate else None,
        "concurrency": concurrency, "timeout_ms": timeout_ms, "max_body_bytes": max_body, "max_batch": max_batch,
        "max_wait_ms": max_wait_ms, "cache_url": cache, "ratelimit_url": ratelimit, "trusted_proxies": list(trusted_proxy or []),
        "audit_fsync": fsync, "edge": edge,
        "ratelimit_fail_open": ratelimit_fail != "closed", "backend_timeout_ms": backend_timeout_ms,
    }
    os.environ["STRATA_SERVE_SPEC"] = json.dumps(spec)
    if workers > 1:
        mp = ws.state_dir / "metrics" / str(os.getpid())
        mp.mkdir(parents=True, exist_ok=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(mp)
    from strataml.serving import EdgeLimits, EdgeProtocol, log_config

    EdgeProtocol.limits = EdgeLimits(max_header_bytes, max_headers, header_timeout, body_timeout)  # the workers read them from STRATA_SERVE_SPEC
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(f"[yellow]binding to {host}: the gateway is reachable from other machines[/]")
    uvicorn.run(
        "strataml.cli._dashboard:gateway_with_dashboard", factory=True, host=host, port=port, workers=workers,
        http=EdgeProtocol, log_level=log_level, access_log=False, proxy_headers=False, forwarded_allow_ips="", timeout_graceful_shutdown=30,
        log_config=log_config(log_level),
    )


def _check_preload(ws: Any, names: list[str]) -> None:
    """Load every ``--model`` once before the server starts: an unknown or tampered model
    is a clear error and a non-zero exit, not a traceback from the workers' startup."""
    from strataml.errors import IntegrityError, StrataError
    from strataml.serving import RegistryModels, get_traffic

    models = RegistryModels(ws)
    for name in names:
        traffic = get_traffic(ws.catalog, name)
        ref = traffic.champion if traffic is not None else "champion"
        try:
            models.get(name, ref)
        except IntegrityError as exc:
            raise StrataError(f"cannot serve model {name}@{ref}: {exc.message}", hint=exc.hint) from None
        except StrataError as exc:
            raise StrataError(f"cannot serve model {name}@{ref}: {exc.message}", hint=exc.hint or f"'strata models show {name}'") from None


@keys_app.command("create")
def keys_create(
    scope: Annotated[list[str], typer.Option("--scope", "-s", help="predict:NAME, predict:*, read (the dashboard) or admin (repeatable)")],
    name: Annotated[str | None, typer.Option(help="a label for the key")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a key; it is printed once and stored only as a hash."""
    from strataml.serving import create_key

    ws = open_workspace(workspace)
    rec, secret = create_key(ws.catalog, scope, name)
    out = {"id": rec.id, "key": secret, "scopes": list(rec.scopes)}

    def human(o: dict[str, Any]) -> None:
        console.print(f"key [bold]{o['id']}[/] ({', '.join(o['scopes'])}):\n  {o['key']}\n[yellow]store it now: it is not shown again[/]")

    emit(out, as_json, human)


@keys_app.command("list")
def keys_list(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Every key (ids and scopes; secrets are never stored)."""
    from strataml.serving import list_keys

    ws = open_workspace(workspace)
    rows = [k.to_dict() for k in list_keys(ws.catalog)]
    emit(rows, as_json, lambda r: table("API keys", [{**x, "scopes": ", ".join(x["scopes"])} for x in r]))


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="the key's id")], workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Revoke a key; gateways refuse it from their next request on."""
    from strataml.serving import revoke_key

    ws = open_workspace(workspace)
    emit(revoke_key(ws.catalog, key_id).to_dict(), as_json, lambda d: console.print(f"revoked key {d['id']}"))


@deploy_app.command("traffic")
def deploy_traffic(
    name: Annotated[str, typer.Argument(help="deployment (model) name")],
    champion: Annotated[str | None, typer.Option(help="alias or version serving most traffic")] = None,
    canary: Annotated[str | None, typer.Option(help="canary as REF:WEIGHT (e.g. challenger:0.1); 'none' removes it")] = None,
    ab: Annotated[list[str] | None, typer.Option(help="A/B variant REF:WEIGHT (repeatable); 'none' removes the split")] = None,
    shadow: Annotated[str | None, typer.Option(help="alias or version mirrored in shadow; 'none' removes it")] = None,
    rate: Annotated[float | None, typer.Option(help="requests per second per key")] = None,
    burst: Annotated[float | None, typer.Option(help="bucket size per key")] = None,
    cache_ttl: Annotated[float | None, typer.Option(help="response cache TTL in seconds (0: off)")] = None,
    default: Annotated[str | None, typer.Option(help="declared default prediction (JSON), last fallback")] = None,
    timeout_ms: Annotated[float | None, typer.Option(help="per-request deadline in ms")] = None,
    runtime: Annotated[str | None, typer.Option(help="native, onnx or onnx-int8: serve each version's native artifact or its ONNX export")] = None,
    unknown_entity: Annotated[str | None, typer.Option(help="an entity the online store does not know: answer, degrade (answer marked degraded) or refuse (422)")] = None,
    reason: Annotated[str | None, typer.Option(help="why (recorded in the event)")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a deployment's traffic; running gateways apply it without a restart."""
    from strataml.errors import ConfigError
    from strataml.serving import RegistryModels, get_traffic, set_traffic, traffic_check

    ws = open_workspace(workspace)

    def variant(spec: str) -> dict[str, Any]:
        ref, _, w = spec.rpartition(":")
        try:
            return {"ref": ref, "weight": float(w)}
        except ValueError:
            raise ConfigError(f"invalid variant {spec!r}", hint="use REF:WEIGHT, e.g. challenger:0.1") from None

    changes: dict[str, Any] = {}
    if champion is not None:
        changes["champion"] = champion
    if canary is not None:
        changes["canary"] = None if canary == "none" else variant(canary)
    if ab:
        changes["ab"] = [] if ab == ["none"] else [variant(v) for v in ab]
    if shadow is not None:
        changes["shadow"] = None if shadow == "none" else shadow
    for k, v in (("rate", rate), ("burst", burst), ("cache_ttl", cache_ttl), ("timeout_ms", timeout_ms), ("runtime", runtime), ("unknown_entity", unknown_entity)):
        if v is not None:
            changes[k] = v
    if default is not None:
        try:
            changes["default"] = json.loads(default)
        except json.JSONDecodeError:
            raise ConfigError(f"--default {default!r} is not JSON", hint="e.g. --default 0.0") from None
    check = traffic_check(ws, RegistryModels(ws))
    t = set_traffic(ws.catalog, name, changes, reason=reason, check=check) if changes else get_traffic(ws.catalog, name)
    doc = {"name": name, "traffic": None if t is None else t.model_dump(mode="json")}
    emit(doc, as_json, lambda d: kv(f"deployment {name}", d["traffic"] or {}))


@deploy_app.command("delete")
def deploy_delete(
    name: Annotated[str, typer.Argument(help="deployment name")],
    reason: Annotated[str | None, typer.Option(help="why (recorded in the event)")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete a deployment (recorded as an event); its model then serves its champion alone."""
    from strataml.serving import delete_traffic

    ws = open_workspace(workspace)
    old = delete_traffic(ws.catalog, name, reason=reason)
    emit({"name": name, "deleted": True, "traffic": old.model_dump(mode="json")}, as_json, lambda d: console.print(f"deleted deployment {name}"))


@predictions_app.command("query")
def predictions_query(
    model: Annotated[str | None, typer.Option(help="only this model")] = None,
    since: Annotated[str | None, typer.Option(help="only at or after this time (ISO 8601)")] = None,
    limit: Annotated[int, typer.Option(help="newest N")] = 100,
    mode: Annotated[str | None, typer.Option(help="live or shadow")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Logged predictions, newest first."""
    from strataml.serving import prediction_log_dir, query_predictions

    ws = open_workspace(workspace)
    rows = query_predictions(prediction_log_dir(ws.state_dir), model, since, limit, mode)
    cols = ["ts", "request_id", "model", "version", "instance", "output", "latency_ms", "degraded", "mode"]
    emit(rows, as_json, lambda r: table("predictions", r, cols))


@predictions_app.command("stats")
def predictions_stats(
    model: Annotated[str | None, typer.Option(help="only this model")] = None,
    since: Annotated[str | None, typer.Option(help="only at or after this time (ISO 8601)")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Counts by version, latency p50/p95/p99 (ms) and degraded answers."""
    from strataml.serving import prediction_log_dir, prediction_stats

    ws = open_workspace(workspace)
    emit(prediction_stats(prediction_log_dir(ws.state_dir), model, since), as_json, lambda d: kv(f"predictions of {model or 'every model'}", d))


def predict(
    name: Annotated[str, typer.Argument(help="model name")],
    input: Annotated[str, typer.Option("--input", "-i", help="DATASET[@VERSION] or a Parquet file/folder")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Parquet file to write")],
    ref: Annotated[str, typer.Option(help="alias or version to score with")] = "champion",
    engine: Annotated[str, typer.Option(help="local or ray")] = "local",
    batch_rows: Annotated[int, typer.Option(help="rows per batch (bounds memory)")] = 65_536,
    id_column: Annotated[str | None, typer.Option(help="column to write as the row id (default: the dataset key, else the row number)")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Batch-score a dataset or Parquet input with the same feature and model code as the gateway."""
    from strataml.serving import score

    ws = open_workspace(workspace)
    report = score(ws, name, input, output, ref=ref, engine=engine, batch_rows=batch_rows, id_column=id_column, progress=not as_json)
    emit(report, as_json, lambda d: kv(f"scored {name}", d))
