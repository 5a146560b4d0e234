"""Ingestion benchmarks: speed against a bare DuckDB copy, and peak memory on a big file.

Benchmark 1 (default) -- end-to-end ingest of a 1M-row, 7-column CSV of transactions
(0.1% bad rows) against a bare DuckDB ``COPY (SELECT * FROM read_csv(...)) TO
'....parquet'`` of the same file, alternating the two in the same run. The ingest reads,
validates with a contract using nine rule kinds (type, nullable, min, max, allowed,
pattern, unique/duplicate, a SQL rule, max_null_rate), quarantines, deduplicates,
writes the snapshot and commits it to the catalog of a fresh workspace. Target: median
ingest <= 1.5x median copy. A last, untimed, instrumented ingest breaks the time down
by step and by DuckDB statement (with the slowest operators of each statement).

Benchmark 2 (``--big``) -- peak resident memory of ingesting a multi-GB CSV with the
workspace's default ``memory_limit``. The file is generated in chunks, the ingest runs
in a child process whose peak RSS is read with GNU ``time`` (``%M``); the child also
records its RSS high-water mark after each step. Target: peak RSS < 1.5 GB for a 5 GB file.

``--critical-path`` -- CPU time and the critical path (busiest thread per statement) of
both sides: an estimate of their wall times on idle cores that a shared machine does not skew.

``--decompose`` -- one-thread CPU time of the ingest's parts and of cheaper alternatives
(a diagnosis aid; the target is benchmark 1's figure).

Each appends its figures, the machine and the reproducing command to BENCHMARKS.md.
Run from the repository root::

    PYTHONPATH=src python bench/ingest_bench.py                   # benchmark 1
    PYTHONPATH=src python bench/ingest_bench.py --big --big-gb 5  # benchmark 2
    PYTHONPATH=src python bench/ingest_bench.py --decompose --reps 3
    PYTHONPATH=src python bench/ingest_bench.py --critical-path --reps 3
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import importlib
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.csv as pacsv

import strataml as st
from strataml import synth
from strataml.spine._workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / ".data"
BAD_FRACTION = 0.001
TARGET_RATIO = 1.5
TARGET_RSS_GB = 1.5


def contract() -> st.Contract:
    """The 7-column transactions contract, exercising nine kinds of rule."""
    return st.Contract(
        "transactions",
        key="tx_id",
        timestamp="ts",
        columns=[
            st.Column("tx_id", "string", unique=True, pattern=r"tx[0-9]+"),
            st.Column("user_id", "string", pattern=r"u[0-9]+"),
            st.Column("amount", "float", min=0, max=1_000_000),
            st.Column("refund", "float", nullable=True, min=0),
            st.Column("country", "string", allowed=["US", "DE", "FR", "GB"]),
            st.Column("merchant", "string", nullable=True, max_null_rate=0.05),
            st.Column("ts", "timestamp", min=dt.datetime(2020, 1, 1)),
        ],
        rules={"refund_le_amount": "refund IS NULL OR refund <= amount"},
    )


# --- data --------------------------------------------------------------------------


def ensure_csv(rows: int, seed: int = 0) -> Path:
    """The cached benchmark CSV (generated once with :func:`strataml.synth.transactions`)."""
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"transactions_{rows}_s{seed}_b{BAD_FRACTION}.csv"
    if not path.exists():
        t0 = time.perf_counter()
        tmp = path.with_suffix(".csv.part")
        synth.write_csv(synth.transactions(rows, seed=seed, bad_fraction=BAD_FRACTION), tmp)
        os.replace(tmp, path)
        print(f"generated {path.name} ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f}s")
    return path


def write_big_csv(path: Path, target_bytes: int, chunk_rows: int = 1_000_000) -> int:
    """Append CSV chunks (distinct tx ids, advancing time) until ``target_bytes``; returns rows."""
    rows = 0
    chunk = 0
    start = dt.datetime(2026, 1, 1)
    with path.open("wb") as out:
        while out.tell() < target_bytes:
            table = synth.transactions(
                chunk_rows, seed=1000 + chunk, start_id=rows, bad_fraction=BAD_FRACTION,
                start=start + dt.timedelta(days=chunk), days=1.0,
            )
            pacsv.write_csv(table, out, pacsv.WriteOptions(include_header=chunk == 0, quoting_style="needed"))
            rows += table.num_rows
            chunk += 1
            if chunk % 10 == 0:
                print(f"  {out.tell() / 1e9:.2f} GB, {rows:,} rows", flush=True)
    return rows


# --- instrumentation ---------------------------------------------------------------


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _hwm_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Recorder:
    """Nested step timings with the peak RSS seen during each (sampled every 20 ms)."""

    def __init__(self, profile_dir: Path | None = None) -> None:
        self.records: list[dict[str, Any]] = []
        self._stack: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.profile_dir = profile_dir
        self._n = 0
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            rss = _rss_mb()
            with self._lock:
                for frame in self._stack:
                    frame["peak_rss_mb"] = max(frame["peak_rss_mb"], rss)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    @contextlib.contextmanager
    def step(self, name: str, kind: str = "step", sql: str | None = None) -> Iterator[dict[str, Any]]:
        rec: dict[str, Any] = {"name": name, "kind": kind, "depth": len(self._stack), "peak_rss_mb": _rss_mb()}
        if sql is not None:
            rec["sql"] = " ".join(sql.split())
        with self._lock:
            self.records.append(rec)
            self._stack.append(rec)
        t0 = time.perf_counter()
        try:
            yield rec
        finally:
            rec["seconds"] = time.perf_counter() - t0
            with self._lock:
                self._stack.pop()
                rec["peak_rss_mb"] = max(rec["peak_rss_mb"], _rss_mb())
                # The process's high-water mark is exact (sampling can miss short spikes):
                # the step during which it rises is the one that set the peak.
                rec["hwm_mb"] = _hwm_mb()

    def next_profile(self) -> Path | None:
        if self.profile_dir is None:
            return None
        self._n += 1
        return self.profile_dir / f"q{self._n}.json"


def _statement_label(sql: str) -> str:
    words = " ".join(sql.split())
    return words[:70] + ("…" if len(words) > 70 else "")


def _operators(profile: Path, top: int = 4) -> dict[str, Any]:
    """The slowest operators and memory figures of one DuckDB JSON profile."""
    try:
        doc = json.loads(profile.read_text())
    except (OSError, ValueError):
        return {}
    ops: list[tuple[float, str, int]] = []

    def walk(node: dict[str, Any]) -> None:
        ops.append((float(node.get("timing", 0.0)), str(node.get("name", "?")), int(node.get("intermediate_rows", 0))))
        for child in node.get("children", []):
            walk(child)

    for node in doc.get("operator", []):
        walk(node)
    system = doc.get("system", {})
    return {
        "operators": [{"name": n, "seconds": round(t, 3), "rows": r} for t, n, r in sorted(ops, reverse=True)[:top]],
        "peak_buffer_mb": round(system.get("peak_buffer_memory", 0) / 2**20, 1),
        "spilled_mb": round(system.get("total_bytes_spilled", 0) / 2**20, 1),
        "peak_temp_dir_mb": round(system.get("peak_temp_dir_size", 0) / 2**20, 1),
    }


class _TimedResult:
    """Forwards to a DuckDB result/relation, timing the fetch that runs the query."""

    def __init__(self, inner: Any, rec: Recorder, sql: str) -> None:
        self._inner = inner
        self._rec = rec
        self._sql = sql

    def fetchall(self) -> Any:
        with self._rec.step("fetch " + _statement_label(self._sql), "sql"):
            return self._inner.fetchall()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class TimedConnection:
    """Forwards to a DuckDB connection, recording each statement's time, RSS and profile."""

    def __init__(self, inner: duckdb.DuckDBPyConnection, rec: Recorder) -> None:
        self._inner = inner
        self._rec = rec

    def execute(self, sql: str, *args: Any) -> Any:
        profile = self._rec.next_profile()
        if profile is not None:
            self._inner.execute(f"SET profiling_output = '{profile}'")
        with self._rec.step(_statement_label(sql), "sql", sql) as rec:
            result = self._inner.execute(sql, *args)
        if profile is not None:
            rec["profile"] = _operators(profile)
        return _TimedResult(result, self._rec, sql)

    def sql(self, sql: str, *args: Any) -> Any:
        # Building a relation binds it (for read_csv that includes sniffing the file).
        with self._rec.step("bind " + _statement_label(sql), "sql", sql):
            relation = self._inner.sql(sql, *args)
        return _TimedResult(relation, self._rec, sql)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@contextlib.contextmanager
