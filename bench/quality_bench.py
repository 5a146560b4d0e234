"""The quality join: 1M logged predictions with 1M delayed labels, against pandas.

Builds a workspace with a trained binary classifier, writes a prediction log of N
lines (the gateway's format) and ingests N labels keyed by request_id, then times
``strataml.monitoring.quality`` (read the log, join, ROC AUC / log loss / precision /
recall / FPR per version; wall and CPU seconds) against the same join and figures in pandas (``read_json``
of the log, ``merge`` with the labels' Parquet, the same scikit-learn calls). Checks
both agree. Usage: ``PYTHONPATH=src python bench/quality_bench.py [--rows 1000000] [--no-record]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn import metrics as skm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record import record

import strataml as st


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    n = args.rows
    from lightgbm import LGBMClassifier

    from strataml.models import train
    from strataml.monitoring import quality

    with tempfile.TemporaryDirectory() as tmp:
        ws = st.Workspace.init(Path(tmp) / "ws", example=False)
        rng = np.random.default_rng(0)
        x = rng.normal(size=2000)
        train_tbl = pa.table({"id": [f"t{i}" for i in range(2000)], "x": x, "y": (rng.random(2000) < 1 / (1 + np.exp(-2 * x))).astype(np.int64)})
        contract = st.Contract("train", key="id", columns=[st.Column("id", "string"), st.Column("x", "float"), st.Column("y", "int")])
        pq.write_table(train_tbl, Path(tmp) / "train.parquet")
        st.ingest(ws, str(Path(tmp) / "train.parquet"), contract=contract)
        ws.definitions.add(st.Model("m", labels="train", target="y", columns=["x"], estimator=LGBMClassifier(n_estimators=5, verbose=-1)))
        train(ws, "m")

        p = rng.random(n)
        y = (rng.random(n) < p).astype(np.int64)
        rids = [f"r{i:09d}" for i in range(n)]
        t0 = dt.datetime.now(dt.UTC)
        logdir = ws.state_dir / "predictions"
        logdir.mkdir(parents=True, exist_ok=True)
        with open(logdir / "bench-0.jsonl", "wb") as f:
            for i in range(n):
                f.write(orjson.dumps({"request_id": rids[i], "ts": (t0 + dt.timedelta(milliseconds=i)).isoformat(), "deployment": "m",
                                      "model": "m", "version": 1, "instance": 0, "features": {"x": 0.0}, "output": float(p[i]),
                                      "latency_ms": 1.0, "key_id": "k", "degraded": False, "mode": "live", "route": "champion"},
                                     option=orjson.OPT_APPEND_NEWLINE))
        labels = pa.table({"request_id": rids, "y": y})
        lpath = Path(tmp) / "labels.parquet"
        pq.write_table(labels, lpath)
        rep = st.ingest(ws, str(lpath), contract=st.Contract("labels", key="request_id", columns=[st.Column("request_id", "string"), st.Column("y", "int")]))
        files = st.dataset(f"labels@{rep.version}", ws).paths()

        s, c = time.perf_counter(), time.process_time()
        ours = quality(ws, "m", "labels", estimate=False).to_dict()["rows"][0]
        t_ours, c_ours = time.perf_counter() - s, time.process_time() - c

        s, c = time.perf_counter(), time.process_time()
        log = pd.read_json(logdir / "bench-0.jsonl", lines=True, dtype={"request_id": str})
        log = log[(log["model"] == "m") & (log["mode"] == "live")]
        lab = pd.concat([pd.read_parquet(f) for f in files])
        j = log.merge(lab, on="request_id", how="left")
        have = j["y"].notna()
        yy, pp = j.loc[have, "y"].astype(int).to_numpy(), j.loc[have, "output"].astype(float).to_numpy()
        hard = (pp >= 0.5).astype(int)
        theirs = {"roc_auc": skm.roc_auc_score(yy, pp), "log_loss": skm.log_loss(yy, pp), "precision": skm.precision_score(yy, hard),
                  "recall": skm.recall_score(yy, hard)}
        t_pandas, c_pandas = time.perf_counter() - s, time.process_time() - c
        for k, v in theirs.items():
            assert abs(ours[k] - v) < 1e-9, (k, ours[k], v)
        assert ours["labelled"] == n
        ws.close()

    ratio, cpu_ratio = t_pandas / t_ours, c_pandas / c_ours
    load = os.getloadavg()[0]
    print(f"strataml quality {t_ours:.2f} s ({c_ours:.2f} s CPU), pandas {t_pandas:.2f} s ({c_pandas:.2f} s CPU): "
          f"{ratio:.1f}x faster ({cpu_ratio:.1f}x in CPU)")
    if args.no_record:
        return
    record("Monitoring", f"""### Quality join: {n:,} logged predictions with {n:,} labels ({dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC)

`PYTHONPATH=src python bench/quality_bench.py --rows {n}` — {platform.machine()}, {os.cpu_count()} cores shared (load average {load:.1f}), DuckDB {duckdb.__version__}.
`monitoring.quality` (read the log, join on request_id, binary metrics): **{t_ours:.2f} s** wall, {c_ours:.2f} s CPU (target ≤ 5 s);
the same join and figures in pandas: {t_pandas:.2f} s wall, {c_pandas:.2f} s CPU — **{ratio:.1f}x** faster ({cpu_ratio:.1f}x in CPU); figures equal.""")


if __name__ == "__main__":
    main()
