"""Chapter 7: drift against training, quality once labels arrive, SLOs and an alert."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from rich.table import Table

import strataml as st
from strataml.demo._declare import MONITORING, declare
from strataml.demo._show import console, num


def demo_monitoring(ws: st.Workspace, root: Path, outcomes: list[tuple[str, int]]) -> None:
    """What monitoring finds in the shifted traffic: drift, quality with delayed labels, an alert."""
    console.print("\n[bold]7. monitoring[/] drift against training, quality as labels arrive, alerts")
    # the outcomes of the first half arrive later, as a dataset keyed by the gateway's request id
    path = root / "fraud_outcomes.parquet"
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"request_id": [r for r, _ in outcomes], "is_fraud": [y for _, y in outcomes]}), path)
    declare(ws, MONITORING)
    st.ingest(ws, str(path), contract="fraud_outcomes")

    d = st.drift(ws, "fraud")
    t = Table(title=f"drift: {d.current} vs training ({d.rows['current']} vs {d.rows['reference']} rows), "
                    f"share {d.drift_share if isinstance(d.drift_share, str) else f'{d.drift_share:.2f}'}", title_justify="left")
    for col in ("feature", "test", "statistic", "p-value", "PSI", "drifted"):
        t.add_column(col, justify="right" if col not in ("feature", "test") else "left")

    for name, f in d.features.items():
        t.add_row(name, f.get("test") or "—", num(f.get("statistic")), num(f.get("p_value")), num(f.get("psi")),
                  "[red]yes[/]" if f["drifted"] else "no")
    console.print(t)
    console.print("drifted features: " + (", ".join(d.drifted_features) or "none"))

    q = st.quality(ws, "fraud", "fraud_outcomes")
    qt = Table(title=f"quality of fraud's live predictions (labels fraud_outcomes, joined by {q.join})", title_justify="left")
    for col in ("version", "predictions", "labelled", "roc_auc", "estimated roc_auc", "accuracy", "estimated accuracy"):
        qt.add_column(col, justify="right")
    for row in q.rows:
        est = row.get("estimated") or {}
        qt.add_row(f"v{row['version']}", str(row["predictions"]), str(row["labelled"]), num(row.get("roc_auc")),
                   num(est.get("roc_auc")), num(row.get("accuracy")), num(est.get("accuracy")))
    console.print(qt)

    totals = st.slo(ws, "fraud", window="1h", bucket="1h").totals()
    console.print(f"slo fraud: {totals['requests']} requests, {totals['errors']} errors, worst p99 {totals['p99_max']} ms")
    events = st.check_alerts(ws)
    for e in events:
        console.print(f"[bold yellow]{e.severity} alert {e.rule} {e.kind}[/] (rule st.Alert in definitions): {e.message}")
    if not events:
        console.print("no alert fired")