def instrumented(rec: Recorder) -> Iterator[None]:
    """Time the ingest's steps and statements without changing what they do."""
    from strataml.spine._artifacts import ArtifactStore

    # The module, not the function that strataml.data re-exports under the same name.
    ing = importlib.import_module("strataml.data._ingest")

    saved: list[tuple[Any, str, Any]] = []

    def wrap(owner: Any, name: str, label: str) -> None:
        if not hasattr(owner, name):  # the ingest changed shape: time what exists
            return
        original = getattr(owner, name)
        saved.append((owner, name, original))

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            with rec.step(label):
                return original(*args, **kwargs)

        setattr(owner, name, timed)

    original_duck = ing.duck

    def duck(*args: Any, **kwargs: Any) -> Any:
        con = original_duck(*args, **kwargs)
        if rec.profile_dir is not None:
            con.execute("SET enable_profiling = 'json'")
        return TimedConnection(con, rec)

    saved.append((ing, "duck", original_duck))
    ing.duck = duck
    for fn, label in (("open_source", "open source"), ("build_plan", "build validation plan"), ("finish_csv_rejects", "expose CSV rejects")):
        wrap(ing, fn, label)
    sources = importlib.import_module("strataml.data._sources")
    wrap(sources.Scan, "finish", "expose CSV rejects")
    steps = {
        "_parent": "read parent version", "_first_pass": "validate, good rows to Parquet (one pass)",
        "_clashes": "check keys of the first pass", "_check_unique": "check unique columns", "_find_duplicates": "find duplicates",
        "_counts": "count outcomes", "_table_checks": "table checks", "_write_quarantine": "write quarantine",
        "_write_files": "write snapshot files", "_store_files": "store snapshot files", "_commit": "commit to catalog",
    }
    for fn, label in steps.items():
        wrap(ing._Ingestion, fn, label)
    wrap(ArtifactStore, "put_file", "store artifact (sha256 + fsync)")
    try:
        yield
    finally:
        for owner, name, original in reversed(saved):
            setattr(owner, name, original)


