"""``strata demo``: the whole system end to end on generated data, in a temporary workspace."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

import strataml as st
from strataml import synth

console = Console()


def _report_table(title: str, r: st.IngestReport) -> None:
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


def _features_step(ws: st.Workspace, root: Path) -> None:
    """Features: a view over the transactions, a point-in-time training set, the online store."""
    import datetime as dt

    import numpy as np

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
    registered = st.apply(ws)
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


FRAUD_CASES = st.Contract(
    "fraud_cases", key="tx_id", timestamp="ts",
    columns=[
        st.Column("tx_id", "string"), st.Column("user_id", "string"), st.Column("ts", "timestamp"),
        st.Column("amount", "float"), st.Column("country", "string"), st.Column("is_fraud", "int"),
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


def demo_models(ws: st.Workspace, root: Path) -> None:
    """Train a champion with a small tuning study, then show the registry and the model's lineage."""
    import pyarrow.parquet as pq
    from lightgbm import LGBMClassifier

    views = [v.name for v in ws.definitions.all("feature_view") if v.name == "user_spend"]
    console.print(
        "\n[bold]5. models[/] label 8,000 transactions (fraud cases), tune (5 trials), train"
        + (" on the user_spend view plus amount and country" if views else " on amount and country") + ", gate, register"
    )
    table = fraud_labels(st.dataset("transactions@latest", ws).to_arrow(), 8_000)
    pq.write_table(table, root / "fraud_cases.parquet")
    st.ingest(ws, str(root / "fraud_cases.parquet"), contract=FRAUD_CASES)
    model = st.Model(
        "fraud", features=views, labels="fraud_cases", target="is_fraud", columns=["amount", "country"],
        estimator=LGBMClassifier(n_estimators=60, n_jobs=1), metrics=["roc_auc", "log_loss"],
        gate=st.Gate(min={"roc_auc": 0.6}, max_drop_vs_champion={"roc_auc": 0.01}),
        tune=st.Tune(params={"num_leaves": ("int", 4, 32, "log"), "learning_rate": ("float", 0.02, 0.2, "log")}, trials=5),
    )
    ws.definitions.add(model)
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


def _start_gateway(app: Any, port: int = 0) -> tuple[Any, Any, int]:
    """Run an ASGI app with uvicorn on loopback in a thread; returns (server, thread, port)."""
    import socket
    import threading
    import time

    import uvicorn

    if not port:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    return server, thread, port


def shifted(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The second half of the demo's traffic: amounts three times larger, a country never seen in training."""
    return [{**r, "amount": float(r["amount"]) * 3.0, "country": "JP" if i % 3 == 0 else r["country"]} for i, r in enumerate(rows)]


def demo_serving(ws: st.Workspace) -> list[tuple[str, int]]:
    """Serve the champion on a free loopback port and send real HTTP traffic whose distribution shifts midway.

    Returns the request id and true label of each prediction of the first half (their labels
    arrive later, in :func:`demo_monitoring`)."""
    import asyncio
    import time

    import httpx

    console.print("\n[bold]6. serving[/] the fraud champion behind the gateway (auth, rate limits, audit log, metrics)")
    key_rec, key = st.create_key(ws.catalog, ["predict:fraud"], name="demo")
    st.set_traffic(ws.catalog, "fraud", {"rate": 2000, "burst": 2000, "default": 0.0}, reason="demo launch")
    server, thread, port = _start_gateway(st.create_app(ws))
    base = f"http://127.0.0.1:{port}"
    firsts: list[tuple[str, int]] = []
    try:
        model = ws.definitions.get("model", "fraud")
        fields = (["user_id"] if model.features else []) + list(model.columns)
        labelled = st.dataset(model.labels, ws).to_arrow().slice(0, 300)  # the model's own labelled rows
        rows = labelled.select(fields).to_pylist()
        truth = labelled["is_fraud"].to_pylist()
        half = len(rows) // 2
        headers = {"authorization": f"Bearer {key}"}

        async def traffic(batch: list[dict[str, Any]]) -> list[tuple[int, str]]:
            limits = httpx.Limits(max_connections=8)
            async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=10) as client:
                sem = asyncio.Semaphore(8)

                async def one(row: dict[str, Any]) -> tuple[int, str]:
                    async with sem:
                        r = await client.post("/v1/models/fraud/predict", json={"instances": [row]})
                        return r.status_code, (r.json().get("request_id", "") if r.status_code == 200 else "")

                return list(await asyncio.gather(*(one(r) for r in batch)))

        t0 = time.perf_counter()
        before = asyncio.run(traffic(rows[:half]))
        after = asyncio.run(traffic(shifted(rows[half:])))
        took = time.perf_counter() - t0
        codes = [c for c, _ in before + after]
        firsts = [(rid, int(y)) for (c, rid), y in zip(before, truth[:half], strict=True) if c == 200]
        console.print(f"sent {len(codes)} predictions over 8 connections in {took:.2f}s: " + ", ".join(f"{c}: {codes.count(c)}" for c in sorted(set(codes))))
        console.print(f"midway the traffic shifts: the last {len(after)} have amounts three times larger and a third come from JP, a country training never saw")
        sample = httpx.post(f"{base}/v1/models/fraud/predict", json={"instances": rows[:3]}, headers=headers).json()
        console.print(f"POST /v1/models/fraud/predict → v{sample['version']}: " + ", ".join(f"{p:.3f}" for p in sample["predictions"]) + f"  (request {sample['request_id'][:12]}…)")
        anon = httpx.post(f"{base}/v1/models/fraud/predict", json={"instances": rows[:1]})
        bad = httpx.post(f"{base}/v1/models/fraud/predict", json={"instances": [{**rows[0], "amount": "lots"}]}, headers=headers)
        console.print(f"without a key → {anon.status_code}; amount as text → {bad.status_code}: {bad.json()['error']['message']}")
        metrics = [ln for ln in httpx.get(f"{base}/metrics").text.splitlines() if ln.startswith("strata_requests_total")]
        console.print("metrics: " + "; ".join(metrics[:3]))
        console.print(f"key {key_rec.id} (predict:fraud)")
    finally:
        server.should_exit = True
        thread.join(30)
    return firsts


