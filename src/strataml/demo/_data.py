"""Chapters 1-4: ingest with a contract and quarantine, an append with re-sent rows, the versioned dataset, features."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from rich.table import Table

import strataml as st
from strataml import synth
from strataml.demo._declare import FEATURES, declare
from strataml.demo._show import console


def features_step(ws: st.Workspace, root: Path) -> None:
    """Features: a view over the transactions, a point-in-time training set, the online store."""
    import datetime as dt

    import numpy as np

    console.print("\n[bold]4. features[/] definitions.py gains a feature view:")
    declare(ws, FEATURES)
    registered = st.apply(ws)
    console.print(f"registered view user_spend@{registered[0]['version']}")

    # labels: which user was flagged when (generated), ingested as a dataset like any other
    rng = np.random.default_rng(7)
    n = 2_000
    start = dt.datetime(2026, 1, 1)
    labels = pa.table({
        "user_id": [f"u{i}" for i in rng.integers(0, 1000, n)],
        "ts": [(start + dt.timedelta(hours=float(h))).isoformat() for h in rng.uniform(24, 60 * 24, n)],
        "is_fraud": rng.integers(0, 2, n).astype(str),
    })
    labels_contract = st.Contract(
        "fraud_labels", timestamp="ts",
        columns=[st.Column("user_id", "string"), st.Column("ts", "timestamp"), st.Column("is_fraud", "int")],
    )
    st.ingest(ws, str(synth.write_csv(labels, root / "fraud_labels.csv")), contract=labels_contract)
    ts = st.training_set(ws, "fraud_labels", ["user_spend"])
    console.print(
        f"training set {ts.ref}: {ts.table.num_rows:,} label rows, features {', '.join(ts.feature_columns)} "
        f"(each from data strictly before its label's time; {ts.seconds:.2f}s)"
    )
    t = Table(title="first training rows", title_justify="left")
    for col in ts.table.column_names:
        t.add_column(col)
    for row in ts.table.slice(0, 4).to_pylist():
        t.add_row(*("—" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v) for v in row.values()))
    console.print(t)

    as_of = st.dataset("transactions@latest", ws).to_duckdb().aggregate("max(ts)").fetchall()[0][0] + dt.timedelta(seconds=1)
    m = st.materialize(ws, ["user_spend"], as_of=as_of)["views"][0]
    console.print(f"materialised {m['entities']:,} users to the online store as of {as_of} ({m['seconds']}s)")
    online = st.get_online_features(ws, ["user_spend"], [{"user_id": "u42"}, {"user_id": "nobody"}])
    o = Table(title="online lookup", title_justify="left")
    o.add_column("user_id")
    for col in online[0]:
        o.add_column(col)
    for key, row in zip(("u42", "nobody"), online, strict=True):
        o.add_row(key, *("—" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v) for v in row.values()))
    console.print(o)
    skew = st.check_skew(ws, "user_spend", sample=100)
    console.print(f"training/serving skew over {skew['checked']} users: {len(skew['mismatches'])} mismatches")