def print_profile(records: list[dict[str, Any]], total: float, memory: bool = True) -> list[str]:
    """A readable step/statement breakdown (also returned as Markdown table rows, with the
    RSS columns when ``memory``: only meaningful when the ingest runs in its own process)."""
    lines = []
    print(f"\n{'step / statement':<78} {'s':>7} {'%':>5} {'peak RSS MB':>11} {'HWM after':>9}")
    for r in records:
        name = ("  " * r["depth"]) + r["name"]
        share = 100 * r.get("seconds", 0.0) / total if total else 0.0
        print(f"{name[:78]:<78} {r.get('seconds', 0.0):7.2f} {share:5.1f} {r['peak_rss_mb']:11.0f} {r.get('hwm_mb', 0):9.0f}")
        ops = r.get("profile", {}).get("operators")
        if ops and r.get("seconds", 0.0) >= 0.05 * total:
            top = ", ".join(f"{o['name']} {o['seconds']:.2f}s" for o in ops)
            print(f"{'':<6}operators: {top}")
        if r.get("seconds", 0.0) >= 0.02 * total:
            label = r["name"].replace("|", "\\|")
            row = f"| {'&nbsp;' * 2 * r['depth']}{label} | {r['seconds']:.2f} | {share:.0f}% |"
            lines.append(row + (f" {r['peak_rss_mb']:.0f} | {r.get('hwm_mb', 0):.0f} |" if memory else ""))
    return lines


# --- benchmark 1 -------------------------------------------------------------------


def bare_copy(csv: Path, out_dir: Path) -> tuple[float, float]:
    """The baseline: DuckDB's own CSV -> Parquet copy with default settings (wall s, CPU s)."""
    out = out_dir / "copy.parquet"
    t0, c0 = time.perf_counter(), time.process_time()
    con = duckdb.connect()
    con.execute(f"COPY (SELECT * FROM read_csv('{csv}')) TO '{out}' (FORMAT parquet)")
    con.close()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    out.unlink()
    return seconds, cpu


def strata_ingest(csv: Path, out_dir: Path, rec: Recorder | None = None) -> tuple[float, float, st.IngestReport]:
    """strataml's ingest into a fresh workspace created before the clock starts (wall s, CPU s)."""
    root = Path(tempfile.mkdtemp(prefix="ws-", dir=out_dir))
    ws = Workspace.init(root, example=False)
    c = contract()
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        if rec is None:
            report = st.ingest(ws, str(csv), contract=c)
        else:
            with instrumented(rec):
                report = st.ingest(ws, str(csv), contract=c)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        ws.close()
        shutil.rmtree(root, ignore_errors=True)
    assert report.status == "created", report.to_dict()
    assert report.accepted + report.rejected + report.duplicates == report.rows_read, report.to_dict()
    return seconds, cpu, report


def machine() -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} cores ({platform.machine()}), DuckDB {duckdb.__version__}, Python {platform.python_version()}; "
            f"load average at the end {load} (the machine is shared, so absolute times vary)")