LABEL_OUTCOMES = st.Contract(
    "fraud_outcomes", key="request_id",
    columns=[st.Column("request_id", "string"), st.Column("is_fraud", "int")],
)
DRIFT_ALERT = st.Alert("fraud-amount-drift", model="fraud", metric="feature_drift", feature="amount", threshold=0.2,
                       window="1h", severity="warning", description="the amounts sent to fraud moved away from training")


def demo_monitoring(ws: st.Workspace, root: Path, outcomes: list[tuple[str, int]]) -> None:
    """What monitoring finds in the shifted traffic: drift, quality with delayed labels, an alert."""
    from strataml import monitoring

    console.print("\n[bold]7. monitoring[/] drift against training, quality as labels arrive, alerts")
    # the outcomes of the first half arrive later, as a dataset keyed by the gateway's request id
    path = root / "fraud_outcomes.parquet"
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"request_id": [r for r, _ in outcomes], "is_fraud": [y for _, y in outcomes]}), path)
    st.ingest(ws, str(path), contract=LABEL_OUTCOMES)

    d = monitoring.drift(ws, "fraud")
    t = Table(title=f"drift: {d.current} vs training ({d.rows['current']} vs {d.rows['reference']} rows), "
                    f"share {d.drift_share if isinstance(d.drift_share, str) else f'{d.drift_share:.2f}'}", title_justify="left")
    for col in ("feature", "test", "statistic", "p-value", "PSI", "drifted"):
        t.add_column(col, justify="right" if col not in ("feature", "test") else "left")

    def num(v: Any) -> str:
        return "—" if v is None else f"{v:.3g}"

    for name, f in d.features.items():
        t.add_row(name, f.get("test") or "—", num(f.get("statistic")), num(f.get("p_value")), num(f.get("psi")),
                  "[red]yes[/]" if f["drifted"] else "no")
    console.print(t)
    console.print("drifted features: " + (", ".join(d.drifted_features) or "none"))

    q = monitoring.quality(ws, "fraud", "fraud_outcomes")
    qt = Table(title=f"quality of fraud's live predictions (labels fraud_outcomes, joined by {q.join})", title_justify="left")
    for col in ("version", "predictions", "labelled", "roc_auc", "estimated roc_auc", "accuracy", "estimated accuracy"):
        qt.add_column(col, justify="right")
    for row in q.rows:
        est = row.get("estimated") or {}
        qt.add_row(f"v{row['version']}", str(row["predictions"]), str(row["labelled"]), num(row.get("roc_auc")),
                   num(est.get("roc_auc")), num(row.get("accuracy")), num(est.get("accuracy")))
    console.print(qt)

    totals = monitoring.slo(ws, "fraud", window="1h", bucket="1h").totals()
    console.print(f"slo fraud: {totals['requests']} requests, {totals['errors']} errors, worst p99 {totals['p99_max']} ms")
    ws.definitions.add(DRIFT_ALERT)  # as if declared in definitions.py
    events = monitoring.check_alerts(ws)
    for e in events:
        console.print(f"[bold yellow]{e.severity} alert {e.rule} {e.kind}[/] (rule st.Alert in definitions): {e.message}")
    if not events:
        console.print("no alert fired")


def serve_forever(ws: st.Workspace, port: int) -> None:
    """Keep the gateway with the dashboard at /ui running until Ctrl-C or SIGTERM."""
    import uvicorn

    from strataml.cli.dashboard import dashboard_mounts

    _, key = st.create_key(ws.catalog, ["read"], name="demo-dashboard")
    app = st.create_app(ws, mounts=dashboard_mounts(ws))
    console.print(f"\n[bold]dashboard[/] http://127.0.0.1:{port}/ui  log in with the key (scope read):\n{key}")
    console.print("the gateway keeps serving at the same address; Ctrl-C or SIGTERM stops it", highlight=False)
    uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)).run()


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
        _report_table("first batch", r1)

        # The second export overlaps the first: 10% of its rows are re-sent duplicates.
        overlap = first.slice(rows - rows // 10)
        second = pa.concat_tables([overlap, synth.transactions(rows // 2, seed=2, start_id=rows, bad_fraction=0.01)])
        path2 = synth.write_csv(second, root / "transactions_day2.csv")
        console.print(f"\n[bold]2. append[/] {path2.name} ({second.num_rows:,} rows: {overlap.num_rows:,} re-sent, the rest new)")
        r2 = st.ingest(ws, str(path2), contract="transactions")
        _report_table("second batch", r2)
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

        _features_step(ws, root)

        demo_models(ws, root)
        outcomes = demo_serving(ws)
        demo_monitoring(ws, root, outcomes)

        ev = Table(title="event log", title_justify="left")
        for col in ("id", "kind", "subject", "payload"):
            ev.add_column(col)
        for e in st.list_events(ws.catalog, limit=10):
            ev.add_row(str(e.id), e.kind, e.subject, str(e.payload)[:70])
        console.print(ev)
        console.print("\n[green]demo finished[/]")
        if serve is not None:
            serve_forever(ws, serve)
        ws.close()
        return root
    finally:
        if not keep and directory is None:
            shutil.rmtree(root, ignore_errors=True)
