"""Feature store benchmark: training sets, materialisation and online lookups.

    PYTHONPATH=src python bench/features_bench.py [--source-rows 10000000] [--labels 1000000]
        [--entities 1000000] [--redis redis://127.0.0.1:6379/0] [--append BENCHMARKS.md]
        [--dir DIR [--reuse]] [--only lookups]

``--only lookups`` skips the training sets: it materialises to SQLite (and Redis unless
``--redis ''``) and times the lookups, printing the figures without appending them.

Measures, in one run on generated data ingested through the data layer:

* a training set of ``--labels`` label rows over a ``--source-rows`` source with three
  views (two latest-value views, one with three windowed aggregations): wall time and
  peak memory (each phase runs in its own process so its peak RSS is its own);
* the two latest-value views alone against a hand-written DuckDB ASOF JOIN of the
  same files in the same run (target: within 2x);
* materialising ``--entities`` entities (10 features) to SQLite (target: <= 15 s);
* online lookup p50 for 1 entity x 10 features and for 100 entities from SQLite, and
  for 1 entity from Redis (targets: 30 us, 500 us, 300 us).
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

DEFINITIONS = '''
import strataml as st

tx = st.Contract(
    "tx", key="tx_id", timestamp="ts",
    columns=[
        st.Column("tx_id", "string"), st.Column("user_id", "string"), st.Column("amount", "float"),
        st.Column("country", "string"), st.Column("merchant", "string"), st.Column("ts", "timestamp"),
    ],
)
labels = st.Contract(
    "labels", timestamp="ts",
    columns=[st.Column("user_id", "string"), st.Column("ts", "timestamp"), st.Column("is_fraud", "int")],
)
user = st.Entity("user", key="user_id")
latest_amount = st.FeatureView("latest_amount", entity=user, source="tx", ttl="30d", features=[
    st.Feature("amount", expr="amount"), st.Feature("merchant", expr="merchant"),
])
latest_place = st.FeatureView("latest_place", entity=user, source="tx", ttl="7d", features=[
    st.Feature("log_amount", expr="ln(1 + amount)"), st.Feature("country", expr="country"),
])
spend = st.FeatureView("spend", entity=user, source="tx", ttl="30d", features=[
    st.Feature("spend_24h", agg="sum", column="amount", window="24h"),
    st.Feature("tx_count_7d", agg="count", window="7d"),
    st.Feature("avg_amount_30d", agg="mean", column="amount", window="30d"),
])
online10 = st.FeatureView("online10", entity=user, source="tx", ttl="30d", features=[
    st.Feature("f_amount", expr="amount"), st.Feature("f_log_amount", expr="ln(1 + amount)"),
    st.Feature("f_merchant", expr="merchant"), st.Feature("f_country", expr="country"),
    st.Feature("f_big", expr="amount > 100"), st.Feature("f_cents", expr="round(amount * 100)::BIGINT"),
    st.Feature("f_hour", expr="hour(ts)"),
    st.Feature("spend_7d", agg="sum", column="amount", window="7d"),
    st.Feature("count_30d", agg="count", window="30d"),
    st.Feature("max_30d", agg="max", column="amount", window="30d"),
])
'''

START = dt.datetime(2026, 1, 1)
DAYS = 60


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _in_child(fn: Any, *args: Any) -> dict[str, Any]:
    """Run ``fn(*args)`` in a fresh process; returns its result plus that process's peak RSS."""
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(fn, args)  # type: ignore[no-any-return]


