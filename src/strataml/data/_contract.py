"""Contracts: what one kind of incoming data must look like.

A contract names its columns with types and per-column rules, an optional key and
event-time column, and row rules written as SQL booleans. Its version is the hash of
its canonical definition, so any change makes a new version; :func:`breaking_changes`
says whether a new version can replace an old one without breaking readers.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb

from strataml.errors import ContractError
from strataml.spine import check_name, definition_hash

#: contract type → DuckDB type
TYPES: dict[str, str] = {
    "string": "VARCHAR",
    "int": "BIGINT",
    "float": "DOUBLE",
    "bool": "BOOLEAN",
    "timestamp": "TIMESTAMP",
    "date": "DATE",
}
_ORDERED = {"int", "float", "timestamp", "date"}


@dataclass(frozen=True)
class Column:
    """One column of a contract and the rules each of its values must keep."""

    name: str
    type: str
    nullable: bool = False
    unique: bool = False
    min: Any = None
    max: Any = None
    allowed: Sequence[Any] | None = None
    pattern: str | None = None
    max_null_rate: float | None = None
    description: str = ""

    def __post_init__(self) -> None:
        where = f"column {self.name!r}"
        if not isinstance(self.name, str) or not self.name or self.name.startswith("_"):
            raise ContractError(f"{where}: a column name must be a non-empty string not starting with '_'")
        if self.type not in TYPES:
            raise ContractError(f"{where}: unknown type {self.type!r}", hint=f"use one of {', '.join(TYPES)}")
        if (self.min is not None or self.max is not None) and self.type not in _ORDERED:
            raise ContractError(f"{where}: min/max apply to int, float, timestamp and date, not {self.type}")
        if self.pattern is not None:
            if self.type != "string":
                raise ContractError(f"{where}: pattern applies to string columns only")
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ContractError(f"{where}: pattern {self.pattern!r} is not a valid regular expression: {exc}") from exc
        if self.allowed is not None:
            if isinstance(self.allowed, str) or not len(self.allowed):
                raise ContractError(f"{where}: allowed must be a non-empty list of values")
            object.__setattr__(self, "allowed", tuple(self.allowed))
        if self.max_null_rate is not None:
            if not 0 <= self.max_null_rate <= 1:
                raise ContractError(f"{where}: max_null_rate must be between 0 and 1")
            if not self.nullable:
                object.__setattr__(self, "nullable", True)

    @property
    def sql_type(self) -> str:
        """The DuckDB type values are stored as."""
        return TYPES[self.type]

    def to_dict(self) -> dict[str, Any]:
        """The canonical definition (defaults included, so the hash is stable)."""
        d = asdict(self)
        d["allowed"] = list(self.allowed) if self.allowed is not None else None
        for k in ("min", "max"):
            if d[k] is not None and not isinstance(d[k], int | float | str):
                d[k] = str(d[k])
        return d


@dataclass(frozen=True)
class Contract:
    """The rules a dataset's rows must keep.

    ``key`` (one column or several) identifies a row: rows whose key already exists are
    duplicates. ``timestamp`` names the event-time column. ``rules`` maps a rule name to
    a SQL boolean over the row's typed columns; NULL counts as passing, as in a SQL
    CHECK constraint. ``min_rows`` fails a batch with fewer rows. ``extra_columns``
    says what to do with source columns the contract does not name: ``"error"``
    (default) or ``"drop"``.
    """

    __strata_kind__ = "contract"

    name: str
    columns: Sequence[Column]
    key: str | Sequence[str] | None = None
    timestamp: str | None = None
    rules: Mapping[str, str] = field(default_factory=dict)
    min_rows: int | None = None
    extra_columns: str = "error"
    description: str = ""

    def __init__(
        self,
        name: str,
        *,
        columns: Sequence[Column],
        key: str | Sequence[str] | None = None,
        timestamp: str | None = None,
        rules: Mapping[str, str] | None = None,
        min_rows: int | None = None,
        extra_columns: str = "error",
        description: str = "",
    ) -> None:
        set_ = object.__setattr__
        set_(self, "name", check_name(name, "contract name"))
        set_(self, "columns", tuple(columns))
        set_(self, "key", (key,) if isinstance(key, str) else tuple(key) if key else ())
        set_(self, "timestamp", timestamp)
        set_(self, "rules", dict(rules or {}))
        set_(self, "min_rows", min_rows)
        set_(self, "extra_columns", extra_columns)
        set_(self, "description", description)
        self._check()

    def _check(self) -> None:
        where = f"contract {self.name!r}"
        if not self.columns:
            raise ContractError(f"{where} declares no columns")
        names = [c.name for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ContractError(f"{where} declares column(s) {dupes} twice")
        for k in self.key_columns:
            if k not in names:
                raise ContractError(f"{where}: key column {k!r} is not a declared column", hint=f"declare st.Column({k!r}, …)")
            if self.column(k).nullable:
                raise ContractError(f"{where}: key column {k!r} cannot be nullable")
        if self.timestamp is not None:
            if self.timestamp not in names:
                raise ContractError(f"{where}: timestamp column {self.timestamp!r} is not a declared column")
            if self.column(self.timestamp).type not in ("timestamp", "date"):
                raise ContractError(f"{where}: timestamp column {self.timestamp!r} must have type timestamp or date")
        for rule, expr in self.rules.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule):
                raise ContractError(f"{where}: rule name {rule!r} must be an identifier")
            if not isinstance(expr, str) or not expr.strip():
                raise ContractError(f"{where}: rule {rule!r} must be a SQL boolean expression string")
            check_rule(where, rule, expr)
        if self.extra_columns not in ("error", "drop"):
            raise ContractError(f"{where}: extra_columns must be 'error' or 'drop'")
        if self.min_rows is not None and self.min_rows < 0:
            raise ContractError(f"{where}: min_rows must be >= 0")

    @property
    def key_columns(self) -> tuple[str, ...]:
        """The key column names (empty when the contract has no key)."""
        return tuple(self.key or ())

    def column(self, name: str) -> Column:
        """The column called ``name``."""
        for c in self.columns:
            if c.name == name:
                return c
        raise ContractError(f"contract {self.name!r} has no column {name!r}")

    @property
    def column_names(self) -> list[str]:
        """Declared column names in order."""
        return [c.name for c in self.columns]

    def to_dict(self) -> dict[str, Any]:
        """The canonical definition, from which the version is hashed."""
        return {
            "name": self.name,
            "key": list(self.key_columns),
            "timestamp": self.timestamp,
            "columns": [c.to_dict() for c in self.columns],
            "rules": dict(sorted(self.rules.items())),
            "min_rows": self.min_rows,
            "extra_columns": self.extra_columns,
        }

    @property
    def version(self) -> str:
        """The hash of the canonical definition (16 hex digits)."""
        return definition_hash(self.to_dict())

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Contract:
        """Rebuild a contract from :meth:`to_dict` output (as stored in the catalog)."""
        cols = [Column(**{k: v for k, v in c.items()}) for c in d["columns"]]
        return cls(
            d["name"],
            columns=cols,
            key=d.get("key") or None,
            timestamp=d.get("timestamp"),
            rules=d.get("rules") or {},
            min_rows=d.get("min_rows"),
            extra_columns=d.get("extra_columns", "error"),
        )


_parser: duckdb.DuckDBPyConnection | None = None
_parser_lock = threading.Lock()


def _parse(sql: str) -> Any:
    """DuckDB's syntax tree of one statement (None when it does not parse), positions left out."""
    global _parser
    with _parser_lock:
        if _parser is None:
            _parser = duckdb.connect()
        row = _parser.execute("SELECT json_serialize_sql(?::VARCHAR)", [sql]).fetchone()
    tree = json.loads(row[0]) if row else {"error": True}
    if tree.get("error"):
        return None

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k != "query_location"}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return strip(tree["statements"])


