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
from strataml.data import Column, Contract, get_version, ingest, quarantine_rows
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


def _features_step(ws: Workspace, root: Path) -> None:
    """Features: a view over the transactions, a point-in-time training set, the online store."""
    import datetime as dt

    import numpy as np

    import strataml as st
    from strataml.features import (
        apply,
        build_training_set,
        check_skew,
        get_online_features,
        materialize,
    )

    user = st.Entity("user", key="user_id")
    user_spend = st.FeatureView(
        "user_spend", entity=user, source="transactions", ttl="30d",
        features=[
            st.Feature("last_amount", expr="amount"),
            st.Feature("spend_24h", agg="sum", column="amount", window="24h"),
            st.Feature("tx_count_7d", agg="count", window="7d"),
            st.Feature("avg_amount_30d", agg="mean", column="amount", window="30d"),
        ],
    )
    ws.definitions.add(user_spend)
    registered = apply(ws)
    console.print(f"\n[bold]4. features[/] registered view user_spend@{registered[0]['version']}")

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
    ingest(ws, str(synth.write_csv(labels, root / "fraud_labels.csv")), contract=labels_contract)
    ts = build_training_set(ws, "fraud_labels", ["user_spend"])
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

    as_of = get_version(ws, "transactions@latest").to_duckdb().aggregate("max(ts)").fetchall()[0][0] + dt.timedelta(seconds=1)
    m = materialize(ws, ["user_spend"], as_of=as_of)["views"][0]
    console.print(f"materialised {m['entities']:,} users to the online store as of {as_of} ({m['seconds']}s)")
    online = get_online_features(ws, ["user_spend"], [{"user_id": "u42"}, {"user_id": "nobody"}])
    o = Table(title="online lookup", title_justify="left")
    o.add_column("user_id")
    for col in online[0]:
        o.add_column(col)
    for key, row in zip(("u42", "nobody"), online, strict=True):
        o.add_row(key, *("—" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v) for v in row.values()))
    console.print(o)
    skew = check_skew(ws, "user_spend", sample=100)
    console.print(f"training/serving skew over {skew['checked']} users: {len(skew['mismatches'])} mismatches")


FRAUD_CASES = Contract(
    "fraud_cases", key="tx_id", timestamp="ts",
    columns=[
        Column("tx_id", "string"), Column("user_id", "string"), Column("ts", "timestamp"),
        Column("amount", "float"), Column("country", "string"), Column("is_fraud", "int"),
    ],
)


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


def demo_models(ws: Workspace, root: Path) -> None:
    """Train a champion with a small tuning study, then show the registry and the model's lineage."""
    import pyarrow.parquet as pq
    from lightgbm import LGBMClassifier

    import strataml as st
    from strataml.models import get_model, load_model, model_lineage, train

    views = [v.name for v in ws.definitions.all("feature_view") if v.name == "user_spend"]
    console.print(
        "\n[bold]5. models[/] label 8,000 transactions (fraud cases), tune (5 trials), train"
        + (" on the user_spend view plus amount and country" if views else " on amount and country") + ", gate, register"
    )
    table = fraud_labels(get_version(ws, "transactions@latest").to_arrow(), 8_000)
    pq.write_table(table, root / "fraud_cases.parquet")
    ingest(ws, str(root / "fraud_cases.parquet"), contract=FRAUD_CASES)
    model = st.Model(
        "fraud", features=views, labels="fraud_cases", target="is_fraud", columns=["amount", "country"],
        estimator=LGBMClassifier(n_estimators=60, n_jobs=1), metrics=["roc_auc", "log_loss"],
        gate=st.Gate(min={"roc_auc": 0.6}, max_drop_vs_champion={"roc_auc": 0.01}),
        tune=st.Tune(params={"num_leaves": ("int", 4, 32, "log"), "learning_rate": ("float", 0.02, 0.2, "log")}, trials=5),
    )
    ws.definitions.add(model)
    result = train(ws, "fraud")
    t = Table(title=f"training run {result.run[:12]}: gate {result.gate['status']}", title_justify="left")
    for col in ("metric", "holdout"):
        t.add_column(col)
    for k, val in result.metrics.items():
        t.add_row(k, f"{val:.4f}")
    console.print(t)
    if result.tuning:
        tu = result.tuning
        console.print(f"tuning: {tu['trials']} child runs, best {tu['metric']} {tu['best_value']:.4f} with {tu['best_params']}")
    reg = get_model(ws, "fraud")
    r = Table(title="registry: fraud", title_justify="left")
    for col in ("version", "aliases", "sha256", "roc_auc", "run"):
        r.add_column(col)
    for v in reg["versions"]:
        aliases = ", ".join(a for a, n in reg["aliases"].items() if n == v["version"])
        r.add_row(f"v{v['version']}", aliases, v["sha256"][:16] + "…", f"{v['metrics'].get('roc_auc', 0):.4f}", (v["run"] or "")[:12])
    console.print(r)
    lin = model_lineage(ws, "fraud")
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
    champion = load_model(ws, "fraud")
    rows = get_version(ws, lin["training_set"]).to_arrow() if lin["training_set"] else table
    scores = champion.predict(rows.slice(rows.num_rows - 3))
    console.print("champion scores for the 3 latest labelled transactions: " + ", ".join(f"{p:.3f}" for p in scores))


