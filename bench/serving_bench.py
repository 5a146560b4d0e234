"""Serving benchmarks: the gateway against a bare Starlette endpoint, and batch scoring
against the model's own batch predict — each ratio measured in the same run.

Online: a 100-tree LightGBM classifier over 10 features, trained and registered with
``strata train``'s code path, served by ``strata serve`` (one worker) with auth, rate
limits (set high), metrics and the fsync'ed prediction log on; the baseline is a bare
Starlette app on the same uvicorn that parses the same JSON and returns a constant.
Both are loaded by ``wrk`` (16 connections, one thread) on loopback with the same
rotating request bodies.

Batch: ``strataml.serving.score`` of N rows from Parquet to Parquet against
the model's own ``Booster.predict`` on the same rows already in memory.

    PYTHONPATH=src python bench/serving_bench.py [--rows 10000000] [--seconds 15] [--repeats 5] [--skip-batch] [--append]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
FEATURES = [f"f{i}" for i in range(10)]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}

BARE_APP = textwrap.dedent('''
    import orjson, uvicorn, sys
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    async def predict(request):
        doc = orjson.loads(await request.body())
        return Response(b'{"predictions":[0.5]}', media_type="application/json")

    app = Starlette(routes=[Route("/v1/models/{name}/predict", predict, methods=["POST"])])
    # configured like `strata serve`: uvloop and httptools (uvicorn's "auto"), no access log, no proxy headers
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False, proxy_headers=False)
''')

WRK_LUA = textwrap.dedent('''
    local bodies = {}
    math.randomseed(7)
    for i = 1, 1000 do
      BODY
    end
    local n = 0
    request = function()
      n = n % 1000 + 1
      return wrk.format("POST", nil, {["Content-Type"] = "application/json", ["Authorization"] = "Bearer KEY"}, bodies[n])
    end
''')
#: request bodies: the 10 features themselves, or an entity key whose features the gateway looks up
BODIES = {
    "request": '''local parts = {}
      for j = 0, 9 do parts[#parts + 1] = string.format('"f%d": %.4f', j, math.random() * 4 - 2) end
      bodies[i] = '{"instances": [{' .. table.concat(parts, ", ") .. '}]}''',
    "online": '''bodies[i] = string.format('{"instances": [{"user_id": "u%d"}]}', math.random(0, USERS - 1))''',
}
USERS = 10_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def wrk(url: str, script: Path, seconds: int, connections: int = 16) -> dict[str, float]:
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        v = float(m.group(1))
        return {"us": v / 1000, "ms": v, "s": v * 1000}[m.group(2)]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {"rps": rps, "requests": total, "p50_ms": ms("50%"), "p99_ms": ms("99%"), "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errors.group(0) if errors else ""}


def served_within(port: int, seconds: float) -> tuple[float, float]:
    """(answered within ``seconds``, answered in all) of the gateway's successful predictions so far,
    from its own latency histogram in ``/metrics``: what the server measured, to hold wrk's figures against."""
    import httpx

    within = total = 0.0
    for line in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text.splitlines():
        if 'route="v1.predict"' not in line or 'status="200"' not in line:
            continue
        name, value = line.rsplit(" ", 1)
        if name.startswith("strata_request_duration_seconds_bucket") and f'le="{seconds}"' in name:
            within += float(value)
        elif name.startswith("strata_request_duration_seconds_count"):
            total += float(value)
    return within, total


def make_workspace(root: Path, rows: int) -> tuple[object, str]:
    """A workspace with a registered 100-tree LightGBM champion over f0..f9; returns (ws, admin key)."""
    from lightgbm import LGBMClassifier

    import strataml as st
    from strataml.models import train
    from strataml.serving import create_key

    ws = st.Workspace.init(root / "ws", example=False)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 10))
    y = ((x[:, 0] + 0.5 * x[:, 1] - 0.3 * x[:, 2] + rng.normal(scale=0.5, size=rows)) > 0).astype(np.int64)
    table = pa.table({**{f: x[:, i] for i, f in enumerate(FEATURES)}, "y": y})
    pq.write_table(table, root / "train.parquet")
    contract = st.Contract("bench_labels", columns=[*(st.Column(f, "float") for f in FEATURES), st.Column("y", "int")])
    ws.definitions.add(contract)
    st.ingest(ws, str(root / "train.parquet"), contract="bench_labels")
    ws.definitions.add(st.Model("bench", labels="bench_labels", target="y", columns=FEATURES,
                                estimator=LGBMClassifier(n_estimators=100, num_leaves=31, verbose=-1)))
    result = train(ws, "bench")
    assert result.version == 1, result
    add_online_model(ws, root)
    key = create_key(ws.catalog, ["predict:bench", "predict:bench_online"])[1]
    return ws, key


