"""Vectorised validation: one DuckDB query types every column and names every rule a
row breaks.

The query's result has the contract's columns (typed), ``_errors`` (comma-separated
rule names; NULL for a good row, so that telling good rows apart reads only a validity mask) and ``_raw`` (the original texts of a bad row's fields, a list in the
contract's column order).
Rule names: ``<column>.type|nullable|min|max|allowed|pattern|unique``,
``<key>.duplicate`` and the contract's own rule names.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from strataml.data._contract import Column, Contract
from strataml.errors import ContractError, SourceError
from strataml.spine import quote_ident, quote_literal


@dataclass(frozen=True)
class Plan:
    """The SQL that validates a source against a contract."""

    select: str
    present: list[str]
    missing: list[str]


def _literal_for(col: Column, value: object) -> str:
    if col.type == "timestamp":
        v = value.isoformat() if isinstance(value, dt.datetime | dt.date) else str(value)
        return f"TIMESTAMP {quote_literal(v)}"
    if col.type == "date":
        v = value.isoformat() if isinstance(value, dt.date) else str(value)
        return f"DATE {quote_literal(v)}"
    if col.type == "bool":
        return quote_literal(bool(value))
    if col.type in ("int", "float"):
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ContractError(f"column {col.name!r}: bound {value!r} must be a number")
        return repr(value)
    return quote_literal(value)


def _typed(col: Column, raw: str, source_type: str) -> tuple[str, str]:
    """(typed expression, type-error condition) for one column.

    The condition may refer to the typed value as ``{typed}``: it is evaluated one level
    above the cast, so every cast runs once per value.
    """
    t = col.sql_type
    if source_type == t and t != "DOUBLE":
        return raw, "false"
    if col.type == "timestamp":
        if source_type == "TIMESTAMP WITH TIME ZONE":
            typed = f"timezone('UTC', {raw})"
        elif source_type == "VARCHAR":
            # A plain TIMESTAMP cast silently drops a UTC offset or zone name, so text is
            # always read as TIMESTAMPTZ (naive text counts as UTC) and made UTC.
            tz = f"timezone('UTC', TRY_CAST({raw} AS TIMESTAMPTZ))"
            # The two usual layouts parsed strictly (nothing may follow the seconds, so no
            # offset or zone) give the same instant far more cheaply; ICU only as fallback.
            typed = f"coalesce(try_strptime({raw}, ['%Y-%m-%dT%H:%M:%S', '%Y-%m-%d %H:%M:%S']), {tz})"
        else:
            typed = f"TRY_CAST({raw} AS TIMESTAMP)"
    elif col.type == "float":
        # NaN and ±inf are not values a float column accepts: they type as NULL → type error.
        typed = f"CASE WHEN isfinite(TRY_CAST({raw} AS DOUBLE)) THEN TRY_CAST({raw} AS DOUBLE) END"
    else:
        typed = f"TRY_CAST({raw} AS {t})"
    err = f"({raw} IS NOT NULL AND {{typed}} IS NULL)"
    if col.type == "int":
        # DuckDB rounds '1.5' to 2 when casting to an integer: a fraction is a type error.
        if source_type == "VARCHAR":
            err = f"({err} OR (contains({raw}, '.') AND TRY_CAST({raw} AS DOUBLE) <> {{typed}}))"
        elif source_type in ("DOUBLE", "FLOAT") or source_type.startswith("DECIMAL"):
            err = f"({err} OR {raw} <> {{typed}})"
    return typed, err


def build_plan(
    con: duckdb.DuckDBPyConnection, contract: Contract, source_columns: list[str], source: str = "_src"
) -> Plan:
    """Check the source's columns against the contract and build the validating query."""
    declared = contract.column_names
    present = [c for c in declared if c in source_columns]
    missing = [c for c in declared if c not in source_columns]
    extra = [c for c in source_columns if c not in declared]
    required_missing = [c for c in missing if not contract.column(c).nullable]
    if required_missing:
        hint = "check the file's header"
        if len(source_columns) == 1 and any(d in source_columns[0] for d in ";|\t,"):
            delim = next(d for d in ";|\t," if d in source_columns[0])
            hint = f"the file seems to use {delim!r} as its delimiter: pass --delimiter {delim!r}"
        raise SourceError(
            f"the source lacks required column(s) {required_missing} of contract {contract.name!r}; "
            f"it has {source_columns[:20]}",
            hint=hint,
        )
    if extra and contract.extra_columns == "error":
        raise SourceError(
            f"the source has column(s) {extra[:20]} that contract {contract.name!r} does not declare",
            hint="declare them in the contract, or set extra_columns='drop' on the contract to ignore them",
        )
    head = con.sql(f"SELECT * FROM {source} LIMIT 0")
    types = {name: str(t) for name, t in zip(head.columns, head.types, strict=True)}

    # Level 1 types each column once and keeps the raw text as _r<i>; level 2 names the
    # rules each row breaks; level 3 keeps the raw text only for rows that broke one.
    typed_cols: list[str] = []
    # (rule name, condition that is TRUE when the row breaks the rule; NULL counts as kept)
    checks: list[tuple[str, str]] = []
    raws: list[tuple[str, str]] = []
    for i, col in enumerate(contract.columns):
        q = quote_ident(col.name)
        if col.name in missing:
            typed_cols.append(f"NULL::{col.sql_type} AS {q}")
            raws.append((q, "NULL::VARCHAR"))
            continue
        raw = f"_src_.{q}"
        typed, type_err = _typed(col, raw, types[col.name])
        typed_cols.append(f"{typed} AS {q}")
        typed_cols.append(f"{raw} AS _r{i}")
        raws.append((q, f"CAST(_r{i} AS VARCHAR)"))
        type_err = type_err.replace(raw, f"_r{i}").replace("{typed}", q)
        if type_err != "false":
            checks.append((f"{col.name}.type", type_err))
        if not col.nullable:
            checks.append((f"{col.name}.nullable", f"_r{i} IS NULL"))
        if col.min is not None:
            checks.append((f"{col.name}.min", f"{q} < {_literal_for(col, col.min)}"))
        if col.max is not None:
            checks.append((f"{col.name}.max", f"{q} > {_literal_for(col, col.max)}"))
        if col.allowed is not None:
            values = ", ".join(_literal_for(col, v) for v in col.allowed)
            checks.append((f"{col.name}.allowed", f"{q} NOT IN ({values})"))
        if col.pattern is not None:
            checks.append((f"{col.name}.pattern", f"NOT regexp_full_match({q}, {quote_literal(col.pattern)})"))
    inner_sql = f"SELECT {', '.join(typed_cols)} FROM {source} AS _src_"

    for rule, expr in contract.rules.items():
        try:
            # the contract checked the rule is one expression; the newline ends a trailing comment
            kinds = con.sql(f"SELECT ({expr}\n) AS r FROM ({inner_sql}) LIMIT 0").types
        except duckdb.Error as exc:
            raise ContractError(
                f"rule {rule!r} of contract {contract.name!r} is not valid SQL over the row: {str(exc).splitlines()[0]}",
                hint="a rule is a SQL boolean over the contract's columns, e.g. 'refund <= amount'",
            ) from exc
        if str(kinds[0]) != "BOOLEAN":
            raise ContractError(f"rule {rule!r} of contract {contract.name!r} returns {kinds[0]}, not a boolean")
        checks.append((rule, f"NOT ({expr}\n)"))

    cols = ", ".join(quote_ident(c) for c in declared)
    # a list (in the contract's column order) costs far less than a struct when NULL
    raw_list = "[" + ", ".join(e for _, e in raws) + "]"
    if not checks:
        errors = "NULL::VARCHAR"
    else:
        # The rules are first checked together (each stops at the first it finds broken,
        # cheap for the good rows, nearly all of them); names are spelled out only for the
        # bad rows. A NULL condition selects nothing in either CASE: the rule is kept.
        broken = " OR ".join(f"({cond})" for _, cond in checks)
        names = ", ".join(f"CASE WHEN {cond} THEN {quote_literal(name)} END" for name, cond in checks)
        errors = f"CASE WHEN {broken} THEN concat_ws(',', {names}) END"
    select = (
        f"SELECT {cols}, _errors, CASE WHEN _errors IS NOT NULL THEN {raw_list} END AS _raw "
        f"FROM (SELECT *, {errors} AS _errors FROM ({inner_sql}))"
    )
    return Plan(select=select, present=present, missing=missing)