def generate(root: Path, source_rows: int, labels: int, users: int) -> None:
    """Generated transactions and labels, ingested through the data layer."""
    import strataml as st
    from strataml.spine._engine import duck

    ws = st.Workspace.open(root)
    con = duck("4GB", 0, ws.scratch_dir())
    span = DAYS * 86400
    src = root / "tx_src"
    src.mkdir(exist_ok=True)
    con.execute(f"""COPY (
        SELECT 'tx' || i AS tx_id, 'u' || (hash(i) % {users}) AS user_id,
               round(exp(3 + 1.0 * ((hash(i * 3) % 10000) / 10000.0 - 0.5) * 4), 2) AS amount,
               ['US', 'DE', 'FR', 'GB'][1 + (hash(i * 5) % 4)::INT] AS country,
               'm' || (hash(i * 7) % 200) AS merchant,
               TIMESTAMP '{START}' + to_seconds((hash(i * 11) % {span})::BIGINT) AS ts
        FROM range({source_rows}) t(i)) TO '{src}' (FORMAT parquet, FILE_SIZE_BYTES '256MB')""")
    con.execute(f"""COPY (
        SELECT 'u' || (hash(i * 13) % {users}) AS user_id,
               TIMESTAMP '{START}' + to_seconds((hash(i * 17) % {span})::BIGINT) AS ts,
               (hash(i * 19) % 2)::BIGINT AS is_fraud
        FROM range({labels}) t(i)) TO '{root / 'labels.parquet'}' (FORMAT parquet)""")
    con.close()
    t = time.perf_counter()
    r = st.ingest(ws, str(src / "*.parquet"), contract="tx")
    print(f"  ingested {r.accepted:,} source rows in {time.perf_counter() - t:.1f}s", flush=True)
    st.ingest(ws, str(root / "labels.parquet"), contract="labels")
    ws.close()


def training_set(root: str, views: list[str]) -> dict[str, Any]:
    import strataml as st
    from strataml.features import build_training_set

    ws = st.Workspace.open(root)
    t = time.perf_counter()
    # a fresh name per run: identical inputs would otherwise return the recorded version at once
    ts = build_training_set(ws, "labels", views, record=True, name=f"bench_{uuid.uuid4().hex[:12]}")
    return {"seconds": time.perf_counter() - t, "rows": ts.table.num_rows, "peak_mb": _peak_mb(), "ref": ts.ref}


def hand_written_asof(root: str) -> dict[str, Any]:
    """The baseline: one ASOF JOIN per latest-value view, written by hand, to Parquet."""
    import strataml as st
    from strataml.data import get_version
    from strataml.spine._engine import duck

    ws = st.Workspace.open(root)
    src, lab = get_version(ws, "tx").sql_source(), get_version(ws, "labels").sql_source()
    out = Path(root) / f"baseline_{uuid.uuid4().hex}.parquet"
    con = duck(ws.settings.memory_limit, ws.settings.threads, ws.scratch_dir())
    t = time.perf_counter()
    con.execute(f"""COPY (
        SELECT l.user_id, l.ts, l.is_fraud,
               CASE WHEN a.ts >= l.ts - INTERVAL 30 DAY THEN a.amount END AS amount,
               CASE WHEN a.ts >= l.ts - INTERVAL 30 DAY THEN a.merchant END AS merchant,
               CASE WHEN b.ts >= l.ts - INTERVAL 7 DAY THEN ln(1 + b.amount) END AS log_amount,
               CASE WHEN b.ts >= l.ts - INTERVAL 7 DAY THEN b.country END AS country
        FROM {lab} l
        ASOF LEFT JOIN {src} a ON l.user_id = a.user_id AND l.ts > a.ts
        ASOF LEFT JOIN {src} b ON l.user_id = b.user_id AND l.ts > b.ts
    ) TO '{out}' (FORMAT parquet)""")
    seconds = time.perf_counter() - t
    con.close()
    out.unlink()
    return {"seconds": seconds, "peak_mb": _peak_mb()}


def materialize_to(root: str, url: str | None, as_of: str) -> dict[str, Any]:
    import strataml as st
    from strataml.features import materialize, open_online_store

    ws = st.Workspace.open(root)
    store = open_online_store(url) if url else None
    t = time.perf_counter()
    r = materialize(ws, ["online10"], as_of=dt.datetime.fromisoformat(as_of), store=store)
    return {"seconds": time.perf_counter() - t, "entities": r["views"][0]["entities"], "peak_mb": _peak_mb()}


