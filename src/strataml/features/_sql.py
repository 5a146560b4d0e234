"""The SQL builders of feature values, shared by training sets, the registry's type
check, materialisation and serving: one expression per feature, wherever it is computed.
"""

from __future__ import annotations

from collections.abc import Sequence

from strataml.features._definitions import FIELD_TYPES, Feature, RequestFeature
from strataml.spine import quote_ident


def agg_sql(f: Feature, alias: str, order: str, window_filter: str | None = None) -> str:
    """The DuckDB aggregate for ``f`` over rows aliased ``alias`` (null when no row qualifies)."""
    flt = f" FILTER (WHERE {window_filter})" if window_filter else ""
    col = f"{alias}.{quote_ident(f.column)}" if f.column else "*"
    if f.agg == "last":
        return f"arg_max_null({col}, {alias}.{order}){flt}"
    body = {
        "count": f"count({col})",
        "sum": f"sum({col})",
        "mean": f"avg({col})",
        "min": f"min({col})",
        "max": f"max({col})",
        "stddev": f"stddev_samp({col})",
        "count_distinct": f"count(DISTINCT {col})",
    }[f.agg or ""]
    if f.agg in ("count", "count_distinct"):
        # zero qualifying rows is "nothing qualifies": null, like every other feature
        return f"CASE WHEN count(*){flt} > 0 THEN {body}{flt} END"
    return body + flt


def request_select(features: Sequence[RequestFeature], relation: str | None, keep: Sequence[str] = ()) -> str:
    """SQL computing request features from ``relation`` (fields cast to their declared types).

    The one expression used both for training (``relation`` = the label rows) and
    serving (``relation`` = the request payload). ``relation=None`` gives a typed empty
    input (used to compile and type-check the expressions).
    """
    fields: dict[str, str] = {}
    for f in features:
        for name, typ in f.fields.items():
            fields[name] = FIELD_TYPES[typ]
    kept = [quote_ident(k) for k in keep]
    if relation is None:
        inner = "SELECT " + ", ".join(f"NULL::{t} AS {quote_ident(n)}" for n, t in fields.items()) + " WHERE false"
    else:
        casts = [f"CAST({quote_ident(n)} AS {t}) AS {quote_ident(n)}" for n, t in fields.items()]
        inner = f"SELECT {', '.join([*kept, *casts])} FROM {relation}"
    outs = [f"({f.expr}) AS {quote_ident(f.name)}" for f in features]
    return f"SELECT {', '.join([*kept, *outs])} FROM ({inner}) AS _req"
