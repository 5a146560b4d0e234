"""The offline engine: DuckDB connections configured from the workspace settings.

Every connection runs in UTC, spills to the workspace's scratch folder instead of
growing without bound, and uses the configured thread count.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb


def duck(memory_limit: str = "1GB", threads: int = 0, temp_dir: Path | None = None) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB connection with bounded memory."""
    config: dict[str, str | bool | int | float | list[str]] = {"memory_limit": memory_limit}
    if threads:
        config["threads"] = threads
    if temp_dir is not None:
        config["temp_directory"] = str(temp_dir)
    con = duckdb.connect(":memory:", config=config)
    # No progress bar: it would mix into --json output on stdout.
    con.execute("LOAD icu; SET TimeZone = 'UTC'; SET enable_progress_bar = false")
    return con


def quote_ident(name: str) -> str:
    """A SQL identifier, double-quoted with embedded quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: object) -> str:
    """A SQL literal for a str, int, float or bool (strings single-quoted, quotes doubled)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[Any, ...]:
    """The first row of a query that returns exactly one row (the result is fully consumed)."""
    rows = con.execute(sql).fetchall()
    return tuple(rows[0]) if rows else ()
