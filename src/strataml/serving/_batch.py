"""Batch scoring: a whole dataset (or Parquet input) through the serving model code.

Parquet is streamed in bounded record batches (``batch_rows`` at a time), each batch
goes through the same :class:`~strataml.serving._servable.Servable` the gateway uses
(stored features looked up through the same code for models with feature views),
and the output is written incrementally: the row id, the model name and version, and
the prediction. ``engine="ray"`` runs the same per-batch function on Ray Data, on a
local or remote cluster (``STRATA_RAY`` / the ``ray`` setting).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from strataml.errors import ConfigError, MissingExtra, NotFound, StrataError
from strataml.serving._servable import ModelProvider, RegistryModels, Servable, normalise
from strataml.spine import AtomicParquet, Workspace


def _input_files(ws: Workspace, source: str) -> tuple[list[str], str | None]:
    """Parquet files of ``source`` (a path, or a dataset reference) and its key column."""
    p = Path(source)
    if p.exists():
        files = sorted(str(f) for f in p.rglob("*.parquet")) if p.is_dir() else [str(p)]
        if not files:
            raise NotFound(f"no Parquet files under {p}", hint="pass a Parquet file, a folder of them, or DATASET[@VERSION]")
        return files, None
    from strataml.data import get_version

    try:
        v = get_version(ws, source)
    except StrataError as exc:
        raise NotFound(f"{source!r} is neither a Parquet path nor a dataset: {exc.message}", hint="pass a Parquet file, a folder of them, or DATASET[@VERSION]") from None
    # the contract the version was committed under: definitions.py may have moved on since
    contract = v.contract
    key = contract.key_columns[0] if contract and len(contract.key_columns) == 1 else None
    return [str(x) for x in v.paths()], key


def predict_batch(s: Servable, table: pa.Table, ws: Workspace | None = None) -> list[Any] | np.ndarray:
    """Predictions for one Arrow batch through the serving code path."""
    if s.views:
        if ws is None:
            raise ConfigError(f"model {s.ref} reads feature views; scoring it needs a workspace")
        from strataml.serving._lookup import lookup_features

        return s.predict(lookup_features(ws, s, table.to_pylist()))
    if s.predict_table is not None:
        raw = s.predict_table(table)
        if s.output != "multiclass":
            arr = np.asarray(raw.to_numpy() if hasattr(raw, "to_numpy") else raw, dtype=np.float64)
            return arr[:, -1] if (arr.ndim == 2 and s.output == "binary") else arr.reshape(table.num_rows)
        return normalise(raw, s.output, s.classes, table.num_rows)
    return s.predict(table.to_pylist())


def _prediction_array(s: Servable, preds: list[Any] | np.ndarray) -> pa.Array:
    if s.output == "multiclass":
        return pa.array([list(p.items()) for p in preds], type=pa.map_(pa.string(), pa.float64()))
    return pa.array(np.asarray(preds, dtype=np.float64), type=pa.float64())


def _output_table(s: Servable, batch: pa.Table, preds: Any, id_column: str | None, offset: int) -> pa.Table:
    n = batch.num_rows
    ids = batch.column(id_column) if id_column else pa.array(np.arange(offset, offset + n, dtype=np.int64))
    return pa.table({
        "row_id": ids,
        "model": pa.array([s.name] * n, type=pa.string()) if n else pa.array([], type=pa.string()),
        "version": pa.array(np.full(n, s.version, dtype=np.int64)),
        "prediction": _prediction_array(s, preds),
    })


def score(
    ws: Workspace,
    name: str,
    source: str,
    output: str | Path,
    *,
    ref: str = "champion",
    engine: str = "local",
    batch_rows: int = 65_536,
    id_column: str | None = None,
    progress: bool = False,
    models: ModelProvider | None = None,
) -> dict[str, Any]:
    """Score ``source`` with ``name@ref`` into the Parquet file ``output``; returns a report."""
    t0 = time.perf_counter()
    if batch_rows < 1:
        raise ConfigError("--batch-rows must be at least 1")
    provider = models if models is not None else RegistryModels(ws)
    s = provider.get(name, ref)
    files, key = _input_files(ws, source)
    dataset = pads.dataset(files, format="parquet")
    names = dataset.schema.names
    id_col = id_column or (key if key in names else None)
    if id_column and id_column not in names:
        raise ConfigError(f"--id-column {id_column!r} is not in the input (columns: {', '.join(names)})")
    needed = list(s.entity_keys) + list(s.request_fields) if s.views else s.feature_names()
    missing = [c for c in needed if c not in names]
    if missing:
        raise ConfigError(f"the input lacks column(s) {missing} that {s.ref} needs", hint=f"the model takes {', '.join(needed)}")
    columns = list(dict.fromkeys(needed + ([id_col] if id_col else [])))
    out = Path(output)
    if engine == "ray":
        rows = _score_ray(ws, s, files, out, columns, id_col, batch_rows)
    elif engine == "local":
        rows = _score_local(ws, s, dataset, out, columns, id_col, batch_rows, progress)
    else:
        raise ConfigError(f"unknown engine {engine!r}", hint="use --engine local or --engine ray")
    seconds = time.perf_counter() - t0
    return {"model": name, "version": s.version, "input": source, "output": str(out), "rows": rows, "engine": engine,
            "seconds": round(seconds, 3), "rows_per_second": round(rows / seconds, 1) if seconds > 0 else None}


def _score_local(ws: Workspace, s: Servable, dataset: pads.Dataset, out: Path, columns: list[str], id_col: str | None, batch_rows: int, progress: bool) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    total = dataset.count_rows()
    done = 0
    bar = Progress(TextColumn("scoring"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,} rows"), TimeRemainingColumn(), disable=not progress, transient=True)
    with AtomicParquet(out) as output, bar, ThreadPoolExecutor(max_workers=1, thread_name_prefix="strata-score") as pool:
        task = bar.add_task("score", total=total)
        # a two-stage pipeline: batch i is predicted in a worker thread while batch i+1 is
        # read and batch i-1 is written (the model and Arrow both release the GIL)
        pending: tuple[pa.Table, int, Future[Any]] | None = None
        for rb in dataset.to_batches(columns=columns, batch_size=batch_rows, batch_readahead=2, fragment_readahead=1):
            batch = pa.Table.from_batches([rb])
            if batch.num_rows == 0:
                continue
            nxt = (batch, done, pool.submit(predict_batch, s, batch, ws))
            done += batch.num_rows
            if pending is not None:
                output.write(_scored(s, pending, id_col))
                bar.update(task, advance=pending[0].num_rows)
            pending = nxt
        if pending is not None:
            output.write(_scored(s, pending, id_col))
            bar.update(task, advance=pending[0].num_rows)
        if output.rows == 0:
            output.write(_output_table(s, pa.table({c: pa.array([], type=dataset.schema.field(c).type) for c in columns}), [], id_col, 0))
    return done


def _scored(s: Servable, item: tuple[pa.Table, int, Future[Any]], id_col: str | None) -> pa.Table:
    batch, offset, fut = item
    return _output_table(s, batch, fut.result(), id_col, offset)


_WORKER_WORKSPACES: dict[str, Workspace] = {}


def _worker_workspace(root: str) -> Workspace:
    """The workspace at ``root``, opened once per Ray worker process."""
    if root not in _WORKER_WORKSPACES:
        _WORKER_WORKSPACES[root] = Workspace.open(root)
    return _WORKER_WORKSPACES[root]


def _score_ray(ws: Workspace, s: Servable, files: list[str], out: Path, columns: list[str], id_col: str | None, batch_rows: int) -> int:
    try:
        import ray
    except ImportError as exc:
        raise MissingExtra("ray", "ray", "batch scoring with --engine ray") from exc
    if not ray.is_initialized():
        address = ws.settings.ray or os.environ.get("STRATA_RAY")
        if address:
            ray.init(address=address, ignore_reinit_error=True, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(num_cpus=os.cpu_count() or 1, ignore_reinit_error=True, include_dashboard=False, log_to_driver=False)
    if id_col is None:
        raise ConfigError("scoring with --engine ray needs a row id column", hint="pass --id-column COLUMN (the dataset key is used when it has one)")
    servable = s
    # Ray reads the files itself, one task per row group, rather than through
    # ``ray.data.read_parquet``: a dataset version's files are content-addressed (no
    # ``.parquet`` name), and Ray's reader filters paths by extension (in Ray 2.57+ even
    # with ``file_extensions=None``, ray-project/ray#65557)
    parts = [{"path": f, "row_group": g} for f in files for g in range(pq.read_metadata(f).num_row_groups)]

    # a model over feature views looks its stored features up in the workspace's online
    # store from the worker (which opens the workspace by its root: a shared folder, or
    # server URLs in its strata.toml for a remote cluster)
    root = str(ws.root) if s.views else None

    def fn(batch: pa.Table) -> Iterator[pa.Table]:
        worker_ws = _worker_workspace(root) if root else None
        for path, group in zip(batch.column("path").to_pylist(), batch.column("row_group").to_pylist(), strict=True):
            with pq.ParquetFile(path) as pf:
                for rb in pf.iter_batches(batch_size=batch_rows, row_groups=[group], columns=columns):
                    table = pa.Table.from_batches([rb])
                    yield _output_table(servable, table, predict_batch(servable, table, worker_ws), id_col, 0)

    if not parts:
        raise StrataError(f"no rows to score in {len(files)} input file(s)")
    ds = ray.data.from_items(parts, override_num_blocks=len(parts))
    scored = ds.map_batches(fn, batch_format="pyarrow", batch_size=1)
    with AtomicParquet(out) as output:
        for b in scored.iter_batches(batch_format="pyarrow", batch_size=batch_rows):
            assert isinstance(b, pa.Table)
            output.write(b)
        if output.rows == 0:
            raise StrataError(f"Ray produced no rows from {len(files)} input file(s)")
    return output.rows
