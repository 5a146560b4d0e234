"""Point-in-time correct feature values, computed in DuckDB.

For a label row with key ``k`` at time ``t``:

* a row-expression feature comes from the latest source row for ``k`` whose event
  time is strictly before ``t`` and no more than the view's ``ttl`` before it
  (``t - ttl <= ts < t``); among source rows with the same key and event time the one
  stored last in the dataset wins;
* an aggregation over window ``w`` uses the source rows for ``k`` with event time in
  ``[t - w, t)``;
* a feature is null when no source row qualifies (``count`` included), and every
  label row comes back exactly once, in input order.

Row expressions use an ASOF join, aggregations a range join grouped per distinct
``(key, t)``; both stream from the versioned Parquet files. The same SQL serves
training sets (:func:`build_training_set`), materialisation (as of the
materialisation time) and the skew check.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from strataml.data import DatasetVersion, commit_version, get_version, list_versions
from strataml.errors import StrataError
from strataml.features._definitions import FeatureView, RequestFeature
from strataml.features._registry import (
    KEY_TYPES,
    FeatureError,
    Source,
    dataset_timestamp,
    engine,
    register,
    registered,
    resolve_source,
    resolve_view,
)
from strataml.features._sql import agg_sql, request_select
from strataml.spine import Workspace, check_name, quote_ident, quote_literal, write_parquet

if TYPE_CHECKING:
    import pandas as pd

LROW = "_lrow"  # label row number (input order)
LTIME = "_t"  # label time as TIMESTAMP


def source_scan(source: Source) -> str:
    """The source's rows with ``_ts`` (event time), ``_o`` (event order, ties by storage order), ``_file``."""
    paths = source.paths
    ts = quote_ident(source.timestamp)
    if not paths:
        return (
            f"(SELECT *, NULL::TIMESTAMP AS _ts, NULL::STRUCT(t TIMESTAMP, r BIGINT) AS _o, NULL::BIGINT AS _file "
            f"FROM {source.empty_relation()})"
        )
    files = "[" + ", ".join(quote_literal(str(p)) for p in paths) + "]"
    cols = ", ".join(quote_ident(c) for c in source.types)
    return (
        f"(SELECT {cols}, CAST({ts} AS TIMESTAMP) AS _ts, "
        f"{{'t': CAST({ts} AS TIMESTAMP), 'r': (CAST(file_index AS BIGINT) << 40) + file_row_number}} AS _o, "
        f"CAST(file_index AS BIGINT) AS _file FROM read_parquet({files}, union_by_name=true) WHERE {ts} IS NOT NULL)"
    )


def needed_columns(view: FeatureView, source: Source) -> list[str]:
    """Source columns the view may read: keys, event time, aggregated columns and every
    column whose name appears in a row expression (all of them if one uses ``*``)."""
    exprs = " ".join(f.expr or "" for f in view.expr_features)
    star = any(re.search(r"(^\s*|[(,.]\s*)\*", f.expr or "") for f in view.expr_features)  # a star, not a product
    if star or "columns(" in exprs.lower():
        return list(source.types)
    wanted = {*view.keys, source.timestamp, *(f.column for f in view.agg_features if f.column)}
    for col in source.types:
        if re.search(rf"(?<![A-Za-z0-9_]){re.escape(col)}(?![A-Za-z0-9_])", exprs, re.IGNORECASE):
            wanted.add(col)
    return [c for c in source.types if c in wanted]


def _interval(seconds: int) -> str:
    return f"INTERVAL '{int(seconds)} seconds'"


def _expr_part(view: FeatureView, scan: str, labels: str, names: dict[str, str]) -> str:
    keys = view.keys
    on = " AND ".join(f"l.{quote_ident(k)} = s.{quote_ident(k)}" for k in keys)
    ttl = _interval(view.ttl_seconds)
    outs = ", ".join(
        f"CASE WHEN _ok THEN ({f.expr}) END AS {quote_ident(names[f.name])}" for f in view.expr_features
    )
    return f"""
        SELECT {LROW}, {outs} FROM (
            SELECT l.{LROW}, s.* EXCLUDE (_o), s._ts >= l.{LTIME} - {ttl} AS _ok
            FROM {labels} l ASOF LEFT JOIN {scan} s
              ON {on} AND (CASE WHEN l.{LTIME} IS NOT NULL THEN {{'t': l.{LTIME}, 'r': -1::BIGINT}} END) > s._o
        )"""