def add_online_model(ws: object, root: Path) -> None:
    """``bench_online``: the same kind of model over a feature view of 10 features, materialised
    to the online store for USERS users; a request names the user."""
    import datetime as dt

    from lightgbm import LGBMClassifier

    import strataml as st
    from strataml.features import apply, materialize
    from strataml.models import train

    rng = np.random.default_rng(1)
    users = [f"u{i}" for i in range(USERS)]
    x = rng.normal(size=(USERS, 10))
    t0 = dt.datetime(2026, 1, 1)
    pq.write_table(pa.table({"user_id": users, "ts": pa.array([t0] * USERS, pa.timestamp("us")),
                             **{f: x[:, i] for i, f in enumerate(FEATURES)}}), root / "user_stats.parquet")
    y = ((x[:, 0] + 0.5 * x[:, 1] - 0.3 * x[:, 2] + rng.normal(scale=0.5, size=USERS)) > 0).astype(np.int64)
    pq.write_table(pa.table({"user_id": users, "ts": pa.array([t0 + dt.timedelta(days=1)] * USERS, pa.timestamp("us")), "y": y}),
                   root / "user_labels.parquet")
    for name, cols in (("user_stats", [st.Column(f, "float") for f in FEATURES]), ("user_labels", [st.Column("y", "int")])):
        contract = st.Contract(name, timestamp="ts", columns=[st.Column("user_id", "string"), st.Column("ts", "timestamp"), *cols])
        ws.definitions.add(contract)  # type: ignore[attr-defined]
        st.ingest(ws, str(root / f"{name}.parquet"), contract=name)  # type: ignore[arg-type]
    user = st.Entity("user", key="user_id")
    ws.definitions.add(st.FeatureView("user_f", entity=user, source="user_stats", ttl="365d",  # type: ignore[attr-defined]
                                      features=[st.Feature(f, expr=f) for f in FEATURES]))
    ws.definitions.add(st.Model("bench_online", labels="user_labels", target="y", features=["user_f"],  # type: ignore[attr-defined]
                                estimator=LGBMClassifier(n_estimators=100, num_leaves=31, verbose=-1)))
    apply(ws)  # type: ignore[arg-type]
    materialize(ws, ["user_f"])  # type: ignore[arg-type]
    result = train(ws, "bench_online")  # type: ignore[arg-type]
    assert result.version == 1, result


