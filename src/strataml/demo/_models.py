"""Chapter 5: label transactions, tune and train a champion, the registry and the lineage."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from rich.table import Table

import strataml as st
from strataml.demo._declare import MODEL, declare
from strataml.demo._show import console


def fraud_labels(transactions: pa.Table, n: int, seed: int = 3) -> pa.Table:
    """Labelled transactions: fraud is likelier for large amounts, refunds and some countries."""
    import numpy as np
    import pyarrow.compute as pc

    rng = np.random.default_rng(seed)
    rows = transactions.take(np.sort(rng.choice(transactions.num_rows, min(n, transactions.num_rows), replace=False)))
    amount = rows["amount"].to_numpy(zero_copy_only=False)
    refund = pc.is_valid(rows["refund"]).to_numpy(zero_copy_only=False)
    country = rows["country"].to_numpy(zero_copy_only=False)
    logit = 1.3 * (np.log(amount) - 3.0) + 1.0 * refund + 0.8 * (country == "GB") - 2.5
    fraud = (rng.random(len(amount)) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return pa.table({
        "tx_id": rows["tx_id"], "user_id": rows["user_id"], "ts": rows["ts"], "amount": rows["amount"],
        "country": rows["country"], "is_fraud": fraud,
    })


def demo_models(ws: st.Workspace, root: Path) -> None:
    """Train a champion with a small tuning study, then show the registry and the model's lineage."""
    import pyarrow.parquet as pq

    console.print(
        "\n[bold]5. models[/] label 8,000 transactions (fraud cases), tune (5 trials), train on the user_spend view "
        "plus amount and country, gate, register; definitions.py gains:"
    )
    table = fraud_labels(st.dataset("transactions@latest", ws).to_arrow(), 8_000)
    pq.write_table(table, root / "fraud_cases.parquet")
    declare(ws, MODEL)
    st.ingest(ws, str(root / "fraud_cases.parquet"), contract="fraud_cases")
    result = st.train(ws, "fraud")
    t = Table(title=f"training run {result.run[:12]}: gate {result.gate['status']}", title_justify="left")
    for col in ("metric", "holdout"):
        t.add_column(col)
    for k, val in result.metrics.items():
        t.add_row(k, f"{val:.4f}")
    console.print(t)
    if result.tuning:
        tu = result.tuning
        console.print(f"tuning: {tu['trials']} child runs, best {tu['metric']} {tu['best_value']:.4f} with {tu['best_params']}")
    reg = st.get_model(ws, "fraud")
    r = Table(title="registry: fraud", title_justify="left")
    for col in ("version", "aliases", "sha256", "roc_auc", "run"):
        r.add_column(col)
    for v in reg["versions"]:
        aliases = ", ".join(a for a, n in reg["aliases"].items() if n == v["version"])
        r.add_row(f"v{v['version']}", aliases, v["sha256"][:16] + "…", f"{v['metrics'].get('roc_auc', 0):.4f}", (v["run"] or "")[:12])
    console.print(r)
    lin = st.model_lineage(ws, "fraud")
    li = Table(title=f"lineage of fraud v{lin['version']} (champion)", title_justify="left", show_header=False)
    li.add_column("what", style="bold")
    li.add_column("value")
    li.add_row("run", lin["run"]["id"] if lin["run"] else "—")
    if lin["training_set"]:
        li.add_row("training set", lin["training_set"])
    for view, version in lin["feature_views"].items():
        li.add_row(f"feature view {view}", str(version))
    for d in lin["datasets"]:
        li.add_row(f"dataset {d['ref']}", f"{d['rows']:,} rows, sha256 {d['sha256'][:16]}…, from {Path(d['source'] or '').name}")
    li.add_row("code", f"git {lin['code'].get('git_commit') or '—'}, definitions sha256 {(lin['code'].get('definitions_sha256') or '')[:16]}…")
    li.add_row("packages", ", ".join(f"{k} {v}" for k, v in lin["packages"].items() if k in ("python", "lightgbm", "scikit-learn", "strataml")))
    li.add_row("seed", str(lin["seed"]))
    console.print(li)
    champion = st.load_model(ws, "fraud")
    rows = st.dataset(lin["training_set"], ws).to_arrow() if lin["training_set"] else table
    scores = champion.predict(rows.slice(rows.num_rows - 3))
    console.print("champion scores for the 3 latest labelled transactions: " + ", ".join(f"{p:.3f}" for p in scores))