def _agg_part(view: FeatureView, scan: str, labels: str, names: dict[str, str]) -> str:
    keys = [quote_ident(k) for k in view.keys]
    widest = max(f.window_seconds for f in view.agg_features)
    on = " AND ".join(f"q.{k} = s.{k}" for k in keys)
    aggs = []
    for f in view.agg_features:
        flt = None if f.window_seconds == widest else f"s._ts >= q.{LTIME} - {_interval(f.window_seconds)}"
        aggs.append(f"{agg_sql(f, 's', '_o', flt)} AS {quote_ident(names[f.name])}")
    kq = ", ".join(f"q.{k}" for k in keys)
    not_null = " AND ".join(f"{k} IS NOT NULL" for k in [*keys, LTIME])
    back = " AND ".join(f"l.{k} = a.{k}" for k in [*keys, LTIME])
    outs = ", ".join(f"a.{quote_ident(names[f.name])}" for f in view.agg_features)
    return f"""
        SELECT l.{LROW}, {outs} FROM {labels} l LEFT JOIN (
            SELECT {kq}, q.{LTIME}, {', '.join(aggs)}
            FROM (SELECT DISTINCT {', '.join(keys)}, {LTIME} FROM {labels} WHERE {not_null}) q
            JOIN {scan} s
              ON {on} AND s._ts < q.{LTIME} AND s._ts >= q.{LTIME} - {_interval(widest)}
            GROUP BY {kq}, q.{LTIME}
        ) a ON {back}"""


def compute_view(
    con: duckdb.DuckDBPyConnection,
    labels: str,
    view: FeatureView,
    source: Source | None,
    names: dict[str, str],
    target: str,
    scan: str | None = None,
) -> list[str]:
    """Create temp table ``target`` holding ``_lrow`` and the view's features for table ``labels``.

    ``labels`` must have ``_lrow``, ``_t`` (TIMESTAMP), the view's key columns and the
    fields of its request features. ``names`` maps feature names to output column
    names. ``scan`` replaces the source scan (:func:`source_scan`) with a table holding
    the same columns, e.g. the rows within a horizon. Returns the output columns in
    the view's feature order.
    """
    parts: list[tuple[str, list[str]]] = []
    if source is not None and view.stored_features:
        scan = scan or source_scan(source)
        if view.expr_features:
            parts.append((_expr_part(view, scan, labels, names), [names[f.name] for f in view.expr_features]))
        if view.agg_features:
            parts.append((_agg_part(view, scan, labels, names), [names[f.name] for f in view.agg_features]))
    if view.request_features:
        renamed = [
            RequestFeature(names[f.name], expr=f.expr, fields=f.fields) for f in view.request_features
        ]
        parts.append((request_select(renamed, labels, keep=[LROW]), [names[f.name] for f in view.request_features]))
    ctes = ", ".join(f"p{i} AS ({sql})" for i, (sql, _) in enumerate(parts))
    cols = []
    joins = []
    for i, (_, outs) in enumerate(parts):
        cols += [f"p{i}.{quote_ident(c)}" for c in outs]
        if i:
            joins.append(f"JOIN p{i} USING ({LROW})")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {quote_ident(target)} AS WITH {ctes} "
        f"SELECT p0.{LROW}, {', '.join(cols)} FROM p0 {' '.join(joins)}"
    )
    out = [names[f.name] for f in view.features]
    return out


# --- training sets -----------------------------------------------------------------------


