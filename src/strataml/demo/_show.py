"""How the demo prints: one console, tables of ingest reports, numbers that may be missing."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

import strataml as st

console = Console()


def report_table(title: str, r: st.IngestReport) -> None:
    t = Table(title=title, title_justify="left")
    for col in ("version", "rows_read", "accepted", "rejected", "duplicates"):
        t.add_column(col, justify="right")
    t.add_row(str(r.version or "—"), f"{r.rows_read:,}", f"{r.accepted:,}", f"{r.rejected:,}", f"{r.duplicates:,}")
    console.print(t)
    rules = Table(title="quarantine by rule", title_justify="left")
    rules.add_column("rule")
    rules.add_column("rows", justify="right")
    for rule, n in r.rejected_by_rule.items():
        rules.add_row(rule, f"{n:,}")
    console.print(rules)



def num(v: Any) -> str:
    """A figure to three significant digits, or a dash when there is none."""
    return "—" if v is None else f"{v:.3g}"
