"""New prediction-log lines as the columns a fold needs, read with DuckDB.

A fold needs each line's deployment, model, version, minute, features and output.
DuckDB's JSON reader parses only those when it is told their types, several times
faster than inferring them; the types of the ``features`` keys and of ``output`` come
from a sample of the lines (the first ones and some spread through the rest), and are
used only when every line read names a model version the sample saw. A line the sample did not foresee
(another type, a torn line) makes the reader fail rather than guess, and the caller then
reads the bytes with the general reader. DuckDB leaves out a ``features`` key the
sampled types do not name, so a key of that model's lines that none of the sampled ones
carries (an input omitted from nearly every request) is not profiled by that fold; drift
then reports the column absent on the current side rather than a wrong distribution.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from strataml.spine import duck, quote_ident

FIRST_LINES = 16
SPREAD_LINES = 256
NEEDED = ("request_id", "ts", "model", "version")


def _sample(data: bytes) -> list[dict[str, Any]] | None:
    """Some whole lines of ``data`` parsed, or None when one does not parse."""
    starts: list[int] = []
    pos = 0
    for _ in range(FIRST_LINES):
        starts.append(pos)
        pos = data.find(b"\n", pos) + 1
        if pos <= 0 or pos >= len(data):
            break
    for i in range(1, SPREAD_LINES + 1):
        nl = data.find(b"\n", len(data) * i // (SPREAD_LINES + 1))
        if 0 <= nl < len(data) - 1:
            starts.append(nl + 1)
    out = []
    for start in sorted(set(starts)):
        end = data.find(b"\n", start)
        try:
            rec = orjson.loads(data[start : end if end >= 0 else len(data)])
        except orjson.JSONDecodeError:
            return None
        if not isinstance(rec, dict):
            return None
        out.append(rec)
    return out


def _scalar_type(values: list[Any]) -> str | None:
    kinds = {type(v) for v in values if v is not None}
    if kinds <= {int, float}:
        return "DOUBLE"  # all-null columns too: Arrow's reader makes them numeric as well
    if kinds == {str}:
        return "VARCHAR"
    if kinds == {bool}:
        return "BOOLEAN"
    return None


def _struct(records: list[Any]) -> str | None:
    """``STRUCT(...)`` of the keys of sampled objects (values scalars), keys in first-seen order."""
    values: dict[str, list[Any]] = {}
    for rec in records:
        if rec is None:
            continue
        if not isinstance(rec, dict):
            return None
        for k, v in rec.items():
            values.setdefault(k, []).append(v)
    if not values:
        return None
    fields = []
    for k, vs in values.items():
        t = _scalar_type(vs)
        if t is None:
            return None
        fields.append(f"{quote_ident(k)} {t}")
    return f"STRUCT({', '.join(fields)})"


def _columns(sample: list[dict[str, Any]]) -> dict[str, str] | None:
    if not any(r.get("request_id") is not None for r in sample):
        return None
    from strataml.serving import PREDICTION_LOG_COLUMNS

    cols = {k: PREDICTION_LOG_COLUMNS[k] for k in ("request_id", "ts", "deployment", "model", "version")}
    feats = [r.get("features") for r in sample]
    if any(f is not None for f in feats):
        t = _struct(feats)
        if t is None:
            return None
        cols["features"] = t
    outs = [r.get("output") for r in sample]
    if any(isinstance(o, dict) for o in outs):
        t = _struct(outs)
        if t is None or "VARCHAR" in t or "BOOLEAN" in t:
            return None
        cols["output"] = t
    elif any(o is not None for o in outs):
        t = _scalar_type(outs)
        if t is None or t == "BOOLEAN":
            return None
        cols["output"] = t
    return cols


def read_lines(data: bytes, scratch: Path) -> pa.Table | None:
    """Whole log lines as ``deployment, model, version, ts[, features][, output]`` (lines
    without a request id left out), or None when they need the general reader.

    The bytes go to DuckDB as a file in ``scratch`` (removed afterwards): a Python
    file object would be read through fsspec, slower and with a copy of its own."""
    sample = _sample(data)
    cols = _columns(sample) if sample else None
    if sample is None or cols is None:
        return None
    # nulls, the minute and the rest in numpy afterwards: the fewer expressions, the faster
    select = ["deployment", "model", "version", "ts"] + [
        c for c in ("features", "output") if c in cols
    ]
    fd, name = tempfile.mkstemp(suffix=".jsonl", prefix="fold-", dir=scratch)
    con = duck()
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        rel = con.read_json(name, format="newline_delimited", columns=cols)
        table = rel.filter("request_id IS NOT NULL").project(", ".join(select)).to_arrow_table()
    except duckdb.Error:
        return None
    finally:
        con.close()
        os.unlink(name)
    # a model version the sample missed (a canary taking a sliver of the traffic) may log
    # features of its own, which the sampled types would leave out
    seen = {f"{r.get('model')}@{r.get('version')}" for r in sample}
    versions = pc.binary_join_element_wise(
        table["model"], pc.cast(table["version"], pa.string()), pa.scalar("@")
    ).fill_null("None@None")
    return table if set(pc.unique(versions).to_pylist()) <= seen else None