def check_rule(where: str, rule: str, expr: str) -> None:
    """Refuse a rule that is not exactly one SQL expression over the row.

    A rule is pasted into the validating query, so ``"true) OR (1=1"`` or a trailing
    comment would change that query's structure: the rule must parse (with DuckDB's
    parser) as the single item of ``SELECT <rule>``, with no FROM, clause or subquery,
    and parse to the same tree when wrapped in parentheses.
    """
    plain = _parse(f"SELECT {expr}")
    node = plain[0]["node"] if plain and len(plain) == 1 else {}
    one_item = (
        node.get("type") == "SELECT_NODE"
        and len(node.get("select_list", [])) == 1
        and node.get("from_table", {}).get("type") == "EMPTY"
        and not any(node.get(k) for k in ("where_clause", "group_expressions", "having", "qualify", "modifiers", "sample"))
        and not (node.get("cte_map") or {}).get("map")
    )
    if not one_item or _parse(f"SELECT ({expr}\n)") != plain:
        raise ContractError(
            f"{where}: rule {rule!r} is not one expression: {expr!r}",
            hint="a rule is one SQL boolean over the row's columns, e.g. 'refund IS NULL OR refund <= amount' "
            "(no FROM, no ';', no unbalanced parentheses or comments)",
        )
    if '"SUBQUERY"' in json.dumps(plain):
        raise ContractError(
            f"{where}: rule {rule!r} contains a subquery: {expr!r}",
            hint="a rule reads only the row's own columns; check other tables with a separate job",
        )


def breaking_changes(old: Contract, new: Contract) -> list[str]:
    """Why ``new`` cannot replace ``old`` for existing data (empty when compatible).

    Adding a nullable column is compatible; removing a column, changing its type,
    adding a non-nullable column, or changing the key breaks readers or old rows.
    """
    problems = []
    old_cols = {c.name: c for c in old.columns}
    new_cols = {c.name: c for c in new.columns}
    for name, col in old_cols.items():
        if name not in new_cols:
            problems.append(f"column {name!r} was removed")
        elif new_cols[name].type != col.type:
            problems.append(f"column {name!r} changed type {col.type} → {new_cols[name].type}")
    for name, col in new_cols.items():
        if name not in old_cols and not col.nullable:
            problems.append(f"column {name!r} was added without nullable=True")
    if old.key_columns != new.key_columns:
        problems.append(f"key changed {list(old.key_columns)} → {list(new.key_columns)}")
    return problems