def command() -> str:
    return "PYTHONPATH=src python bench/ingest_bench.py" + ("" if len(sys.argv) == 1 else " " + shlex.join(sys.argv[1:]))


def run_speed(args: argparse.Namespace) -> None:
    csv = ensure_csv(args.rows)
    size_mb = csv.stat().st_size / 1e6
    work = Path(tempfile.mkdtemp(prefix="strata-bench-", dir=DATA))
    try:
        print(f"warm-up (untimed) on {csv.name}, {size_mb:.0f} MB …")
        bare_copy(csv, work)
        strata_ingest(csv, work)
        copies: list[float] = []
        ingests: list[float] = []
        copy_cpu: list[float] = []
        ingest_cpu: list[float] = []
        report = None
        for i in range(args.reps):
            # Alternate which goes first so drift in the machine's load hits both alike.
            order = ("copy", "ingest") if i % 2 == 0 else ("ingest", "copy")
            for what in order:
                if what == "copy":
                    wall, cpu = bare_copy(csv, work)
                    copies.append(wall)
                    copy_cpu.append(cpu)
                else:
                    wall, cpu, report = strata_ingest(csv, work)
                    ingests.append(wall)
                    ingest_cpu.append(cpu)
            print(f"rep {i + 1}/{args.reps}: copy {copies[-1]:.2f}s  ingest {ingests[-1]:.2f}s  "
                  f"(load average {os.getloadavg()[0]:.1f})", flush=True)
        assert report is not None
        med_copy, med_ingest = statistics.median(copies), statistics.median(ingests)
        ratio = med_ingest / med_copy
        # Less sensitive to other work on the machine: each repetition's own ratio, and CPU time.
        paired = statistics.median(b / a for a, b in zip(copies, ingests, strict=True))
        cpu_ratio = statistics.median(ingest_cpu) / statistics.median(copy_cpu)
        verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
        print(f"\n{'':<34}{'median s':>10}{'min s':>8}{'max s':>8}{'median CPU s':>14}")
        print(f"{'bare DuckDB COPY csv->parquet':<34}{med_copy:>10.2f}{min(copies):>8.2f}{max(copies):>8.2f}{statistics.median(copy_cpu):>14.2f}")
        print(f"{'strataml ingest (end to end)':<34}{med_ingest:>10.2f}{min(ingests):>8.2f}{max(ingests):>8.2f}{statistics.median(ingest_cpu):>14.2f}")
        print(f"ratio {ratio:.2f}x (target <= {TARGET_RATIO}x: {verdict}); median of per-repetition ratios {paired:.2f}x; CPU-time ratio {cpu_ratio:.2f}x")
        print(f"rows_read {report.rows_read:,}, accepted {report.accepted:,}, rejected {report.rejected:,}, duplicates {report.duplicates:,}")

        profile_rows: list[str] = []
        if not args.no_profile:
            prof_dir = Path(tempfile.mkdtemp(prefix="profile-", dir=work))
            rec = Recorder(prof_dir)
            try:
                total, _, _ = strata_ingest(csv, work, rec)
            finally:
                rec.close()
            print(f"\ninstrumented ingest (untimed for the ratio, DuckDB profiling on): {total:.2f}s")
            profile_rows = print_profile(rec.records, total, memory=False)

        if not args.no_record:
            rules = ", ".join(f"{k} {v}" for k, v in sorted(report.rejected_by_rule.items()))
            entry = [
                f"### {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC — end to end vs bare DuckDB copy, {args.rows:,} rows",
                "",
                f"- Machine: {machine()}.",
                f"- Command: `{command()}`",
                f"- Data: {args.rows:,} rows x 7 columns, {size_mb:.0f} MB CSV, {BAD_FRACTION:.1%} bad rows; "
                f"rows_read {report.rows_read:,}, accepted {report.accepted:,}, rejected {report.rejected:,} ({rules}), "
                f"duplicates {report.duplicates:,}.",
                "",
                "| run | median s | min s | max s | median CPU s |",
                "|---|---:|---:|---:|---:|",
                f"| bare DuckDB `COPY (SELECT * FROM read_csv(…)) TO '….parquet'` | {med_copy:.2f} | {min(copies):.2f} | "
                f"{max(copies):.2f} | {statistics.median(copy_cpu):.2f} |",
                f"| strataml `ingest` (read, validate, quarantine, dedup, snapshot, catalog) | {med_ingest:.2f} | {min(ingests):.2f} | "
                f"{max(ingests):.2f} | {statistics.median(ingest_cpu):.2f} |",
                "",
                f"**Ratio {ratio:.2f}x** (median wall times of {args.reps} alternating repetitions after one warm-up each; "
                f"target ≤ {TARGET_RATIO}x: {verdict.lower()}). Median of the per-repetition ratios {paired:.2f}x; "
                f"ratio of median CPU times {cpu_ratio:.2f}x.",
            ]
            if profile_rows:
                entry += [
                    "",
                    "Where an instrumented ingest spends its time (steps and DuckDB statements taking ≥ 2%):",
                    "",
                    "| step / statement | s | share |",
                    "|---|---:|---:|",
                    *profile_rows,
                ]
            record("\n".join(entry))
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- decomposition -----------------------------------------------------------------


