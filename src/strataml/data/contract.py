"""Contracts: what one kind of incoming data must look like.

A contract names its columns with types and per-column rules, an optional key and
event-time column, and row rules written as SQL booleans. Its version is the hash of
its canonical definition, so any change makes a new version; :func:`breaking_changes`
says whether a new version can replace an old one without breaking readers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from strataml.errors import ContractError
from strataml.spine.hashing import definition_hash
from strataml.spine.paths import check_name

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
            if ";" in expr:
                raise ContractError(f"{where}: rule {rule!r} must be one expression (no ';')")
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
