"""Materialisation: each entity's latest feature values, written to the online store.

Values follow the training-set semantics with every entity's label time set to the
materialisation time ``as_of``: row expressions from the latest source row strictly
before ``as_of`` within ``ttl`` (ties: the last stored row), aggregations over
``[as_of - window, as_of)`` using the same aggregate SQL. As all entities share one
label time, a single grouped pass over the rows inside the view's horizon (the
longest of its ttl and windows) computes them; :func:`strataml.features.check_skew`
compares the result with the training-set join. Entities with no source row inside
the horizon hold no values and read back as nulls.

Rows stream from DuckDB to the store in batches, so memory stays bounded whatever
the number of entities; the store makes a run visible in one atomic commit. An
incremental run recomputes only the entities with source rows at or after the
previous run's watermark (its ``as_of``) or in files added to the source since.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
import uuid
from collections.abc import Sequence
from typing import Any

from strataml.data import get_version
from strataml.features import _tables as tables
from strataml.features._definitions import FeatureView
from strataml.features._lookup import online_store
from strataml.features._offline import needed_columns, source_scan
from strataml.features._registry import (
    FeatureError,
    engine,
    feature_types,
    register,
    registered,
    resolve_source,
    resolve_view,
)
from strataml.features._sql import agg_sql
from strataml.features.online import LAYOUT, OnlineStore, key_sql
from strataml.spine import (
    Workspace,
    append_event,
    failpoint,
    one,
    quote_ident,
    quote_literal,
    utcnow,
)

BATCH_ROWS = 50_000


def _ts_literal(value: dt.datetime) -> str:
    naive = value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
    return f"TIMESTAMP {quote_literal(naive.isoformat(sep=' '))}"


def materialize(
    ws: Workspace,
    views: Sequence[str] | None = None,
    incremental: bool = False,
    *,
    as_of: dt.datetime | None = None,
    store: OnlineStore | None = None,
) -> dict[str, Any]:
    """Write the latest values of ``views`` (default: every declared view with source features).

    Returns ``{"views": [per-view report…], "store": url}``.
    """
    names = list(views) if views else [v.name for v in sorted(ws.definitions.all("feature_view"), key=lambda v: v.name)]
    if not names:
        raise FeatureError("no feature views to materialise", hint="declare views in definitions.py or pass --view")
    st = store or online_store(ws)
    when = as_of or utcnow()
    if when.tzinfo is None:  # naive times are UTC, like every time in strataml
        when = when.replace(tzinfo=dt.UTC)
    reports = []
    for name in names:
        view = resolve_view(ws, name)
        if not view.stored_features:
            reports.append({"view": view.name, "status": "skipped", "reason": "request features only"})
            continue
        reports.append(_materialize_view(ws, view, st, when, incremental))
    return {"store": _safe(st.url), "views": reports}


def _safe(url: str) -> str:
    head, sep, tail = url.rpartition("@")
    return ("redis://***@" + tail) if sep and head.startswith("redis") else url


def _materialize_view(ws: Workspace, view: FeatureView, st: OnlineStore, as_of: dt.datetime, incremental: bool) -> dict[str, Any]:
    started = time.perf_counter()
    if registered(ws, view.name, view.version) is None:
        register(ws, [view])
    source = resolve_source(ws, view)
    prev = st.meta(view.name)
    mode = "incremental" if incremental else "full"
    reason = None
    if incremental and (prev is None or prev.get("version") != view.version or prev.get("keys") != list(view.keys)):
        mode, reason = "full", "no earlier run of this view version"
    elif incremental and prev is not None and prev.get("layout") != LAYOUT:
        mode, reason = "full", "the stored values use an earlier layout"
    horizon = max([view.ttl_seconds, *(f.window_seconds for f in view.agg_features)])
    at = _ts_literal(as_of)
    keys = [quote_ident(k) for k in view.keys]
    not_null = " AND ".join(f"{k} IS NOT NULL" for k in keys)
    scan = source_scan(source)
    con = engine(ws)
    try:
        # the rows any value can use: event time in [as_of - horizon, as_of)
        cols = ", ".join(quote_ident(c) for c in needed_columns(view, source))
        # the event order as one HUGEINT (microsecond time, then storage position): the same
        # order as the training set's (time, position) struct, compared far faster when grouping
        con.execute(
            f"CREATE TEMP VIEW _recent AS SELECT {cols}, _ts, epoch_us(_ts)::HUGEINT * {1 << 64} + _o.r AS _o, _file "
            f"FROM {scan} WHERE {not_null} AND _ts < {at} AND _ts >= {at} - INTERVAL '{horizon} seconds'"
        )
        stored = view.stored_features
        kl = ", ".join(keys)
        # every entity has the same label time (as_of), so one grouped pass over the recent
        # rows gives exactly the point-in-time values; the skew check compares it with
        # the training-set SQL
        aggs = ["max(_r._ts) AS _event_ts"]
        exprs = [f for f in stored if f.kind == "expr"]
        if exprs:  # one arg_max picks the latest row's values of every row expression
            ok = f"_r._ts >= {at} - INTERVAL '{view.ttl_seconds} seconds'"
            packed = ", ".join(f"{quote_literal(f.name)}: ({f.expr})" for f in exprs)
            aggs.append(f"arg_max_null({{{packed}}}, _r._o) FILTER (WHERE {ok}) AS _latest")
        for f in stored:
            if f.kind == "agg":
                flt = None if f.window_seconds >= horizon else f"_r._ts >= {at} - INTERVAL '{f.window_seconds} seconds'"
                aggs.append(f"{agg_sql(f, '_r', '_o', flt)} AS {quote_ident(f.name)}")
        if mode == "full":
            values = f"SELECT {kl}, {', '.join(aggs)} FROM _recent _r GROUP BY {kl}"
        else:
            assert prev is not None
            since = _ts_literal(dt.datetime.fromisoformat(prev["watermark"]))
            new_files = _new_file_indexes(ws, prev.get("source_version"), source.version.files)
            extra = f" OR _file IN ({', '.join(map(str, new_files))})" if new_files else ""
            con.execute(
                f"CREATE TEMP TABLE _changed AS SELECT DISTINCT {kl} FROM {scan} "
                f"WHERE {not_null} AND _ts < {at} AND (_ts >= {since}{extra})"
            )
            grouped = f"SELECT {kl}, {', '.join(aggs)} FROM _recent _r SEMI JOIN _changed c USING ({kl}) GROUP BY {kl}"
            values = f"SELECT c.*, g.* EXCLUDE ({kl}) FROM _changed c LEFT JOIN ({grouped}) g USING ({kl})"
        max_ts = (one(con, "SELECT max(_ts) FROM _recent") or (None,))[0]
        # the stored layout (see online.encode_value): the features in meta["features"] order, then the meta fields
        exprs_sql = [f"v._latest[{quote_literal(f.name)}]" if f.kind == "expr" else f"v.{quote_ident(f.name)}" for f in stored]
        kinds = con.sql(f"SELECT {', '.join(exprs_sql)} FROM ({values}) v LIMIT 0").types
        # JSON has no NaN or infinity: a non-finite float is stored (and served) as null
        fields = ", ".join(
            f"CASE WHEN isfinite({e}) THEN {e} END" if str(k) in ("DOUBLE", "FLOAT") else e
            for e, k in zip(exprs_sql, kinds, strict=True)
        )
        sql = (
            f"SELECT {key_sql(view.keys, 'v')} AS k, json_array({fields}, v._event_ts, {at})::VARCHAR AS v "
            f"FROM ({values}) v ORDER BY k"
        )
        token = st.begin(view.name, full=(mode == "full"))
        try:
            reader = con.sql(sql).to_arrow_reader(BATCH_ROWS)
            written = 0
            for batch in reader:
                rows = list(zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True))
                st.write_batch(view.name, token, rows)
                written += len(rows)
                failpoint("materialize.after_batch")
            meta = {
                "view": view.name, "version": view.version, "keys": list(view.keys),
                "features": [f.name for f in stored], "layout": LAYOUT, "types": feature_types(view.stored_view(), source, con),
                "as_of": as_of.astimezone(dt.UTC).isoformat(), "watermark": as_of.astimezone(dt.UTC).isoformat(),
                "max_event_ts": max_ts.isoformat() if isinstance(max_ts, dt.datetime) else None,
                "source_version": source.version.ref, "mode": mode, "entities": written,
            }
            failpoint("materialize.before_commit")
            st.commit(view.name, token, meta)
        except BaseException:
            with contextlib.suppress(Exception):  # keep the original error
                st.abort(view.name, token)
            raise
    finally:
        con.close()
    seconds = time.perf_counter() - started
    run_id = str(uuid.uuid4())
    with ws.catalog.write() as conn:
        conn.execute(tables.materializations.insert().values(
            id=run_id, view=view.name, version=view.version, store=_safe(st.url), source_version=source.version.ref,
            mode=mode, as_of=as_of, watermark=as_of, entities=written, seconds=seconds, created_at=utcnow(),
        ))
        append_event(conn, "feature_view.materialized", view.name, {
            "version": view.version, "mode": mode, "entities": written, "as_of": as_of.isoformat(),
            "source_version": source.version.ref, "store": _safe(st.url),
        })
    out = {"view": view.name, "version": view.version, "status": "materialized", "mode": mode, "entities": written,
           "as_of": as_of.isoformat(), "source_version": source.version.ref,
           "seconds": round(seconds, 3)}
    if reason:
        out["reason"] = reason
    return out


def _new_file_indexes(ws: Workspace, prev_ref: str | None, files: list[dict[str, Any]]) -> list[int]:
    """Positions in ``files`` of files the previously materialised source version lacked."""
    if not prev_ref:
        return list(range(len(files)))
    try:
        old = {f["sha256"] for f in get_version(ws, prev_ref).files}
    except Exception:
        return list(range(len(files)))
    return [i for i, f in enumerate(files) if f["sha256"] not in old]