def lookups(root: str, url: str | None, users: int, rounds: int) -> dict[str, Any]:
    import random

    import strataml as st
    from strataml.features import get_online_features, open_online_store

    ws = st.Workspace.open(root)
    store = open_online_store(url) if url else None
    rng = random.Random(0)
    keys = [{"user_id": f"u{rng.randrange(users)}"} for _ in range(rounds)]
    get_online_features(ws, ["online10"], keys[:10], store=store)  # warm caches
    one_api, one_raw, hundred = [], [], []
    st_ = store or __import__("strataml.features", fromlist=["online_store"]).online_store(ws)
    for k in keys:
        t = time.perf_counter_ns()
        get_online_features(ws, ["online10"], [k], store=store)
        one_api.append(time.perf_counter_ns() - t)
    for k in keys:
        t = time.perf_counter_ns()
        st_.get("online10", [k])
        one_raw.append(time.perf_counter_ns() - t)
    hits = sum(v is not None for v in st_.get("online10", keys[:1000]))
    for _ in range(max(rounds // 20, 50)):
        batch = [{"user_id": f"u{rng.randrange(users)}"} for _ in range(100)]
        t = time.perf_counter_ns()
        get_online_features(ws, ["online10"], batch, store=store)
        hundred.append(time.perf_counter_ns() - t)
    sample = get_online_features(ws, ["online10"], keys[:1], store=store)[0]
    return {
        "p50_1_us": statistics.median(one_api) / 1000, "p99_1_us": sorted(one_api)[int(len(one_api) * 0.99)] / 1000,
        "p50_1_raw_us": statistics.median(one_raw) / 1000,
        "p50_100_us": statistics.median(hundred) / 1000, "hit_rate": hits / 1000, "features": len(sample),
    }


def _online(args: argparse.Namespace, root: Path, as_of: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None, dict[str, Any] | None]:
    """Materialise to SQLite and time lookups there, then the same on Redis unless
    ``--redis ''``: (SQLite materialise, SQLite lookups, Redis materialise, Redis lookups)."""
    mat = _in_child(materialize_to, str(root), None, as_of)
    print(f"materialise to SQLite: {mat}", flush=True)
    sq = _in_child(lookups, str(root), None, args.entities, args.lookups)
    print(f"SQLite lookups: {sq}", flush=True)
    rd: dict[str, Any] | None = None
    rmat: dict[str, Any] | None = None
    if args.redis:
        url = f"{args.redis}?prefix=bench-{uuid.uuid4().hex[:8]}:"
        try:
            rmat = _in_child(materialize_to, str(root), url, as_of)
            rd = _in_child(lookups, str(root), url, args.entities, args.lookups)
            print(f"Redis: materialise {rmat}, lookups {rd}", flush=True)
        finally:
            import redis

            c = redis.Redis.from_url(args.redis)
            for key in c.scan_iter(match=url.split("prefix=")[1] + "*"):
                c.unlink(key)
    return mat, sq, rmat, rd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source-rows", type=int, default=10_000_000)
    ap.add_argument("--labels", type=int, default=1_000_000)
    ap.add_argument("--entities", type=int, default=1_000_000, help="distinct users in the source")
    ap.add_argument("--lookups", type=int, default=20_000)
    ap.add_argument("--redis", default=os.environ.get("STRATA_TEST_REDIS", "redis://127.0.0.1:6379/0"))
    ap.add_argument("--memory-limit", default="4GB")
    ap.add_argument("--dir", default=None, help="work folder (default: a temporary one)")
    ap.add_argument("--append", default=None, help="append the results to this Markdown file")
    ap.add_argument("--reuse", action="store_true", help="reuse the data already generated in --dir")
    ap.add_argument("--only", choices=["lookups"], default=None,
                    help="lookups: materialise and look up only (no training sets); prints, never appends")
    args = ap.parse_args()

    root = Path(args.dir or tempfile.mkdtemp(prefix="strata-fbench-"))
    import strataml as st

    if not (args.reuse and (root / "strata.toml").exists()):
        ws = st.Workspace.init(root, example=False)
        (root / "definitions.py").write_text(DEFINITIONS)
        toml = (root / "strata.toml").read_text().replace('memory_limit = "1GB"', f'memory_limit = "{args.memory_limit}"')
        (root / "strata.toml").write_text(toml)
        ws.close()
        print(f"workspace {root}", flush=True)
        t = time.perf_counter()
        generate(root, args.source_rows, args.labels, args.entities)
        print(f"  data ready in {time.perf_counter() - t:.1f}s", flush=True)

    as_of = (START + dt.timedelta(days=DAYS)).isoformat()
    if args.only == "lookups":
        _online(args, root, as_of)
        print(f"load average {os.getloadavg()[0]:.1f}", flush=True)
        return
    full = _in_child(training_set, str(root), ["latest_amount", "latest_place", "spend"])
    print(f"training set, 3 views: {full}", flush=True)
    ours = _in_child(training_set, str(root), ["latest_amount", "latest_place"])
    base = _in_child(hand_written_asof, str(root))
    ours2 = _in_child(training_set, str(root), ["latest_amount", "latest_place"])
    base2 = _in_child(hand_written_asof, str(root))
    ours_s, base_s = min(ours["seconds"], ours2["seconds"]), min(base["seconds"], base2["seconds"])
    print(f"latest-value views: strataml {ours_s:.2f}s, hand-written ASOF {base_s:.2f}s, ratio {ours_s / base_s:.2f}", flush=True)

    mat, sq, rmat, rd = _online(args, root, as_of)

    kept: list[str] = []
    argv = iter(sys.argv[1:])
    for a in argv:  # the command that reproduces the figures (without local paths)
        if a in ("--append", "--dir"):
            next(argv, None)
        elif a != "--reuse" and not a.startswith(("--append=", "--dir=")):
            kept.append(a)
    cmd = "PYTHONPATH=src python bench/features_bench.py " + " ".join([*kept, "--append", "BENCHMARKS.md"])
    lines = [
        f"### Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()} with {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, DuckDB memory limit {args.memory_limit}; load average at the end "
        f"{os.getloadavg()[0]:.1f} (the machine is shared, so figures include contention). "
        f"Source {args.source_rows:,} rows over {args.entities:,} users and {DAYS} days; {args.labels:,} label rows.",
        "",
        "| measurement | result | target |",
        "|---|---|---|",
        f"| training set, 3 views (2 latest-value, 1 with 3 windowed aggregations), {args.labels:,} labels | "
        f"{full['seconds']:.1f} s, peak RSS {full['peak_mb']:,.0f} MB | record |",
        f"| latest-value views only: strataml vs hand-written DuckDB ASOF JOIN (same files, same run, best of 2) | "
        f"{ours_s:.2f} s vs {base_s:.2f} s = **{ours_s / base_s:.2f}x** | <= 2x |",
        f"| materialise {mat['entities']:,} entities x 10 features to SQLite | **{mat['seconds']:.1f} s** "
        f"(peak RSS {mat['peak_mb']:,.0f} MB) | <= 15 s |",
        f"| SQLite lookup, 1 entity x {sq['features']} features, p50 (`get_online_features`) | **{sq['p50_1_us']:.1f} us** "
        f"(p99 {sq['p99_1_us']:.1f} us; store.get alone {sq['p50_1_raw_us']:.1f} us) | <= 30 us |",
        f"| SQLite lookup, 100 entities, p50 | **{sq['p50_100_us']:.0f} us** | <= 500 us |",
    ]
    if rd and rmat:
        lines += [
            f"| Redis (loopback) lookup, 1 entity, p50 | **{rd['p50_1_us']:.0f} us** (store.get alone {rd['p50_1_raw_us']:.0f} us) | <= 300 us |",
            f"| Redis lookup, 100 entities, p50 | {rd['p50_100_us']:.0f} us | - |",
            f"| materialise {rmat['entities']:,} entities to Redis | {rmat['seconds']:.1f} s | - |",
        ]
    lines += ["", f"Lookups hit {sq['hit_rate']:.0%} of random keys. Reproduce with:", "", "```", cmd.strip(), "```", ""]
    text = "\n".join(lines)
    print(text)
    if args.append:
        from record import record

        record("Feature store", text, Path(args.append))


if __name__ == "__main__":
    main()