def run_decompose(args: argparse.Namespace) -> None:
    """Cost of the ingest's parts and of cheaper alternatives, as one-thread CPU time.

    Each line builds on the previous ones' setup in a fresh connection; the minimum of
    ``--reps`` runs is reported, which other work on the machine disturbs far less than
    wall time. The statements are built from the same ``build_plan`` as ``ingest``:
    the staged pipeline (every row materialised in ``_staged``, then checked and copied,
    as an append still does) beside the one-pass copy a new dataset's batch takes. They
    are a diagnosis aid; the end-to-end figure is benchmark 1's.
    """
    from strataml.data._validate import build_plan
    from strataml.spine._engine import duck

    csv = ensure_csv(args.rows)
    work = Path(tempfile.mkdtemp(prefix="strata-decompose-", dir=DATA))
    out = work / "out.parquet"
    names = ["tx_id", "user_id", "amount", "refund", "country", "merchant", "ts"]
    rejects = "store_rejects=true, rejects_table='_rej', rejects_scan='_rej_scan'"
    varchar = f"read_csv('{csv}', all_varchar=true, header=true, {rejects})"
    explicit = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in names) + "}"
    sniffed_once = f"read_csv('{csv}', columns={explicit}, header=true, auto_detect=false, delim=',', quote='\"', {rejects})"
    typed = "{" + ", ".join(f"'{c.name}': '{c.sql_type}'" for c in contract().columns) + "}"
    cols = ", ".join(names)
    dedup = (  # as the ingest finds repeated keys (for a batch of a new dataset)
        "CREATE TEMP TABLE _dup AS WITH repeated AS (SELECT tx_id, min(rowid) AS _first FROM _staged WHERE _errors IS NULL "
        "GROUP BY tx_id HAVING count(*) > 1) SELECT s.rowid AS _row FROM _staged s JOIN repeated f USING (tx_id) "
        "WHERE s._errors IS NULL AND s.rowid <> f._first"
    )
    write = (
        f"COPY (SELECT {cols} FROM _staged s WHERE _errors IS NULL AND NOT EXISTS (SELECT 1 FROM _dup d WHERE d._row = s.rowid)) "
        f"TO '{out}' (FORMAT parquet)"
    )

    def pipeline(source: str, one_pass: bool = False) -> Any:
        def go(con: duckdb.DuckDBPyConnection) -> None:
            con.execute(f"CREATE OR REPLACE TEMP VIEW _src AS SELECT * FROM {source}")
            plan = build_plan(con, contract(), list(con.sql("SELECT * FROM _src LIMIT 0").columns))
            select = plan.select
            if one_pass:
                con.execute(f"COPY (SELECT {cols} FROM ({select}) WHERE _errors IS NULL) TO '{out}' (FORMAT parquet)")
                con.execute(f"SELECT tx_id FROM read_parquet('{out}') GROUP BY tx_id HAVING count(*) > 1").fetchall()
                return
            con.execute(f"CREATE TEMP TABLE _staged AS {select}")
            con.execute(dedup)
            con.execute(write)
        return go

    def over_table(sql: str) -> Any:
        def go(con: duckdb.DuckDBPyConnection) -> None:
            con.execute(sql).fetchall()
        return go

    def ingest_once(con: duckdb.DuckDBPyConnection) -> None:
        root = Path(tempfile.mkdtemp(prefix="ws-", dir=work))
        Workspace.init(root, example=False).close()
        with Workspace(root, threads=1) as ws:
            st.ingest(ws, str(csv), contract=contract())
        shutil.rmtree(root, ignore_errors=True)

    cases: list[tuple[str, Any, bool]] = [  # (label, work, needs the CSV loaded as a VARCHAR table `_t`)
        ("bare DuckDB COPY csv->parquet (baseline)", over_table(f"COPY (SELECT * FROM read_csv('{csv}')) TO '{out}' (FORMAT parquet)"), False),
        ("strataml ingest, end to end (incl. creating the workspace)", ingest_once, False),
        ("one bind of the read_csv view (sniffs the file)", lambda con: con.sql(f"SELECT * FROM {varchar} LIMIT 0").columns, False),
        ("read the CSV as VARCHAR with rejects (count)", over_table(f"SELECT count(*) FROM {varchar}"), False),
        ("ts: TRY_CAST AS TIMESTAMPTZ + timezone (count)", over_table("SELECT count(timezone('UTC', TRY_CAST(ts AS TIMESTAMPTZ))) FROM _t"), True),
        ("ts: TRY_CAST AS TIMESTAMP (count)", over_table("SELECT count(TRY_CAST(ts AS TIMESTAMP)) FROM _t"), True),
        ("validation query over a VARCHAR table (aggregate)", lambda con: over_table_plan(con, "SELECT sum(length(_errors)), count(ts) FROM ({})"), True),
        ("validation query materialised as _staged", lambda con: over_table_plan(con, "CREATE TEMP TABLE _x AS {}"), True),
        ("staged pipeline: view, plan, _staged, _dup, COPY", pipeline(varchar), False),
        ("  same, explicit columns after one sniff (add one bind above)", pipeline(sniffed_once), False),
        ("  same, valid rows copied straight to Parquet + key check on it", pipeline(sniffed_once, one_pass=True), False),
        ("read_csv with the contract's types + rejects -> Parquet", over_table(
            f"COPY (SELECT * FROM read_csv('{csv}', columns={typed}, header=true, auto_detect=false, {rejects})) TO '{out}' (FORMAT parquet)"), False),
    ]

    def over_table_plan(con: duckdb.DuckDBPyConnection, template: str) -> None:
        plan = build_plan(con, contract(), names, source="_t")
        con.execute(template.format(plan.select)).fetchall()

    results = []
    try:
        print(f"one-thread CPU seconds, minimum of {args.reps} runs, {csv.name}")
        for label, fn, needs_table in cases:
            runs = []
            for _ in range(args.reps):
                con = duck("1GB", 1, work)
                if needs_table:
                    con.execute(f"CREATE TABLE _t AS SELECT * FROM read_csv('{csv}', all_varchar=true, header=true)")
                c0 = time.process_time()
                fn(con)
                runs.append(time.process_time() - c0)
                con.close()
                out.unlink(missing_ok=True)
            results.append((label, min(runs)))
            print(f"{label:<64} {min(runs):6.2f}", flush=True)
        if not args.no_record:
            entry = [
                f"### {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC — decomposition, one-thread CPU seconds, {args.rows:,} rows",
                "",
                f"- Machine: {machine()}.",
                f"- Command: `{command()}`",
                "",
                "| part or alternative | CPU s |",
                "|---|---:|",
                *(f"| {label.strip()} | {secs:.2f} |" for label, secs in results),
            ]
            record("\n".join(entry))
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- critical path ------------------------------------------------------------------