def online(ws_root: Path, key: str, seconds: int, repeats: int = 1, features: str = "online") -> dict[str, object]:
    model = "bench_online" if features == "online" else "bench"
    script = ws_root.parent / "bench.lua"
    script.write_text(WRK_LUA.replace("BODY", BODIES[features]).replace("USERS", str(USERS)).replace("KEY", key))
    bare_port, gw_port = free_port(), free_port()
    (ws_root.parent / "bare.py").write_text(BARE_APP)
    bare = subprocess.Popen([sys.executable, str(ws_root.parent / "bare.py"), str(bare_port)], env=ENV)
    gw = subprocess.Popen([sys.executable, "-m", "strataml", "serve", "--port", str(gw_port), "-m", model, "--rate", "1000000",
                           "--burst", "1000000", "--log-level", "warning", "-w", str(ws_root)], env=ENV)
    try:
        wait_ready(f"http://127.0.0.1:{bare_port}/v1/models/bench/predict")
        wait_ready(f"http://127.0.0.1:{gw_port}/readyz")
        # warm both, then measure each in turn
        wrk(f"http://127.0.0.1:{bare_port}/v1/models/bench/predict", script, 2)
        wrk(f"http://127.0.0.1:{gw_port}/v1/models/{model}/predict", script, 2)
        runs = []
        for _ in range(repeats):  # alternate, so that both see the same share of a busy machine
            base = wrk(f"http://127.0.0.1:{bare_port}/v1/models/bench/predict", script, seconds)
            before = served_within(gw_port, 0.01)
            gate = wrk(f"http://127.0.0.1:{gw_port}/v1/models/{model}/predict", script, seconds)
            after = served_within(gw_port, 0.01)
            slow = (after[1] - before[1]) - (after[0] - before[0])
            gate["server_over_10ms_pct"] = 100 * slow / max(1, after[1] - before[1])
            runs.append({"bare": base, "gateway": gate, "ratio": gate["rps"] / base["rps"], "load": os.getloadavg()[0]})
            print(f"bare {base['rps']:,.0f}/s, gateway {gate['rps']:,.0f}/s = {runs[-1]['ratio']:.0%}, gateway p99 {gate['p99_ms']} ms "
                  f"(its own histogram: {gate['server_over_10ms_pct']:.2f}% over 10 ms), load {runs[-1]['load']:.1f}", flush=True)
    finally:
        for p in (bare, gw):
            p.terminate()
            p.wait(60)
    from strataml.serving import prediction_stats

    logged = prediction_stats(ws_root / ".strata" / "predictions", model)
    median = sorted(runs, key=lambda r: r["ratio"])[len(runs) // 2]  # type: ignore[arg-type,return-value]
    # the machine's speed drifts between one server's turn and the other's: pooling every
    # turn's requests, and the median of the p99s, weigh that drift less than one pair does
    pooled = sum(r["gateway"]["requests"] for r in runs) / sum(r["bare"]["requests"] for r in runs)  # type: ignore[index]
    p99s = sorted(r["gateway"]["p99_ms"] for r in runs)  # type: ignore[index]
    return {**median, "runs": runs, "pooled_ratio": pooled, "median_p99_ms": p99s[len(p99s) // 2],
            "logged_predictions": logged["count"], "features": features}


def batch(ws_root: Path, rows: int) -> dict[str, object]:
    import strataml as st
    from strataml.models import load_model
    from strataml.serving import score

    ws = st.Workspace.open(ws_root)
    data_dir = ws_root.parent / "score_in"
    data_dir.mkdir(exist_ok=True)
    rng = np.random.default_rng(1)
    chunk = 1_000_000
    for i in range(0, rows, chunk):
        n = min(chunk, rows - i)
        pq.write_table(pa.table({"row": np.arange(i, i + n), **{f: rng.normal(size=n) for f in FEATURES}}), data_dir / f"part{i // chunk:04d}.parquet")
    model = load_model(ws, "bench").predictor.native
    table = pq.read_table(data_dir, columns=FEATURES)
    x = np.column_stack([table.column(f).to_numpy() for f in FEATURES])
    del table
    t0 = time.perf_counter()
    expected = model.predict(x)  # the native LightGBM Booster's own batch predict
    base_s = time.perf_counter() - t0
    del x
    out = ws_root.parent / "scored.parquet"
    t0 = time.perf_counter()
    report = score(ws, "bench", str(data_dir), out, id_column="row", batch_rows=262_144)
    ours_s = time.perf_counter() - t0
    got = pq.read_table(out, columns=["row_id", "prediction"])
    order = np.argsort(got.column("row_id").to_numpy())
    assert np.allclose(got.column("prediction").to_numpy()[order], expected), "batch scores differ from the model's own"
    return {"rows": rows, "model_predict_s": round(base_s, 2), "score_s": round(ours_s, 2),
            "model_rows_per_s": round(rows / base_s), "score_rows_per_s": round(rows / ours_s), "ratio": base_s / ours_s,
            "report_rows": report["rows"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000, help="rows for batch scoring")
    ap.add_argument("--seconds", type=int, default=15, help="wrk duration per server")
    ap.add_argument("--append", action="store_true", help="add the figures at the end of BENCHMARKS.md's Serving section")
    ap.add_argument("--repeats", type=int, default=1, help="alternating bare/gateway measurements (the median ratio is reported)")
    ap.add_argument("--skip-batch", action="store_true")
    ap.add_argument("--features", choices=["online", "request"], default="online",
                    help="online: requests name a user whose 10 features come from the online store; request: requests carry them")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install -y wrk)")
    root = Path(tempfile.mkdtemp(prefix="strata-bench-"))
    try:
        ws, key = make_workspace(root, 20_000)
        ws_root = ws.root  # type: ignore[attr-defined]
        ws.close()  # type: ignore[attr-defined]
        res = {"online": online(ws_root, key, args.seconds, args.repeats, args.features)}
        print(json.dumps(res, indent=2, default=float), flush=True)
        if not args.skip_batch:
            res["batch"] = batch(ws_root, args.rows)
        print(json.dumps(res, indent=2, default=float))
        if args.append:
            append(res, args)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def append(res: dict[str, dict[str, object]], args: argparse.Namespace) -> None:
    o = res["online"]
    g = o["gateway"]
    lines = [
        "",
        f"### Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"On this machine ({os.cpu_count()} cores, shared), one uvicorn worker per server,",
        f"wrk with 1 thread and 16 connections for {args.seconds}s each on loopback, the same 1,000 rotating JSON bodies.",
        "Gateway: `strata serve` with a registered 100-tree LightGBM classifier over 10 features "
        + ("looked up in the SQLite online store (a feature view materialised for 10,000 users; each request names one)"
           if o["features"] == "online" else "carried in each request") + ", API-key auth,",
        "per-key token buckets in the SQLite online store (limit set high), Prometheus metrics, and the",
        "fdatasync'ed prediction log (group commit by its writer process) on; request logs at warning level. Both servers",
        "run on uvicorn with uvloop and httptools, no access log and no proxy headers; runs alternate between them.",
        "",
        "| run | bare req/s | bare p99 ms | gateway req/s | gateway p50 ms | gateway p99 ms | gateway's own histogram: % over 10 ms | gateway non-2xx | ratio | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(o["runs"], 1):  # type: ignore[arg-type]
        rb, rg = r["bare"], r["gateway"]
        lines.append(f"| {i} | {rb['rps']:,.0f} | {rb['p99_ms']:.2f} | {rg['rps']:,.0f} | {rg['p50_ms']:.2f} | {rg['p99_ms']:.2f} | {rg['server_over_10ms_pct']:.2f} | {rg['non_2xx']} | {r['ratio']:.0%} | {r['load']:.1f} |")
    lines += [
        "",
        f"Median run: gateway throughput = **{o['ratio']:.1%}** of the bare endpoint (target ≥ 35%); p99 {g['p99_ms']:.2f} ms (target ≤ 10 ms);"  # type: ignore[index]
        f" {o['logged_predictions']:,} predictions in the audit log.",
        f"Over all runs: gateway requests / bare requests = **{o['pooled_ratio']:.1%}**; median of the gateway p99s **{o['median_p99_ms']:.2f} ms**.",
    ]
    if "batch" in res:
        bb = res["batch"]
        lines += [
            "",
            f"Batch scoring of {bb['rows']:,} rows x 10 features (Parquet in, Parquet out, 262,144-row batches):",
            f"`score` {bb['score_s']} s ({bb['score_rows_per_s']:,} rows/s) vs the model's own `Booster.predict` on the same rows in memory",
            f"{bb['model_predict_s']} s ({bb['model_rows_per_s']:,} rows/s): **{bb['ratio']:.0%}** (target ≥ 70%).",
        ]
    extra = (" --skip-batch" if args.skip_batch else "") + ("" if args.features == "online" else " --features request") + (f" --repeats {args.repeats}" if args.repeats > 1 else "")
    lines += ["", "Reproduce: `PYTHONPATH=src python bench/serving_bench.py " + f"--rows {args.rows} --seconds {args.seconds}{extra} --append`", ""]
    from record import record

    record("Serving", "\n".join(lines))


if __name__ == "__main__":
    main()
