"""Monitoring speed: dataset drift from the command line, and folding the prediction log.

1. Drift of ``--rows`` current rows x 20 columns (15 numeric, 5 categorical) against a
   stored reference profile of as many rows, timed as a whole process
   (``strata monitor drift --reference … --current … --json``; target ≤ 3 s), the first
   time (the current version is profiled then) and again (both profiles stored); the
   baseline is the same statistics computed with scipy on the raw arrays in memory
   (``ks_2samp``, ``wasserstein_distance``, ``chi2_contingency``, PSI with numpy).
2. Folding a new 100k-row window of the prediction log into a running monitor (target
   ≤ 0.5 s); the baseline is parsing the same new lines with Arrow's JSON reader, which
   infers their types (what a fold did before it read them with DuckDB).

Each step reports wall seconds and CPU seconds (all threads; a child process's for the
command): on a machine shared with other work CPU time is the steadier yardstick.

    PYTHONPATH=src python bench/monitoring_bench.py [--rows N] [--no-record]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record import record

import strataml as st

NUMERIC = [f"x{i}" for i in range(15)]
CATEGORICAL = [f"c{i}" for i in range(5)]
DATA = Path(__file__).resolve().parent / ".data"


def generate(rows: int, seed: int, shift: float) -> Path:
    """A cached Parquet file of generated rows (``shift`` moves a third of the columns)."""
    path = DATA / f"monitoring_{rows}_{seed}_{shift}.parquet"
    if path.exists():
        return path
    DATA.mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    cols: dict[str, object] = {}
    for i, name in enumerate(NUMERIC):
        s = shift if i % 3 == 0 else 0.0
        cols[name] = rng.normal(10 * i + s, 1 + i, rows) if i % 2 else rng.gamma(2 + i, 1 + s, rows)
    cats = np.array([f"v{j}" for j in range(30)])
    for i, name in enumerate(CATEGORICAL):
        p = np.exp(-np.arange(30) / (3 + i + (shift if i % 3 == 0 else 0)))
        cols[name] = cats[rng.choice(30, size=rows, p=p / p.sum())]
    pq.write_table(pa.table(cols), path)
    return path


def baseline(ref: pa.Table, cur: pa.Table) -> tuple[float, float, dict[str, float]]:
    """Wall and CPU seconds for the same statistics with scipy on the raw arrays, and the exact KS statistics."""
    from scipy import stats as sps
    from scipy.spatial.distance import jensenshannon

    arrays = {c: (ref[c].to_numpy(), cur[c].to_numpy()) for c in NUMERIC}
    cats = {c: (ref[c].to_numpy(zero_copy_only=False), cur[c].to_numpy(zero_copy_only=False)) for c in CATEGORICAL}
    t0, c0 = time.perf_counter(), time.process_time()
    ks = {}
    for c, (a, b) in arrays.items():
        ks[c] = sps.ks_2samp(a, b).statistic
        sps.wasserstein_distance(a, b) / a.std(ddof=1)
        edges = np.concatenate([[-np.inf], np.quantile(a, np.linspace(0.1, 0.9, 9)), [np.inf]])
        p = np.clip(np.histogram(a, edges)[0] / len(a), 1e-4, None)
        q = np.clip(np.histogram(b, edges)[0] / len(b), 1e-4, None)
        float(np.sum((q - p) * np.log(q / p)))
    for a, b in cats.values():
        va, na = np.unique(a, return_counts=True)
        vb, nb = np.unique(b, return_counts=True)
        values = sorted(set(va) | set(vb))
        ta = np.array([dict(zip(va, na, strict=True)).get(v, 0) for v in values])
        tb = np.array([dict(zip(vb, nb, strict=True)).get(v, 0) for v in values])
        sps.chi2_contingency(np.vstack([ta, tb]), correction=False)
        jensenshannon(ta / ta.sum(), tb / tb.sum(), base=2)
    return time.perf_counter() - t0, time.process_time() - c0, ks


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def cli_drift(ws: st.Workspace) -> tuple[float, float, dict[str, object]]:
    """Wall and CPU seconds of the drift command as a process, and its JSON output."""
    cmd = [sys.executable, "-m", "strataml", "monitor", "drift", "--reference", "bench_ref@v1", "--current", "bench_cur@v1", "--json",
           "--workspace", str(ws.root)]
    c0, t0 = _children_cpu(), time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    took, cpu = time.perf_counter() - t0, _children_cpu() - c0
    if r.returncode:
        raise SystemExit(r.stderr)
    return took, cpu, orjson.loads(r.stdout)


def fold_bench(ws: st.Workspace, rows: int) -> dict[str, float]:
    """Wall and CPU seconds to fold a first window of ``rows`` predictions, then a second one, and
    to parse the second window's lines with Arrow's type-inferring JSON reader (the baseline)."""
    import pyarrow.json as pj

    from strataml.monitoring import fold
    from strataml.serving import AuditLog, prediction_log_dir

    rng = np.random.default_rng(9)
    directory = prediction_log_dir(ws.state_dir)
    log = AuditLog(directory, fsync=False)
    out: dict[str, float] = {}
    try:
        for window in range(2):
            start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=10 * window)
            feats = {c: rng.normal(size=rows).round(4) for c in NUMERIC}
            feats.update({c: rng.choice(["a", "b", "c", "d"], size=rows) for c in CATEGORICAL})
            out_ = rng.random(rows).round(6)
            batch = []
            for i in range(rows):
                batch.append({"request_id": f"r{window}_{i}", "ts": (start + dt.timedelta(seconds=i * 300 / rows)).isoformat(),
                              "instance": 0, "features": {c: feats[c][i].item() for c in feats}, "output": out_[i].item(),
                              "latency_ms": 1.0, "deployment": "bench", "model": "bench", "version": 1, "key_id": "k",
                              "degraded": False, "mode": "live", "route": "v1.predict"})
                if len(batch) == 5000:
                    log.append_sync(batch)
                    batch = []
            if batch:
                log.append_sync(batch)
            t0, c0 = time.perf_counter(), time.process_time()
            r = fold(ws)
            out[f"fold{window + 1}"], out[f"fold{window + 1}_cpu"] = time.perf_counter() - t0, time.process_time() - c0
            assert r.rows == rows, r
        new = b""  # the second window's lines: from the line of its first request on, up to the zero-filled tail
        for p in sorted(directory.glob("*.jsonl")):
            data = p.read_bytes()
            data = data[: data.find(b"\0")] if b"\0" in data else data
            first = data.find(b'"r1_0"')
            new += data[data.rfind(b"\n", 0, first) + 1 :] if first >= 0 else b""
        t0, c0 = time.perf_counter(), time.process_time()
        parsed = pj.read_json(io.BytesIO(new), read_options=pj.ReadOptions(block_size=8 << 20))
        out["arrow"], out["arrow_cpu"] = time.perf_counter() - t0, time.process_time() - c0
        assert parsed.num_rows == rows, parsed.num_rows
    finally:
        log.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--fold-rows", type=int, default=100_000)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    from strataml.monitoring import profile

    ref_path, cur_path = generate(args.rows, 1, 0.0), generate(args.rows, 2, 0.3)
    contract = st.Contract("bench", columns=[*(st.Column(c, "float") for c in NUMERIC), *(st.Column(c, "string") for c in CATEGORICAL)])
    with tempfile.TemporaryDirectory() as tmp:
        ws = st.Workspace.init(Path(tmp) / "ws", example=False)
        for p, name in ((ref_path, "bench_ref"), (cur_path, "bench_cur")):  # two datasets: a version appends to the last
            assert st.ingest(ws, str(p), contract=contract, dataset=name).status == "created"
        t0, c0 = time.perf_counter(), time.process_time()
        profile(ws, "bench_ref@v1")
        ref_profile_s, ref_profile_cpu = time.perf_counter() - t0, time.process_time() - c0
        c0, t0 = _children_cpu(), time.perf_counter()
        subprocess.run([sys.executable, "-c", "import strataml.cli.main"], check=True)
        floor_s, floor_cpu = time.perf_counter() - t0, _children_cpu() - c0
        first_s, first_cpu, doc = cli_drift(ws)
        second_s, second_cpu, _ = cli_drift(ws)
        ref, cur = pq.read_table(ref_path), pq.read_table(cur_path)
        base_s, base_cpu, exact_ks = baseline(ref, cur)
        ks_err = max(abs(doc["features"][c]["statistic"] - exact_ks[c]) for c in NUMERIC)  # type: ignore[index]
        fb = fold_bench(ws, args.fold_rows)
        ws.close()
    load = os.getloadavg()[0]
    drifted = sum(f["drifted"] for f in doc["features"].values())  # type: ignore[union-attr]
    lines = [
        f"### Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"On this machine ({os.cpu_count()} cores, shared; load average {load:.1f}; DuckDB {duckdb.__version__}).",
        f"{args.rows:,} reference rows and {args.rows:,} current rows x 20 columns (15 numeric, 5 categorical of 30 values), "
        f"two dataset versions; {drifted} of 20 columns called drifted. CPU seconds count every thread (and the command's process).",
        "",
        "| step | wall s | CPU s | target |",
        "|---|---|---|---|",
        f"| reference profile build (once, in process) | {ref_profile_s:.2f} | {ref_profile_cpu:.2f} | |",
        f"| `strata monitor drift --reference … --current … --json`, whole process, current profiled on the way | {first_s:.2f} | {first_cpu:.2f} | ≤ 3 |",
        f"| the same again (both profiles stored) | {second_s:.2f} | {second_cpu:.2f} | ≤ 3 |",
        f"| of which the floor: a process that only imports the `strata` command | {floor_s:.2f} | {floor_cpu:.2f} | |",
        f"| baseline: the same statistics with scipy on the raw arrays in memory (no reading, no process start) | {base_s:.2f} | {base_cpu:.2f} | |",
        f"| fold a first {args.fold_rows:,}-row window of the prediction log | {fb['fold1']:.2f} | {fb['fold1_cpu']:.2f} | |",
        f"| fold the next {args.fold_rows:,}-row window into the running monitor | {fb['fold2']:.2f} | {fb['fold2_cpu']:.2f} | ≤ 0.5 |",
        f"| baseline: parse that window's lines with Arrow's JSON reader (types inferred), nothing else | {fb['arrow']:.2f} | {fb['arrow_cpu']:.2f} | |",
        "",
        f"Ratios: first drift command / scipy baseline = **{first_s / base_s:.2f}x** wall, {first_cpu / base_cpu:.2f}x CPU; with stored "
        f"profiles **{second_s / base_s:.2f}x** wall, {second_cpu / base_cpu:.2f}x CPU. Folding a window / only parsing it with Arrow = "
        f"**{fb['fold2'] / fb['arrow']:.2f}x** wall, {fb['fold2_cpu'] / fb['arrow_cpu']:.2f}x CPU. "
        f"Largest |KS from sketches - ks_2samp on the raw arrays| over the 15 numeric columns: {ks_err:.4f} (bound 0.01).",
        "",
        f"Reproduce: `PYTHONPATH=src python bench/monitoring_bench.py --rows {args.rows}`",
    ]
    entry = "\n".join(lines)
    print(entry)
    if not args.no_record:
        record("Monitoring", entry)


if __name__ == "__main__":
    main()