def _thread_cpu() -> dict[str, float]:
    """CPU seconds so far of each thread of this process (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for stat in Path(f"/proc/{os.getpid()}/task").glob("*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            out[stat.parent.name] = (int(fields[11]) + int(fields[12])) / tick
    return out


def run_critical_path(args: argparse.Namespace) -> None:
    """The CPU each side spends, and its critical path: what it would take on idle cores.

    Per statement, the busiest thread's CPU is the least wall time the statement can
    take however idle the machine is; summed over the ingest's statements plus the
    time outside DuckDB (Python, catalog, hashing) it estimates the ingest's idle wall
    time. Other work on the machine delays threads but does not move CPU between
    them, so this holds up on a shared machine where wall time does not.
    """
    from strataml.spine import _engine as engine

    csv = ensure_csv(args.rows)
    ingest_module = sys.modules["strataml.data._ingest"]
    statements: list[tuple[str, float, float]] = []

    class Timed:
        def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
            self._con = con

        def execute(self, sql: str, *a: Any) -> Any:
            before = _thread_cpu()
            result = self._con.execute(sql, *a)
            after = _thread_cpu()
            spent = [after[t] - before.get(t, 0.0) for t in after]
            statements.append((_statement_label(sql), sum(spent), max(spent)))
            return result

        def __getattr__(self, name: str) -> Any:
            return getattr(self._con, name)

    plain = engine.duck
    work = Path(tempfile.mkdtemp(prefix="strata-critical-", dir=DATA))

    def one_ingest() -> tuple[float, float]:
        root = Path(tempfile.mkdtemp(prefix="ws-", dir=work))
        ws = Workspace.init(root, example=False)
        statements.clear()
        ingest_module.duck = lambda *a, **k: Timed(plain(*a, **k))
        try:
            c0 = time.process_time()
            st.ingest(ws, str(csv), contract=contract())
            cpu = time.process_time() - c0
        finally:
            ingest_module.duck = plain
            ws.close()
            shutil.rmtree(root, ignore_errors=True)
        in_duck = sum(total for _, total, _ in statements)
        return cpu, sum(busiest for _, _, busiest in statements) + (cpu - in_duck)

    def one_copy() -> tuple[float, float]:
        con = duckdb.connect()
        before = _thread_cpu()
        con.execute(f"COPY (SELECT * FROM read_csv('{csv}')) TO '{work / 'copy.parquet'}' (FORMAT parquet)")
        after = _thread_cpu()
        con.close()
        spent = [after[t] - before.get(t, 0.0) for t in after]
        return sum(spent), max(spent)

    try:
        one_copy(), one_ingest()  # warm-up
        runs = [(one_copy(), one_ingest()) for _ in range(args.reps)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    copy_cpu = statistics.median(c[0] for c, _ in runs)
    copy_path = statistics.median(c[1] for c, _ in runs)
    ingest_cpu = statistics.median(i[0] for _, i in runs)
    ingest_path = statistics.median(i[1] for _, i in runs)
    rows = [f"| bare DuckDB COPY csv->parquet | {copy_cpu:.2f} | {copy_path:.2f} |",
            f"| strataml ingest | {ingest_cpu:.2f} | {ingest_path:.2f} |",
            f"| ratio | {ingest_cpu / copy_cpu:.2f}x | {ingest_path / copy_path:.2f}x |"]
    top = sorted(statements, key=lambda s: -s[2])[:6]
    print("\n".join(rows))
    for label, total, busiest in top:
        print(f"  {busiest:.2f} (of {total:.2f} CPU) {label}")
    if not args.no_record:
        record("\n".join([
            f"### {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC — CPU and critical path, {args.rows:,} rows",
            "",
            f"- Machine: {machine()}.",
            f"- Command: `{command()}`",
            f"- Median of {args.reps} alternating runs. Critical path: per DuckDB statement the busiest thread's CPU, "
            "summed, plus the ingest's time outside DuckDB; it estimates wall time on idle cores.",
            "",
            "| run | CPU s | critical path s |",
            "|---|---:|---:|",
            *rows,
            "",
            "The ingest's longest statements (busiest thread's CPU s, of the statement's total CPU s): "
            + "; ".join(f"{label} {busiest:.2f} of {total:.2f}" for label, total, busiest in top) + ".",
        ]))


# --- benchmark 2 -------------------------------------------------------------------


def child(ws_dir: str, csv: str, out: str) -> None:
    """Run one instrumented ingest (in the child process) and write what it saw as JSON."""
    ws = Workspace.init(Path(ws_dir), example=False)
    prof_dir = Path(ws_dir) / "profiles"
    prof_dir.mkdir()
    hwm_before = _hwm_mb()
    rec = Recorder(prof_dir)
    t0 = time.perf_counter()
    try:
        with instrumented(rec):
            report = st.ingest(ws, csv, contract=contract())
    finally:
        rec.close()
    seconds = time.perf_counter() - t0
    ws.close()
    Path(out).write_text(json.dumps({
        "seconds": seconds, "report": report.to_dict(), "steps": rec.records, "vm_hwm_mb": _hwm_mb(), "hwm_before_mb": hwm_before,
        "memory_limit": ws.settings.memory_limit,
    }))


def run_big(args: argparse.Namespace) -> None:
    target = int(args.big_gb * 1e9)
    free = shutil.disk_usage(DATA.parent).free
    need = int(target * 4.5)  # CSV + spilled staging + snapshot + quarantine, with margin
    print(f"disk: {free / 1e9:.0f} GB free, need about {need / 1e9:.0f} GB")
    if free < need:
        sys.exit(f"not enough disk space: {free / 1e9:.0f} GB free, about {need / 1e9:.0f} GB needed")
    DATA.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="strata-big-", dir=DATA))
    try:
        csv = work / "big.csv"
        t0 = time.perf_counter()
        print(f"generating {args.big_gb:g} GB CSV …", flush=True)
        rows = write_big_csv(csv, target)
        size_gb = csv.stat().st_size / 1e9
        print(f"generated {size_gb:.2f} GB, {rows:,} rows in {time.perf_counter() - t0:.0f}s", flush=True)
        out = work / "child.json"
        ws_dir = work / "ws"
        # GNU time measures the child's peak RSS from a small parent. getrusage(RUSAGE_CHILDREN)
        # in this process would not do: a child spawned with vfork/posix_spawn is charged
        # this process's own high-water mark (here inflated by generating the file) at exec.
        timed = work / "time.txt"
        cmd = [sys.executable, __file__, "--_child", str(ws_dir), str(csv), str(out)]
        gnu_time = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
        if gnu_time:
            cmd = [gnu_time, "-f", "%M", "-o", str(timed), *cmd]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, check=False)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            sys.exit(f"the ingest failed with exit code {proc.returncode} after {wall:.0f}s")
        seen = json.loads(out.read_text())
        if gnu_time:
            peak_mb, how = int(timed.read_text().split()[-1]) / 1024, "GNU time %M"
        else:
            peak_mb, how = seen["vm_hwm_mb"], "the child's VmHWM"
        report = seen["report"]
        ok = peak_mb < TARGET_RSS_GB * 1024
        verdict = "meets" if ok else "MISSES"
        print(f"\ningest of {size_gb:.2f} GB ({report['rows_read']:,} rows): wall {wall:.0f}s (ingest itself {seen['seconds']:.0f}s), "
              f"peak RSS {peak_mb:.0f} MB (target < {TARGET_RSS_GB * 1024:.0f} MB: {verdict})")
        print(f"accepted {report['accepted']:,}, rejected {report['rejected']:,}, duplicates {report['duplicates']:,}")
        print(f"peak RSS measured by {how}; the child's own VmHWM: {seen['hwm_before_mb']:.0f} MB before the ingest "
              f"(imports, workspace), {seen['vm_hwm_mb']:.0f} MB at exit")
        steps = seen["steps"]
        profile_rows = print_profile(steps, seen["seconds"])
        spills = [
            f"{s['name']}: peak buffer {s['profile']['peak_buffer_mb']:.0f} MB, spilled {s['profile']['spilled_mb']:.0f} MB"
            for s in steps if s.get("profile") and s.get("seconds", 0) >= 0.02 * seen["seconds"]
        ]
        for line in spills:
            print("  " + line)
        if not args.no_record:
            entry = [
                f"### {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC — peak memory, {size_gb:.1f} GB CSV",
                "",
                f"- Machine: {machine()}; workspace `memory_limit` left at its default ({seen['memory_limit']}).",
                f"- Command: `{command()}`",
                f"- Data: {size_gb:.2f} GB CSV, {rows:,} rows x 7 columns, {BAD_FRACTION:.1%} bad rows; rows_read {report['rows_read']:,}, "
                f"accepted {report['accepted']:,}, rejected {report['rejected']:,}, duplicates {report['duplicates']:,}.",
                f"- Wall time {wall:.0f} s (child process; ingest call {seen['seconds']:.0f} s, instrumented, DuckDB profiling on).",
                f"- **Peak RSS {peak_mb:.0f} MB** ({how}; the child's own VmHWM {seen['vm_hwm_mb']:.0f} MB, of which "
                f"{seen['hwm_before_mb']:.0f} MB before the ingest started; target < {TARGET_RSS_GB * 1024:.0f} MB: {verdict.lower()}).",
                "",
                "| step / statement | s | share | sampled peak RSS MB | process RSS high-water mark after, MB |",
                "|---|---:|---:|---:|---:|",
                *profile_rows,
            ]
            if spills:
                entry += ["", "DuckDB buffer and spill figures of the main statements: " + "; ".join(spills) + "."]
            record("\n".join(entry))
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- BENCHMARKS.md -----------------------------------------------------------------


def record(entry: str) -> None:
    """Add ``entry`` at the end of BENCHMARKS.md's Ingestion section."""
    from record import record as record_in

    record_in("Ingestion", entry)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000, help="rows of the speed benchmark's CSV")
    p.add_argument("--reps", type=int, default=5, help="timed repetitions of each side")
    p.add_argument("--no-profile", action="store_true", help="skip the instrumented breakdown run")
    p.add_argument("--big", action="store_true", help="run the peak-memory benchmark instead")
    p.add_argument("--decompose", action="store_true", help="measure the ingest's parts and cheaper alternatives instead")
    p.add_argument("--critical-path", action="store_true", help="measure CPU and the critical path on idle cores instead")
    p.add_argument("--big-gb", type=float, default=5.0, help="size of the big CSV in GB")
    p.add_argument("--no-record", action="store_true", help="print only; do not append to BENCHMARKS.md")
    p.add_argument("--_child", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._child:
        child(*args._child)
    elif args.big:
        run_big(args)
    elif args.decompose:
        run_decompose(args)
    elif args.critical_path:
        run_critical_path(args)
    else:
        run_speed(args)


if __name__ == "__main__":
    main()
