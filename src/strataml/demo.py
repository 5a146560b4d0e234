"""``strata demo``: the whole system end to end on generated data, in a temporary workspace."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pyarrow as pa
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from strataml import synth
from strataml.data import get_version, ingest, quarantine_rows
from strataml.data.ingest import IngestReport
from strataml.spine.events import list_events
from strataml.spine.workspace import Workspace

console = Console()


def _report_table(title: str, r: IngestReport) -> None:
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


def run_demo(directory: str | None = None, keep: bool = False, rows: int = 20_000) -> Path:
    """Run the demo; returns the workspace folder (deleted afterwards unless ``keep``)."""
    root = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="strata-demo-"))
    try:
        console.print(Panel.fit("strataml demo: ingestion, quarantine and versioned datasets", style="bold"))
        ws = Workspace.init(root)
        console.print(f"workspace: {ws.root}")

        first = synth.transactions(rows, seed=1, bad_fraction=0.01)
        path1 = synth.write_csv(first, root / "transactions_day1.csv")
        console.print(f"\n[bold]1. ingest[/] {path1.name} ({rows:,} rows, ~1% broken)")
        r1 = ingest(ws, str(path1), contract="transactions")
        _report_table("first batch", r1)

        # The second export overlaps the first: 10% of its rows are re-sent duplicates.
        overlap = first.slice(rows - rows // 10)
        second = pa.concat_tables([overlap, synth.transactions(rows // 2, seed=2, start_id=rows, bad_fraction=0.01)])
        path2 = synth.write_csv(second, root / "transactions_day2.csv")
        console.print(f"\n[bold]2. append[/] {path2.name} ({second.num_rows:,} rows: {overlap.num_rows:,} re-sent, the rest new)")
        r2 = ingest(ws, str(path2), contract="transactions")
        _report_table("second batch", r2)
        assert r2.accepted + r2.rejected + r2.duplicates == r2.rows_read

        v = get_version(ws, "transactions@latest")
        console.print(f"\n[bold]3. dataset[/] {v.ref}: {v.rows:,} rows in {len(v.files)} files, sha256 {v.sha256[:16]}…")
        sample = quarantine_rows(ws, "transactions@v2", limit=5)
        q = Table(title="a few quarantined rows of v2", title_justify="left")
        for col in ("_line", "_errors", "tx_id", "amount", "country", "refund"):
            q.add_column(col)
        for row in sample:
            q.add_row(*(", ".join(row[c]) if c == "_errors" else str(row[c]) for c in ("_line", "_errors", "tx_id", "amount", "country", "refund")))
        console.print(q)

        ev = Table(title="event log", title_justify="left")
        for col in ("id", "kind", "subject", "payload"):
            ev.add_column(col)
        for e in list_events(ws.catalog, limit=10):
            ev.add_row(str(e.id), e.kind, e.subject, str(e.payload)[:70])
        console.print(ev)
        console.print("\n[green]demo finished[/]")
        ws.close()
        return root
    finally:
        if not keep and directory is None:
            shutil.rmtree(root, ignore_errors=True)
