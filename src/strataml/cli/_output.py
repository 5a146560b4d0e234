"""Printing for the CLI: JSON for machines (``--json``), rich tables for people."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


def dumps(obj: Any) -> str:
    """JSON text (indented, keys in insertion order, non-JSON values as strings)."""
    return orjson.dumps(obj, default=str, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY).decode()


def emit(obj: Any, as_json: bool, human: Callable[[Any], None] | None = None) -> None:
    """Print ``obj`` as JSON, or hand it to ``human`` for a readable rendering."""
    if as_json or human is None:
        sys.stdout.write(dumps(obj) + "\n")
        sys.stdout.flush()
    else:
        human(obj)


def table(title: str, rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> None:
    """A rich table of dictionaries (columns default to the first row's keys)."""
    cols = list(columns or (rows[0].keys() if rows else []))
    t = Table(title=title, title_justify="left")
    for c in cols:
        t.add_column(c)
    for r in rows:
        t.add_row(*("" if r.get(c) is None else str(r.get(c)) for c in cols))
    console.print(t)


def kv(title: str, data: dict[str, Any]) -> None:
    """A two-column table of keys and values."""
    t = Table(title=title, title_justify="left", show_header=False)
    t.add_column("key", style="bold")
    t.add_column("value")
    for k, v in data.items():
        t.add_row(k, dumps(v) if isinstance(v, dict | list) else str(v))
    console.print(t)