def demo_serving(ws: Workspace) -> None:
    """Serve the champion on a free loopback port, send real HTTP traffic, show the stats."""
    import asyncio
    import socket
    import threading
    import time

    import httpx
    import uvicorn

    from strataml.serving import (
        GatewayConfig,
        RegistryModels,
        create_app,
        create_key,
        prediction_stats,
        set_traffic,
    )
    from strataml.serving.audit import log_dir

    console.print("\n[bold]6. serving[/] the fraud champion behind the gateway (auth, rate limits, audit log, metrics)")
    key_rec, key = create_key(ws.catalog, ["predict:fraud"], name="demo")
    set_traffic(ws.catalog, "fraud", {"rate": 2000, "burst": 2000, "default": 0.0}, reason="demo launch")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    app = create_app(ws, None, GatewayConfig(preload=("fraud",)))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        champion = RegistryModels(ws).get("fraud", "champion")
        fields = list(champion.entity_keys) + list(champion.request_fields) if champion.views else champion.feature_names()
        labels = get_version(ws, ws.definitions.get("model", "fraud").labels).to_arrow()  # the model's own labelled rows
        rows = labels.slice(0, 300).select(fields).to_pylist()
        headers = {"authorization": f"Bearer {key}"}

        async def traffic() -> list[int]:
            limits = httpx.Limits(max_connections=8)
            async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=10) as client:
                sem = asyncio.Semaphore(8)

                async def one(row: dict[str, object]) -> int:
                    async with sem:
                        r = await client.post("/v1/models/fraud/predict", json={"instances": [row]})
                        return r.status_code

                return list(await asyncio.gather(*(one(r) for r in rows)))

        t0 = time.perf_counter()
        codes = asyncio.run(traffic())
        took = time.perf_counter() - t0
        console.print(f"sent {len(codes)} predictions over 8 connections in {took:.2f}s: " + ", ".join(f"{c}: {codes.count(c)}" for c in sorted(set(codes))))
        sample = httpx.post(f"{base}/v1/models/fraud/predict", json={"instances": rows[:3]}, headers=headers).json()
        console.print(f"POST /v1/models/fraud/predict → v{sample['version']}: " + ", ".join(f"{p:.3f}" for p in sample["predictions"]) + f"  (request {sample['request_id'][:12]}…)")
        anon = httpx.post(f"{base}/v1/models/fraud/predict", json={"instances": rows[:1]})
        bad = httpx.post(f"{base}/v1/models/fraud/predict", json={"instances": [{**rows[0], "amount": "lots"}]}, headers=headers)
        console.print(f"without a key → {anon.status_code}; amount as text → {bad.status_code}: {bad.json()['error']['message']}")
        metrics = [ln for ln in httpx.get(f"{base}/metrics").text.splitlines() if ln.startswith("strata_requests_total")]
        console.print("metrics: " + "; ".join(metrics[:3]))
    finally:
        server.should_exit = True
        thread.join(30)
    stats = prediction_stats(log_dir(ws.state_dir), "fraud")
    t = Table(title=f"prediction log (strata predictions stats --model fraud), key {key_rec.id}", title_justify="left")
    for col in ("count", "by_version", "p50 ms", "p95 ms", "p99 ms", "degraded"):
        t.add_column(col, justify="right")
    t.add_row(f"{stats['count']:,}", str(stats["by_version"]), str(stats["p50"]), str(stats["p95"]), str(stats["p99"]), str(stats["degraded"]))
    console.print(t)


def demo_monitoring(ws: Workspace) -> None:
    """Service levels of the demo's traffic and an error-rate alert evaluated once.

    The distribution shift midway, delayed labels and drift/quality figures are not part
    of the demo yet (marked place: drift via ``monitoring.drift`` and quality via
    ``monitoring.quality`` go here)."""
    from strataml.monitoring import AlertRule, check_alerts, slo

    console.print("\n[bold]monitoring[/]")
    t = slo(ws, "fraud", window="1h", bucket="1h").totals()
    console.print(f"slo fraud: {t['requests']} requests, {t['errors']} errors, worst p99 {t['p99_max']} ms")
    rule = AlertRule("fraud-errors", model="fraud", metric="error_rate", threshold=0.001, severity="warning")
    for e in check_alerts(ws, [rule]):
        console.print(f"alert {e.rule} {e.kind}: {e.message}")


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
        for col in ("_errors", "tx_id", "amount", "country", "refund"):
            q.add_column(col)
        for row in sample:
            q.add_row(*(", ".join(row[c]) if c == "_errors" else str(row[c]) for c in ("_errors", "tx_id", "amount", "country", "refund")))
        console.print(q)

        _features_step(ws, root)

        demo_models(ws, root)
        demo_serving(ws)
        demo_monitoring(ws)

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
