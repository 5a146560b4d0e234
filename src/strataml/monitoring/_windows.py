"""Window profiles: the prediction log folded, incrementally, into per-minute profiles.

Each fold reads only the bytes appended to each log file since the last fold (the
offsets are kept in ``monitor_log_offsets``), parses only the fields a profile needs
with DuckDB's JSON reader, typed from a sample of the lines (Arrow's reader, which
infers every type, takes the lines the sample did not foresee), and adds every
prediction to the profile of its (deployment, model, version, minute) window in
``monitor_windows`` — merging into a window a previous fold started. Each column is
encoded once per fold (numbers as a float64 array, text as codes) and each window's
summaries are built from a slice of it. Any larger window is then a merge of minute
profiles; the log is never rescanned. Lines a writer is still writing (no newline yet)
and the zero-filled tail of a log file wait for the next fold; a torn line from a crash
is skipped.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import sqlalchemy as sa

from strataml.monitoring._arrays import float64_values, int64_values
from strataml.monitoring._logread import NEEDED, read_lines
from strataml.monitoring._profiles import Profile
from strataml.monitoring._sketches import CategoricalSummary, NumericSummary, Summary, column_kind
from strataml.monitoring._tables import monitor_log_offsets, monitor_windows
from strataml.serving import prediction_log_dir
from strataml.spine import Workspace


@dataclass
class FoldResult:
    """What one fold did."""

    rows: int
    windows: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {"rows": self.rows, "windows": self.windows, "seconds": round(self.seconds, 4)}


def _parse(data: bytes) -> pa.Table:
    """Log lines as a table; lines that do not parse (torn by a crash) are skipped."""
    try:
        return pj.read_json(io.BytesIO(data), read_options=pj.ReadOptions(block_size=8 << 20))
    except pa.ArrowInvalid:
        rows = []
        for line in data.splitlines():
            try:
                rows.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
        rows = [r for r in rows if isinstance(r, dict) and r.get("request_id") is not None]
        # one type per column for Arrow: outputs and feature values as found, mixed ones as text
        kinds: dict[str, set[type]] = {}
        for r in rows:
            if isinstance(r.get("output"), dict | list):
                r["output"] = orjson.dumps(r["output"]).decode()
            if not isinstance(r.get("features"), dict):
                r["features"] = None
                continue
            for k, v in r["features"].items():
                if v is not None:
                    kinds.setdefault(k, set()).add(float if type(v) is int else type(v))
        mixed = {k for k, ts in kinds.items() if len(ts) > 1}
        for r in rows:
            for k in mixed & set(r["features"] or ()):
                v = r["features"][k]
                r["features"][k] = None if v is None else v if isinstance(v, str) else orjson.dumps(v).decode()
        return pa.Table.from_pylist(rows) if rows else pa.table({})


def _minutes(ts: pa.ChunkedArray) -> np.ndarray:
    if not pa.types.is_timestamp(ts.type):
        ts = pc.cast(ts.cast(pa.string()), pa.timestamp("us", tz="UTC"))
    us = int64_values(pc.cast(ts, pa.timestamp("us", tz="UTC")))
    return np.asarray(np.floor_divide(us, 60_000_000), dtype=np.int64)


def _normalise(table: pa.Table) -> pa.Table:
    """The general reader's table in the fast reader's shape (deployment, model, version, ts, ...)."""
    table = table.filter(pc.is_valid(table["request_id"]))
    cols: dict[str, pa.Array | pa.ChunkedArray] = {
        "deployment": table["deployment"].cast(pa.string()) if "deployment" in table.column_names else pa.nulls(table.num_rows, pa.string()),
        "model": table["model"].cast(pa.string()),
        "version": table["version"].cast(pa.int64()),
        "ts": table["ts"],
    }
    for c in ("features", "output"):
        if c in table.column_names:
            cols[c] = table[c]
    return pa.table(cols)


Encoded = tuple[str, Any]  # ("numeric", float64 array) or ("categorical", (codes, names)), nulls as NaN / -1


def _categorical(values: pa.Array | pa.ChunkedArray) -> Encoded:
    t = values.type
    if pa.types.is_dictionary(t):
        values = pc.cast(values, t.value_type)
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        values = pc.cast(values, pa.string())
    enc = pc.dictionary_encode(values)
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.unify_dictionaries().combine_chunks() if enc.num_chunks != 1 else enc.chunk(0)
    return "categorical", (int64_values(enc.indices, null=-1), [str(v) for v in enc.dictionary.to_pylist()])


def _encode(values: pa.Array | pa.ChunkedArray) -> Encoded | None:
    kind = column_kind(values.type)
    if kind == "numeric":
        return "numeric", float64_values(values)
    return _categorical(values) if kind == "categorical" else None


def _outputs(col: pa.ChunkedArray) -> Encoded:
    """The logged outputs: numbers as they are; class → probability objects (multiclass) as
    the most probable class."""
    t = col.type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_null(t):
        return "numeric", float64_values(col)
    if pa.types.is_struct(t):
        arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        names = [t.field(i).name for i in range(t.num_fields)]
        probs = np.column_stack([float64_values(pc.struct_field(arr, [i])) for i in range(len(names))])
        known = ~np.all(np.isnan(probs), axis=1)
        codes = np.where(known, np.argmax(np.nan_to_num(probs, nan=-np.inf), axis=1), -1)
        return "categorical", (codes, names)
    out = []
    for v in col.to_pylist():
        if isinstance(v, str) and v.startswith("{"):
            d = orjson.loads(v)
            v = max(d, key=d.get) if d else None
        out.append(None if v is None else str(v))
    return _categorical(pa.array(out, pa.string()))


def _summary(enc: Encoded, lo: int, hi: int) -> Summary:
    kind, data = enc
    if kind == "numeric":
        s = NumericSummary()
        s.update(data[lo:hi])
        return s
    codes, names = data
    seg = codes[lo:hi]
    c = CategoricalSummary()
    c.add_counts(names, np.bincount(seg[seg >= 0], minlength=len(names)), int(np.count_nonzero(seg < 0)))
    return c


def _windows(table: pa.Table) -> dict[tuple[str, str, int, int], Profile]:
    """Per (deployment, model, version, minute) the profile of the rows of ``table`` (in the
    fast reader's shape), every column encoded once and each window a slice of it."""
    n = table.num_rows
    if n == 0:
        return {}
    dep = _categorical(table["deployment"])[1]
    mod = _categorical(table["model"])[1]
    version, minute = int64_values(table["version"]), _minutes(table["ts"])
    keys = np.column_stack([dep[0], mod[0], version, minute])
    order = None
    if np.any(np.any(keys[1:] < keys[:-1], axis=1)):  # not grouped as the log usually is: sort by key
        order = np.lexsort(keys.T[::-1])
        keys = keys[order]
    bounds = np.r_[0, np.flatnonzero(np.any(keys[1:] != keys[:-1], axis=1)) + 1, n]
    columns: dict[str, Encoded] = {}
    if "features" in table.column_names and pa.types.is_struct(table["features"].type):
        feats = table["features"].combine_chunks()
        for i in range(feats.type.num_fields):
            enc = _encode(pc.struct_field(feats, [i]))
            if enc is not None:
                columns[feats.type.field(i).name] = enc
    pred = _outputs(table["output"]) if "output" in table.column_names else None
    if order is not None:
        columns = {k: _take(e, order) for k, e in columns.items()}
        pred = _take(pred, order) if pred is not None else None
    out: dict[tuple[str, str, int, int], Profile] = {}
    for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        d, m, v, mi = keys[lo].tolist()
        dname, mname = dep[1][d] if d >= 0 else "", mod[1][m] if m >= 0 else ""
        p = Profile(f"window:{mname}@v{v}", "window", hi - lo, {k: _summary(e, lo, hi) for k, e in columns.items()})
        p.prediction = _summary(pred, lo, hi) if pred is not None else None
        out[(dname, mname, v, mi)] = p
    return out


def _take(enc: Encoded, order: np.ndarray) -> Encoded:
    kind, data = enc
    return (kind, data[order]) if kind == "numeric" else (kind, (data[0][order], data[1]))


def _read_new(ws: Workspace, offsets: dict[str, int]) -> tuple[list[pa.Table], dict[str, int]]:
    directory = prediction_log_dir(ws.state_dir)
    tables, moved = [], {}
    for path in sorted(directory.glob("*.jsonl")) if directory.is_dir() else []:
        start = offsets.get(path.name, 0)
        size = path.stat().st_size
        if size <= start:
            continue
        with open(path, "rb") as fh:
            fh.seek(start)
            data = fh.read(size - start)
        zero = data.find(b"\x00")
        if zero >= 0:
            data = data[:zero]
        end = data.rfind(b"\n") + 1
        if end == 0:
            continue
        table = read_lines(data[:end], ws.scratch_dir())
        if table is None:
            table = _parse(data[:end])
            table = _normalise(table) if table.num_rows and set(NEEDED) <= set(table.column_names) else None  # else not prediction lines
        if table is not None and table.num_rows:
            tables.append(table)
        moved[path.name] = start + end
    return tables, moved


def fold(ws: Workspace) -> FoldResult:
    """Fold what the prediction log gained since the last fold into the window profiles."""
    t0 = time.perf_counter()
    o, w = monitor_log_offsets, monitor_windows
    with ws.catalog.lock("monitoring.fold"):
        with ws.catalog.read() as conn:
            offsets = {r.file: int(r.offset) for r in conn.execute(sa.select(o))}
        tables, moved = _read_new(ws, offsets)
        if not moved:
            return FoldResult(0, 0, time.perf_counter() - t0)
        windows: dict[tuple[str, str, int, int], Profile] = {}
        for table in tables:  # each file's new lines on their own: files may log different columns
            for key, p in _windows(table).items():
                if key in windows:
                    windows[key].merge(p)
                else:
                    windows[key] = p
        with ws.catalog.write() as conn:
            for (d, m, v, mi), p in windows.items():
                where = sa.and_(w.c.deployment == d, w.c.model == m, w.c.version == v, w.c.minute == mi)
                old = conn.execute(sa.select(w.c.profile).where(where)).scalar()
                if old is not None:
                    merged = Profile.from_state(old)
                    merged.merge(p)
                    conn.execute(w.update().where(where).values(rows=merged.rows, profile=merged.state()))
                else:
                    conn.execute(w.insert().values(deployment=d, model=m, version=v, minute=mi, rows=p.rows, profile=p.state()))
            for name, off in moved.items():
                if name in offsets:
                    conn.execute(o.update().where(o.c.file == name).values(offset=off))
                else:
                    conn.execute(o.insert().values(file=name, offset=off))
    return FoldResult(sum(t.num_rows for t in tables), len(windows), time.perf_counter() - t0)


def window_profile(ws: Workspace, model: str, version: int, *, deployment: str | None = None,
                   start_minute: int | None = None, end_minute: int | None = None) -> Profile:
    """The merge of a model version's minute profiles (optionally one deployment's, in [start, end))."""
    w = monitor_windows
    q = sa.select(w.c.profile).where(w.c.model == model, w.c.version == version).order_by(w.c.minute)
    if deployment is not None:
        q = q.where(w.c.deployment == deployment)
    if start_minute is not None:
        q = q.where(w.c.minute >= start_minute)
    if end_minute is not None:
        q = q.where(w.c.minute < end_minute)
    out = Profile(f"window:{model}@v{version}", "window", 0, {})
    with ws.catalog.read() as conn:
        for (data,) in conn.execute(q):
            out.merge(Profile.from_state(data))
    return out


def last_minute(ws: Workspace, model: str, version: int, deployment: str | None = None) -> int | None:
    """The latest minute with logged predictions of a model version."""
    w = monitor_windows
    q = sa.select(sa.func.max(w.c.minute)).where(w.c.model == model, w.c.version == version)
    if deployment is not None:
        q = q.where(w.c.deployment == deployment)
    with ws.catalog.read() as conn:
        found = conn.execute(q).scalar()
    return None if found is None else int(found)
