"""Benchmarks of the models layer; appends its figures to BENCHMARKS.md under "## Models".

Measured, each against its target:

1. logging 10,000 metric points through ``start_run`` (buffered, bulk writes): ≤ 1 s;
2. listing and filtering 10,000 runs by a metric: ≤ 200 ms;
   both on SQLite and on PostgreSQL (a fresh database, dropped afterwards);
3. ``train`` on a 1M-row training set against the bare ``estimator.fit`` plus
   holdout evaluation on the same, already prepared, data in the same process: ≤ 1.3x.

Usage::

    PYTHONPATH=src python bench/models_bench.py [--rows 1000000] [--postgres URL] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import strataml as st
from strataml.models import _tables as schema
from strataml.models import list_runs

ROOT = Path(__file__).resolve().parents[1]


def loans(n: int, seed: int = 0) -> pa.Table:
    """Synthetic labelled loans (numeric and categorical inputs, a timestamp, a key)."""
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(8, 0.6, n)
    age = rng.integers(18, 80, n)
    income = rng.lognormal(10, 0.5, n)
    score = rng.normal(600, 80, n)
    country = rng.choice(np.array(["US", "DE", "FR", "GB"]), n)
    logit = 0.9 * np.log(amount / 3000) - 0.03 * (age - 45) - 0.8 * np.log(income / 22000) - 0.01 * (score - 600) + (country == "FR") * 0.7
    y = (rng.random(n) < 1 / (1 + np.exp(-(logit - 1.2)))).astype(np.int64)
    ts = np.datetime64(dt.datetime(2026, 1, 1), "s") + np.sort(rng.integers(0, 180 * 86400, n)).astype("timedelta64[s]")
    ids = np.char.add("L", np.arange(n).astype(str))
    return pa.table({
        "loan_id": pa.array(ids, pa.string()), "ts": pa.array(ts, pa.timestamp("s")), "amount": amount, "age": age,
        "income": income, "score": score, "country": pa.array(country, pa.string()), "defaulted": y,
    })


LOANS = st.Contract("loans", key="loan_id", timestamp="ts", columns=[
    st.Column("loan_id", "string"), st.Column("ts", "timestamp"), st.Column("amount", "float"), st.Column("age", "int"),
    st.Column("income", "float"), st.Column("score", "float"), st.Column("country", "string"), st.Column("defaulted", "int"),
])


def workspace(root: Path, catalog: str | None) -> st.Workspace:
    st.Workspace.init(root, example=False).close()
    return st.Workspace.open(root, catalog=catalog) if catalog else st.Workspace.open(root)


def bench_logging(ws: st.Workspace, points: int = 10_000) -> float:
    list_runs(ws, limit=1)  # connect first: the figure is logging, not opening the database
    t0 = time.perf_counter()
    with st.start_run("bench-logging", workspace=ws) as run:
        for i in range(points):
            run.log_metric("loss", 1.0 / (i + 1), step=i)
    seconds = time.perf_counter() - t0
    assert len(st.models.metric_history(ws, run.id, "loss")) == points
    return seconds


def seed_runs(ws: st.Workspace, n: int = 10_000) -> None:
    """Insert ``n`` finished runs with params and metrics in bulk (setup, not measured)."""
    rng = np.random.default_rng(0)
    now = dt.datetime.now(dt.UTC)
    runs, latest, params = [], [], []
    for i in range(n):
        rid = uuid.uuid4().hex
        auc, loss = float(rng.uniform(0.5, 0.95)), float(rng.uniform(0.1, 0.7))
        p = {"num_leaves": int(rng.integers(8, 128)), "learning_rate": round(float(rng.uniform(0.01, 0.3)), 4)}
        runs.append({"id": rid, "parent_id": None, "name": "bench", "kind": "trial", "status": "finished",
                     "started_at": now - dt.timedelta(seconds=n - i), "ended_at": now, "params": p,
                     "metrics": {"roc_auc": auc, "log_loss": loss}, "tags": {}, "lineage": {}, "timings": {}, "error": None})
        latest += [{"run_id": rid, "key": "roc_auc", "value": auc}, {"run_id": rid, "key": "log_loss", "value": loss}]
        params += [{"run_id": rid, "key": k, "value": str(v)} for k, v in p.items()]
    with ws.catalog.write() as conn:
        conn.execute(schema.runs.insert(), runs)
        conn.execute(schema.run_latest_metrics.insert(), latest)
        conn.execute(schema.run_params.insert(), params)


def bench_listing(ws: st.Workspace) -> dict[str, float]:
    seed_runs(ws)
    out: dict[str, float] = {}
    cases = {
        "list all 10,000": {"limit": None},
        "filter roc_auc>=0.9": {"metric_filters": ["roc_auc>=0.9"], "limit": None},
        "filter roc_auc>=0.6 and param": {"metric_filters": ["roc_auc>=0.6"], "param_filters": ["num_leaves=64"], "limit": None},
        "top 100 by roc_auc": {"order_by": "roc_auc", "limit": 100},
    }
    for label, kw in cases.items():
        list_runs(ws, **kw)  # type: ignore[arg-type]  # warm the connection pool
        samples = []
        for _ in range(5):
            t0 = time.perf_counter()
            rows = list_runs(ws, **kw)  # type: ignore[arg-type]
            samples.append(time.perf_counter() - t0)
        assert rows
        out[label] = statistics.median(samples)
    return out


def fresh_postgres(url: str) -> tuple[str, Any]:
    import psycopg

    name = f"strata_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return url.rsplit("/", 1)[0] + "/" + name, drop


def bench_train(root: Path, rows: int, reps: int, threads: int = 1) -> dict[str, Any]:
    from lightgbm import LGBMClassifier
    from sklearn.metrics import log_loss, roc_auc_score

    from strataml.models._fitting import configure
    from strataml.models._train import load_training_data, prepare_data, split_indices

    ws = workspace(root, None)
    pq.write_table(loans(rows), root / "loans.parquet")
    st.ingest(ws, str(root / "loans.parquet"), contract=LOANS)
    model = st.Model("bench", labels="loans", target="defaulted", estimator=LGBMClassifier(n_estimators=100, n_jobs=threads),
                     metrics=["roc_auc", "log_loss"])
    # the baseline: the same estimator configuration, fitted on frames already in memory
    data = load_training_data(ws, model)
    tr, ho, _ = split_indices(data, model)
    prep = prepare_data(data, model, tr, ho)

    def bare() -> float:
        est = configure(model.estimator, {}, model.seed)
        t0 = time.perf_counter()
        est.fit(prep.x_train, prep.y_train)
        p = est.predict_proba(prep.x_hold)[:, 1]
        roc_auc_score(prep.y_hold, p), log_loss(prep.y_hold, p)
        return time.perf_counter() - t0

    def full(i: int) -> tuple[float, dict[str, float]]:
        # a fresh model name each time: every call does the same work (no champion to compare)
        m = st.Model(f"bench_{i}", labels="loans", target="defaulted", estimator=model.estimator, metrics=model.metrics)
        t0 = time.perf_counter()
        result = st.train(ws, m)
        assert result.version == 1
        return time.perf_counter() - t0, result.timings

    bares, fulls = [], []
    for i in range(reps):
        bares.append(bare())
        fulls.append(full(i))
    ws.close()
    best = min(fulls, key=lambda x: x[0])
    med_ratio = statistics.median(f[0] for f in fulls) / statistics.median(bares)
    return {"bare": min(bares), "train": best[0], "ratio": best[0] / min(bares), "median_ratio": med_ratio, "timings": best[1],
            "samples": {"bare": bares, "train": [f[0] for f in fulls]}, "reps": reps}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--postgres", default=os.environ.get("STRATA_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--reps", type=int, default=3, help="interleaved repetitions of the training comparison")
    ap.add_argument("--threads", type=int, default=1, help="estimator threads (1 keeps timings stable on a shared machine)")
    ap.add_argument("--no-write", action="store_true", help="print only; do not append to BENCHMARKS.md")
    args = ap.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="strata-bench-models-") as tmp:
        for backend in ("sqlite", "postgresql"):
            drop = None
            catalog = None
            if backend == "postgresql":
                try:
                    catalog, drop = fresh_postgres(args.postgres)
                except Exception as exc:  # no server: report it instead of a number
                    results[backend] = {"error": str(exc).splitlines()[0]}
                    continue
            try:
                ws = workspace(Path(tmp) / f"ws_{backend}", catalog)
                results[backend] = {"logging": bench_logging(ws), "listing": bench_listing(ws)}
                ws.close()
            finally:
                if drop:
                    drop()
            print(backend, results[backend], flush=True)
        results["train"] = bench_train(Path(tmp) / "ws_train", args.rows, args.reps, args.threads)
        print("train", results["train"], flush=True)
    report = render(results, args.rows, args.reps, args.threads)
    print(report)
    if not args.no_write:
        from record import record

        record("Models", report)


def render(r: dict[str, Any], rows: int, reps: int, threads: int) -> str:
    ok = lambda v, limit: "✅" if v <= limit else "❌"  # noqa: E731
    lines = [
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()} ({os.cpu_count()} cores shared with other work, "
        f"load average {os.getloadavg()[0]:.1f} at the end), "
        f"Python {platform.python_version()}. Reproduce: `PYTHONPATH=src python bench/models_bench.py --rows {rows} --reps {reps} --threads {threads}`.",
        "",
        "| measurement | SQLite | PostgreSQL | target |",
        "|---|---|---|---|",
    ]
    sq, pg = r.get("sqlite", {}), r.get("postgresql", {})

    def cell(d: dict[str, Any], key: str, sub: str | None, limit: float, unit: str) -> str:
        if "error" in d:
            return f"not run ({d['error']})"
        v = d[key] if sub is None else d[key][sub]
        return f"{v * (1000 if unit == 'ms' else 1):.{0 if unit == 'ms' else 3}f} {unit} {ok(v, limit)}"

    lines.append(f"| log 10,000 metric points (one run) | {cell(sq, 'logging', None, 1.0, 's')} | {cell(pg, 'logging', None, 1.0, 's')} | ≤ 1 s |")
    for label in ("list all 10,000", "filter roc_auc>=0.9", "filter roc_auc>=0.6 and param", "top 100 by roc_auc"):
        lines.append(f"| runs: {label} (10,000 runs, median of 5) | {cell(sq, 'listing', label, 0.2, 'ms')} | {cell(pg, 'listing', label, 0.2, 'ms')} | ≤ 200 ms |")
    t = r["train"]
    lines += [
        "",
        f"Training overhead on {rows:,} rows (LightGBM, 100 trees, {threads} thread(s), time-ordered 80/20 split, best of {t['reps']} each, interleaved):",
        "",
        "| measurement | seconds |",
        "|---|---|",
        f"| bare `estimator.fit` + holdout predict + roc_auc/log_loss (frames already in memory) | {t['bare']:.2f} |",
        f"| `train()` (what `strata train` runs): load, split, fit, serialise, reload, evaluate, gate, register, record | {t['train']:.2f} |",
        f"| ratio of the best runs | **{t['ratio']:.2f}x** {ok(t['ratio'], 1.3)} (target ≤ 1.3x) |",
        f"| ratio of the medians | **{t['median_ratio']:.2f}x** {ok(t['median_ratio'], 1.3)} (target ≤ 1.3x) |",
        "",
        "Phase timings of the best train run: " + ", ".join(f"{k[:-2]} {v:.2f}s" for k, v in t["timings"].items()) + ".",
        "All samples (s): bare " + ", ".join(f"{x:.1f}" for x in t["samples"]["bare"])
        + "; train " + ", ".join(f"{x:.1f}" for x in t["samples"]["train"]) + ".",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
