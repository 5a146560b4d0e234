"""Training/serving skew: online values against the offline computation at the same instant.

For a sample of the source's entities, :func:`check_skew` reads what the online store
serves, recomputes the same features offline (the training-set SQL, with each
entity's label time set to the time its online value was computed, over the source
version that was materialised) and reports every difference. An entity the store
does not hold must have only null features offline. Floating-point values compare
with a relative tolerance of 1e-9 (parallel sums may differ in the last bits);
everything else must be equal.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pyarrow as pa

from strataml.features._lookup import online_store
from strataml.features._offline import LROW, LTIME, compute_view, source_scan
from strataml.features._registry import (
    FeatureError,
    engine,
    registered,
    resolve_source,
    resolve_view,
)
from strataml.features.online import OnlineStore
from strataml.spine import Workspace, quote_ident

REL_TOL = 1e-9


def _same(online: Any, offline: Any) -> bool:
    if isinstance(offline, float) and not math.isfinite(offline):
        offline = None  # the online store serves non-finite floats as null (JSON has neither)
    if online is None or offline is None:
        return online is None and offline is None
    if isinstance(offline, dt.datetime):
        try:
            return dt.datetime.fromisoformat(str(online)) == offline.replace(tzinfo=None)
        except ValueError:
            return False
    if isinstance(offline, dt.date):
        return str(online) == offline.isoformat()
    if isinstance(offline, float) or isinstance(online, float):
        try:
            a, b = float(online), float(offline)
        except (TypeError, ValueError):
            return False
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-12)
    return bool(online == offline)


def check_skew(ws: Workspace, view: str, *, sample: int = 100, seed: int = 0, store: OnlineStore | None = None) -> dict[str, Any]:
    """Compare online and offline values for ``sample`` entities of ``view``; lists every mismatch."""
    st = store or online_store(ws)
    declared = resolve_view(ws, view)
    meta = st.meta(declared.name)
    if meta is None:
        raise FeatureError(
            f"feature view {declared.name!r} has no values in the online store",
            hint=f"run 'strata features materialize --view {declared.name}' first",
        )
    fv = registered(ws, declared.name, meta["version"])
    if fv is None:
        raise FeatureError(f"the online store holds {declared.name}@{meta['version']}, which is not in the catalog")
    source = resolve_source(ws, fv, meta.get("source_version"))
    keys = list(fv.keys)
    as_of = dt.datetime.fromisoformat(meta["as_of"]).astimezone(dt.UTC).replace(tzinfo=None)
    qk = ", ".join(quote_ident(k) for k in keys)
    con = engine(ws)
    try:
        rows = con.execute(
            f"SELECT {qk} FROM (SELECT DISTINCT {qk} FROM {source_scan(source)} "
            f"WHERE {' AND '.join(f'{quote_ident(k)} IS NOT NULL' for k in keys)}) "
            f"ORDER BY hash({qk}, {int(seed)}) LIMIT {int(sample)}"
        ).fetchall()
        entity_keys = [dict(zip(keys, r, strict=True)) for r in rows]
        online = st.get(fv.name, entity_keys, with_meta=True)
        times = []
        for got in online:
            at = as_of
            if got is not None and got.get("_as_of"):
                at = dt.datetime.fromisoformat(str(got["_as_of"])).replace(tzinfo=None)
            times.append(at)
        labels = pa.table({
            **{k: [e[k] for e in entity_keys] for k in keys},
            LROW: list(range(len(entity_keys))),
            LTIME: pa.array(times, pa.timestamp("us")),
        })
        con.register("_sample", labels)
        con.execute("CREATE TEMP TABLE _labels AS SELECT * FROM _sample")
        stored = [f for f in fv.stored_features]
        names = {f.name: f.name for f in stored}
        compute_view(con, "_labels", fv.stored_view(), source, names, "_v")
        offline = con.execute(
            f"SELECT {', '.join(quote_ident(f.name) for f in stored)} FROM _v ORDER BY {LROW}"
        ).fetchall()
    finally:
        con.close()
    mismatches = []
    missing = 0
    for key, got, off in zip(entity_keys, online, offline, strict=True):
        if got is None:
            missing += 1
        for f, value in zip(stored, off, strict=True):
            on = None if got is None else got.get(f.name)
            if not _same(on, value):
                mismatches.append({"key": key, "feature": f.name, "online": on,
                                   "offline": value.isoformat() if isinstance(value, dt.date) else value})
    return {
        "view": fv.name, "version": fv.version, "as_of": meta["as_of"], "source_version": source.version.ref,
        "checked": len(entity_keys), "absent_online": missing, "mismatches": mismatches,
        "ok": not mismatches,
    }