@dataclass
class TrainingSet:
    """A point-in-time correct training set: every label column, then every feature column."""

    table: pa.Table
    label_columns: list[str]
    feature_columns: list[str]
    ref: str | None
    lineage: dict[str, Any]
    seconds: float = 0.0

    def to_pandas(self) -> pd.DataFrame:
        """The table as a pandas DataFrame."""
        return self.table.to_pandas()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (what ``strata features training-set --json`` prints)."""
        return {
            "ref": self.ref,
            "rows": self.table.num_rows,
            "label_columns": self.label_columns,
            "feature_columns": self.feature_columns,
            "lineage": self.lineage,
            "seconds": round(self.seconds, 3),
        }


_COMPATIBLE = {"VARCHAR": "text"} | {t: "int" for t in KEY_TYPES if t != "VARCHAR"}


def _load_labels(con: duckdb.DuckDBPyConnection, ws: Workspace, labels: DatasetVersion, t_col: str) -> None:
    """Temp table ``_labels``: the label rows, their input position and their time."""
    paths = labels.paths()
    cols = ", ".join(quote_ident(c) for c in labels.columns)
    t = f"CAST({quote_ident(t_col)} AS TIMESTAMP)"
    if not paths:
        con.execute(f"CREATE TEMP TABLE _labels AS SELECT {cols}, 0::BIGINT AS {LROW}, {t} AS {LTIME} FROM {labels.sql_source()}")
        return
    files = "[" + ", ".join(quote_literal(str(p)) for p in paths) + "]"
    con.execute(
        f"CREATE TEMP TABLE _labels AS SELECT {cols}, "
        f"(CAST(file_index AS BIGINT) << 40) + file_row_number AS {LROW}, {t} AS {LTIME} "
        f"FROM read_parquet({files}, union_by_name=true)"
    )


def _check_labels(labels: DatasetVersion, t_col: str | None, views: list[FeatureView], sources: dict[str, Source]) -> str:
    types = {c["name"]: c["type"] for c in labels.schema}
    where = f"labels {labels.ref}"
    if t_col is None:
        raise FeatureError(
            f"{where} has no timestamp column: its contract declares none",
            hint="declare timestamp= in the labels contract, or pass timestamp='COLUMN'",
        )
    if t_col not in types:
        raise FeatureError(f"{where} has no timestamp column {t_col!r} (columns: {', '.join(types)})",
                           hint="add the column to the labels, or pass timestamp='COLUMN'")
    if not (types[t_col].startswith("TIMESTAMP") or types[t_col] == "DATE"):
        raise FeatureError(f"{where}: timestamp column {t_col!r} has type {types[t_col]}, not a timestamp or date")
    for view in views:
        for k in view.keys:
            if k not in types:
                raise FeatureError(
                    f"{where} has no column {k!r}, the key of entity {view.entity.name if view.entity else '?'!r} "
                    f"used by feature view {view.name!r} (columns: {', '.join(types)})",
                    hint="add the entity key column(s) to the labels dataset",
                )
            src = sources[view.name].types[k]
            if _COMPATIBLE.get(types[k]) != _COMPATIBLE.get(src):
                raise FeatureError(
                    f"{where}: key column {k!r} has type {types[k]} but feature view {view.name!r} keys it as {src}",
                    hint="cast the labels' key column to the source's type",
                )
        for rf in view.request_features:
            missing = [f for f in rf.fields if f not in types]
            if missing:
                raise FeatureError(
                    f"{where} lacks request field(s) {missing} needed by {view.name}.{rf.name}",
                    hint="labels must hold the request fields so request features can be computed as at serving time",
                )
    return t_col


def _output_names(views: list[FeatureView], label_cols: list[str], full_names: bool) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    seen: dict[str, str] = {c: "the labels" for c in label_cols}
    for view in views:
        names = {}
        for f in view.features:
            col = f"{view.name}__{f.name}" if full_names else f.name
            if col in seen:
                raise FeatureError(
                    f"feature column {col!r} of view {view.name!r} clashes with a column of {seen[col]}",
                    hint="use full names (--full-names / full_names=True) to get VIEW__FEATURE columns",
                )
            seen[col] = f"view {view.name!r}"
            names[f.name] = col
        out[view.name] = names
    return out


def _dataset_name(labels: str, views: list[FeatureView], full_names: bool) -> str:
    blob = "\n".join([labels, *sorted(v.name for v in views), str(full_names)])
    return "training_set_" + hashlib.sha256(blob.encode()).hexdigest()[:12]


def build_training_set(
    ws: Workspace,
    labels: str,
    views: Sequence[str | FeatureView],
    *,
    full_names: bool = False,
    record: bool = True,
    out: str | None = None,
    timestamp: str | None = None,
    name: str | None = None,
) -> TrainingSet:
    """Join point-in-time correct features onto every label row (see the module docstring).

    ``labels`` is a dataset reference (``NAME[@vN]``); ``views`` names feature views
    (``NAME`` or ``NAME@VERSION``). With ``record`` the result becomes a dataset
    version (kind ``training_set``) whose lineage names the labels version, each view
    version and each source version; ``out`` also writes it to a Parquet file.
    """
    started = time.perf_counter()
    if not views:
        raise FeatureError("no feature views given", hint="name at least one view, e.g. --features user_spend")
    resolved = [resolve_view(ws, v) for v in views]
    dupes = sorted({v.name for v in resolved if [w.name for w in resolved].count(v.name) > 1})
    if dupes:
        raise FeatureError(f"feature view(s) {dupes} named twice")
    if record:
        register(ws, [v for v in resolved if registered(ws, v.name, v.version) is None])
    lv = get_version(ws, labels)
    sources = {v.name: resolve_source(ws, v) for v in resolved if v.stored_features}
    t_col = _check_labels(lv, timestamp or dataset_timestamp(ws, lv), resolved, sources)
    names = _output_names(resolved, lv.columns, full_names)
    lineage: dict[str, Any] = {
        "kind": "training_set",
        "labels": lv.ref,
        "timestamp": t_col,
        "views": {v.name: v.version for v in resolved},
        "sources": {s.version.name: s.version.ref for s in sources.values()},
        "full_names": full_names,
    }
    ds_name = name or _dataset_name(lv.name, resolved, full_names)
    if record:
        known = _recorded(ws, ds_name, lineage)
        if known is not None:  # the same immutable inputs: the recorded version is the answer
            table = known.to_arrow()
            if out is not None:
                write_parquet(table, out)
            return TrainingSet(table, list(lv.columns), [c for c in table.column_names if c not in lv.columns],
                               known.ref, lineage, time.perf_counter() - started)
    con = engine(ws)
    stage = ws.artifacts.staging_dir()
    try:
        _load_labels(con, ws, lv, t_col)
        feature_cols: list[str] = []
        joins = []
        for i, view in enumerate(resolved):
            try:
                feature_cols += compute_view(con, "_labels", view, sources.get(view.name), names[view.name], f"_v{i}")
            except duckdb.Error as exc:
                raise FeatureError(f"feature view {view.name!r} failed on {lv.ref}: {str(exc).splitlines()[0]}") from exc
            joins.append(f"LEFT JOIN _v{i} USING ({LROW})")
        label_sel = ", ".join(f"l.{quote_ident(c)}" for c in lv.columns)
        feat_sel = ", ".join(quote_ident(c) for c in feature_cols)
        path = stage / "training_set.parquet"
        con.execute(
            f"COPY (SELECT {label_sel}, {feat_sel} FROM _labels l {' '.join(joins)} ORDER BY l.{LROW}) "
            f"TO {quote_literal(str(path))} (FORMAT parquet)"
        )
        table = pq.read_table(path)
        ref = None
        if record:
            ref = _record(ws, ds_name, path, table, lineage)
        if out is not None:
            write_parquet(table, out)
        return TrainingSet(table, list(lv.columns), feature_cols, ref, lineage, time.perf_counter() - started)
    finally:
        con.close()
        shutil.rmtree(stage, ignore_errors=True)


def _recorded(ws: Workspace, name: str, lineage: dict[str, Any]) -> DatasetVersion | None:
    """The newest version of training set ``name`` built from exactly ``lineage``, if any."""
    try:
        versions = list_versions(ws, name)
    except StrataError:  # a name that cannot be a dataset is refused when recording
        return None
    return next((v for v in reversed(versions) if v.lineage == lineage), None)


def _record(ws: Workspace, name: str, path: Path, table: pa.Table, lineage: dict[str, Any]) -> str:
    """Store the training set as a new version of dataset ``name`` (kind ``training_set``)."""
    check_name(name, "training set name")
    rows = table.num_rows
    sha = ws.artifacts.put_file(path, move=True)
    version = commit_version(
        ws, name, [{"sha256": sha, "rows": rows}], kind="training_set", reuse_identical=True,
        columns=[{"name": f.name, "type": _duck_type(f.type)} for f in table.schema],
        source=lineage["labels"], stats={"rows": rows}, lineage=lineage,
        event={"kind": "training_set", "labels": lineage["labels"], "views": lineage["views"]},
    )
    return version.ref


def _duck_type(t: pa.DataType) -> str:
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "VARCHAR"
    if pa.types.is_timestamp(t):
        return "TIMESTAMP WITH TIME ZONE" if t.tz else "TIMESTAMP"
    mapping = {
        pa.float64(): "DOUBLE", pa.float32(): "FLOAT", pa.int64(): "BIGINT", pa.int32(): "INTEGER",
        pa.int16(): "SMALLINT", pa.int8(): "TINYINT", pa.bool_(): "BOOLEAN", pa.date32(): "DATE",
    }
    return mapping.get(t, str(t).upper())
