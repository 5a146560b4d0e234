"""Window profiles: the prediction log folded, incrementally, into per-minute profiles.

Each fold reads only the bytes appended to each log file since the last fold (the
offsets are kept in ``monitor_log_offsets``), parses them with Arrow's JSON reader,
and adds every prediction to the profile of its (deployment, model, version, minute)
window in ``monitor_windows`` — merging into a window a previous fold started. Any
larger window is then a merge of minute profiles; the log is never rescanned. Lines a
writer is still writing (no newline yet) and the zero-filled tail of a log file wait
for the next fold; a torn line from a crash is skipped.
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

from strataml.monitoring._tables import monitor_log_offsets, monitor_windows
from strataml.monitoring.profiles import Profile
from strataml.monitoring.sketches import column_kind, new_summary
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
        for r in rows:  # one type per column for Arrow: outputs and feature values as found, mixed ones as text
            r["output"] = orjson.dumps(r.get("output")).decode() if isinstance(r.get("output"), dict | list) else r.get("output")
        return pa.Table.from_pylist(rows) if rows else pa.table({})


def _minutes(ts: pa.ChunkedArray) -> np.ndarray:
    if not pa.types.is_timestamp(ts.type):
        ts = pc.cast(ts.cast(pa.string()), pa.timestamp("us", tz="UTC"))
    us = pc.cast(ts, pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy(zero_copy_only=False)
    return np.asarray(np.floor_divide(us, 60_000_000), dtype="int64")


def _outputs(col: pa.ChunkedArray) -> pa.Array:
    """The logged outputs as one summarisable array: numbers as they are; class → probability
    objects (multiclass) as the most probable class."""
    t = col.type
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return pc.cast(col, pa.float64()).combine_chunks()
    if pa.types.is_struct(t):
        names = [t.field(i).name for i in range(t.num_fields)]
        probs = np.column_stack([pc.cast(col.combine_chunks().field(n), pa.float64()).to_numpy(zero_copy_only=False) for n in names])
        return pa.array([names[i] for i in np.nanargmax(np.nan_to_num(probs, nan=-1.0), axis=1)])
    out = []
    for v in col.to_pylist():
        if isinstance(v, str) and v.startswith("{"):
            d = orjson.loads(v)
            v = max(d, key=d.get) if d else None
        out.append(None if v is None else str(v))
    return pa.array(out, pa.string())


def _profile_rows(table: pa.Table, ref: str) -> Profile:
    p = Profile(ref, "window", table.num_rows, {})
    if "features" in table.column_names and pa.types.is_struct(table["features"].type):
        feats = table["features"].combine_chunks()
        for i in range(feats.type.num_fields):
            f = feats.type.field(i)
            kind = column_kind(f.type)
            if kind is not None:
                s = p.columns[f.name] = new_summary(kind)
                s.update(pc.struct_field(feats, [i]))
    if "output" in table.column_names:
        out = _outputs(table["output"])
        p.prediction = new_summary("numeric" if pa.types.is_floating(out.type) else "categorical")
        p.prediction.update(out)
    return p


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
        table = _parse(data[:end])
        if table.num_rows and {"request_id", "ts", "model", "version"} <= set(table.column_names):  # else not prediction lines
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
        table = pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({})
        windows: dict[tuple[str, str, int, int], Profile] = {}
        if table.num_rows:
            table = table.filter(pc.is_valid(table["request_id"]))
            keys = pa.table({
                "deployment": pc.fill_null(table["deployment"].cast(pa.string()), ""), "model": table["model"].cast(pa.string()),
                "version": pc.fill_null(table["version"].cast(pa.int64()), 0), "minute": pa.array(_minutes(table["ts"])),
                "i": pa.array(np.arange(table.num_rows)),
            }).group_by(["deployment", "model", "version", "minute"]).aggregate([("i", "list")])
            rows = table.select([c for c in ("features", "output") if c in table.column_names])
            for d, m, v, mi, idx in zip(*(keys[c].to_pylist() for c in ("deployment", "model", "version", "minute", "i_list")), strict=True):
                # the log is in time order, so a window is mostly one run of rows: a slice copies nothing
                lo = min(idx)
                part = rows.slice(lo, len(idx)) if max(idx) - lo + 1 == len(idx) else rows.take(pa.array(idx))
                windows[(d, m, v, mi)] = _profile_rows(part, f"window:{m}@v{v}")
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
    return FoldResult(table.num_rows, len(windows), time.perf_counter() - t0)


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
