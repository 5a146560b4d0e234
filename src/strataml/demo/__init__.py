"""``strata demo``: the whole system end to end on generated data, in a temporary workspace.

One module per chapter; :func:`run_demo` runs them in order."""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pyarrow as pa
from rich.panel import Panel
from rich.table import Table

import strataml as st
from strataml import synth
from strataml.demo._data import features_step
from strataml.demo._loop import follow, second_round, start_loop
from strataml.demo._models import demo_models
from strataml.demo._monitoring import demo_monitoring
from strataml.demo._queue import demo_queue
from strataml.demo._serving import demo_serving, serve_forever
from strataml.demo._show import console, report_table
from strataml.demo._summary import summary

__all__ = ["run_demo"]


def run_demo(directory: str | None = None, keep: bool = False, rows: int = 20_000, serve: int | None = None) -> Path:
    """Run the demo; returns the workspace folder (deleted afterwards unless ``keep``).

    With ``serve`` (a port), the gateway and its dashboard keep running there afterwards
    until Ctrl-C or SIGTERM."""
    root = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="strata-demo-"))
    try:
        console.print(Panel.fit("strataml demo: ingestion, quarantine and versioned datasets", style="bold"))
        ws = st.Workspace.init(root)
        console.print(f"workspace: {ws.root}")

        first = synth.transactions(rows, seed=1, bad_fraction=0.01)
        path1 = synth.write_csv(first, root / "transactions_day1.csv")
        console.print(f"\n[bold]1. ingest[/] {path1.name} ({rows:,} rows, ~1% broken)")
        r1 = st.ingest(ws, str(path1), contract="transactions")
        report_table("first batch", r1)

        # The second export overlaps the first: 10% of its rows are re-sent duplicates.
        overlap = first.slice(rows - rows // 10)
        second = pa.concat_tables([overlap, synth.transactions(rows // 2, seed=2, start_id=rows, bad_fraction=0.01)])
        path2 = synth.write_csv(second, root / "transactions_day2.csv")
        console.print(f"\n[bold]2. append[/] {path2.name} ({second.num_rows:,} rows: {overlap.num_rows:,} re-sent, the rest new)")
        r2 = st.ingest(ws, str(path2), contract="transactions")
        report_table("second batch", r2)
        assert r2.accepted + r2.rejected + r2.duplicates == r2.rows_read

        v = st.dataset("transactions@latest", ws)
        console.print(f"\n[bold]3. dataset[/] {v.ref}: {v.rows:,} rows in {len(v.files)} files, sha256 {v.sha256[:16]}…")
        sample = st.quarantine_rows(ws, "transactions@v2", limit=5)
        q = Table(title="a few quarantined rows of v2", title_justify="left")
        for col in ("_errors", "tx_id", "amount", "country", "refund"):
            q.add_column(col)
        for row in sample:
            q.add_row(*(", ".join(row[c]) if c == "_errors" else str(row[c]) for c in ("_errors", "tx_id", "amount", "country", "refund")))
        console.print(q)

        features_step(ws, root)

        demo_models(ws, root)
        outcomes, key, later, later_labels = demo_serving(ws)
        queued = demo_queue(ws, key, later)
        mark = st.list_events(ws.catalog, limit=None)[-1].id
        background = start_loop(ws, root, key, later, later_labels)
        try:
            demo_monitoring(ws, root, outcomes)
            background.serve()
            console.print("\n[bold]8a. the loop at work[/] (the gateway serves the shifted traffic, its outcomes arrive "
                          "as labels; events as they happen):")
            first, mark = follow(ws, mark)
            second, mark = second_round(ws, mark)
        finally:
            background.stop()
        console.print(f"loop: round 1 ended in {first.split('.')[-1]}, round 2 in {second.split('.')[-1]}; "
                      f"{background.sent} requests served meanwhile")

        kinds = Counter(e.kind.split(".", 1)[0] for e in st.list_events(ws.catalog, limit=None))
        console.print("\nevent log: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) + " events")
        summary(ws, queued[0] if queued else None)
        console.print("\n[green]demo finished[/]")
        if serve is not None:
            serve_forever(ws, serve)
        ws.close()
        return root
    finally:
        if not keep and directory is None:
            shutil.rmtree(root, ignore_errors=True)
