"""Draft a contract from a sample file: types, ranges, allowed values, null rates.

The result is Python source the user can paste into ``definitions.py`` and edit.
"""

from __future__ import annotations

from typing import Any

import duckdb

from strataml.data._sources import SourceSpec, open_source
from strataml.errors import SourceError
from strataml.spine import duck, one, quote_ident

_SAMPLE_CELLS = 20_000_000
_FROM_DUCK = {
    "VARCHAR": "string", "BIGINT": "int", "INTEGER": "int", "SMALLINT": "int", "TINYINT": "int", "HUGEINT": "int",
    "UBIGINT": "int", "UINTEGER": "int", "DOUBLE": "float", "FLOAT": "float", "BOOLEAN": "bool",
    "TIMESTAMP": "timestamp", "TIMESTAMP WITH TIME ZONE": "timestamp", "DATE": "date",
}


def _sniff_type(values_sql: str, con: Any) -> str:
    """The narrowest contract type every non-null text value parses as."""
    checks = {
        "bool": "lower(v) NOT IN ('true', 'false')",
        "int": "TRY_CAST(v AS BIGINT) IS NULL OR contains(v, '.')",
        "float": "TRY_CAST(v AS DOUBLE) IS NULL",
        "date": "TRY_CAST(v AS DATE) IS NULL OR length(v) > 10",
        "timestamp": "TRY_CAST(v AS TIMESTAMPTZ) IS NULL",
    }
    for candidate, broken in checks.items():
        bad = one(con, f"SELECT count(*) FILTER (WHERE v IS NOT NULL AND ({broken})), count(v) FROM ({values_sql})")
        if bad and bad[0] == 0 and bad[1]:
            return candidate
    return "string"


def infer_contract(path: str, name: str | None = None, *, sample_rows: int = 100_000, max_allowed: int = 12) -> dict[str, Any]:
    """Profile a sample of a file and return a contract draft plus its Python source."""
    con = duck()
    try:
        scan = open_source(con, SourceSpec(uri=path))
        # the sample holds at most _SAMPLE_CELLS values, so a wide file stays within memory
        rows = max(1000, min(int(sample_rows), _SAMPLE_CELLS // max(1, len(scan.columns))))
        con.execute(f"CREATE TEMP TABLE _sample AS SELECT * FROM _src LIMIT {rows}")
        total = (one(con, "SELECT count(*) FROM _sample") or (0,))[0]
        columns = []
        for col in scan.columns:
            q = quote_ident(col)
            if scan.text:
                kind = _sniff_type(f"SELECT {q} AS v FROM _sample", con)
            else:
                head = con.sql("SELECT * FROM _sample LIMIT 0")
                duck_type = str(dict(zip(head.columns, head.types, strict=True))[col])
                kind = _FROM_DUCK.get(duck_type, "string")
            cast = {"string": "VARCHAR", "int": "BIGINT", "float": "DOUBLE", "bool": "BOOLEAN", "date": "DATE", "timestamp": "TIMESTAMPTZ"}[kind]
            stats = one(con, f"SELECT count(*) FILTER (WHERE {q} IS NULL), count(DISTINCT {q}), min(TRY_CAST({q} AS {cast})), max(TRY_CAST({q} AS {cast})) FROM _sample") or (0, 0, None, None)
            nulls, distinct, lo, hi = stats
            entry: dict[str, Any] = {"name": col, "type": kind, "nullable": nulls > 0, "null_rate": (nulls / total) if total else 0.0}
            if kind in ("int", "float") and lo is not None:
                entry["min"] = lo
                entry["max"] = hi
            if kind == "string" and 0 < distinct <= max_allowed and total >= 4 * distinct:
                entry["allowed"] = sorted(r[0] for r in con.execute(f"SELECT DISTINCT {q} FROM _sample WHERE {q} IS NOT NULL").fetchall())
            if distinct == total - nulls and nulls == 0 and total > 0:
                entry["unique"] = True
            columns.append(entry)
        scan.close()
    except duckdb.Error as exc:
        reason = "ran out of memory" if isinstance(exc, duckdb.OutOfMemoryException) else "failed"
        raise SourceError(
            f"profiling {path} {reason}: {str(exc).strip().splitlines()[0]}",
            hint="pass a smaller sample file, or one with fewer columns",
        ) from exc
    finally:
        con.close()
    contract_name = name or "".join(ch if ch.isalnum() else "_" for ch in path.rsplit("/", 1)[-1].split(".", 1)[0]) or "data"
    return {"name": contract_name, "rows_sampled": total, "columns": columns, "python": _render(contract_name, columns)}


def _render(name: str, columns: list[dict[str, Any]]) -> str:
    key = next((c["name"] for c in columns if c.get("unique") and c["type"] in ("string", "int")), None)
    ts = next((c["name"] for c in columns if c["type"] in ("timestamp", "date")), None)
    lines = [f"{name} = st.Contract(", f"    {name!r},"]
    if key:
        lines.append(f"    key={key!r},")
    if ts:
        lines.append(f"    timestamp={ts!r},")
    lines.append("    columns=[")
    for c in columns:
        args = [repr(c["name"]), repr(c["type"])]
        if c["nullable"]:
            args.append("nullable=True")
            rate = min(1.0, round(c["null_rate"] * 1.5 + 0.001, 3))
            args.append(f"max_null_rate={rate}")
        if c.get("unique") and c["name"] != key:
            args.append("unique=True")
        if "min" in c:
            args.append(f"min={c['min']!r}")
            args.append(f"max={c['max']!r}")
        if "allowed" in c:
            args.append(f"allowed={c['allowed']!r}")
        null_note = f"  # {c['null_rate']:.1%} null in sample" if c["nullable"] else ""
        lines.append(f"        st.Column({', '.join(args)}),{null_note}")
    lines += ["    ],", ")"]
    return "\n".join(lines)
