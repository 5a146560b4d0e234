"""Start-up benchmark: whole processes, each against ``python -c "import duckdb"`` in the same run.

Measures the wall time of fresh processes (median of ``--reps`` after one warm-up each):

- ``python -c "import duckdb"`` -- the baseline, reported beside every figure;
- ``strata --help`` -- target <= 0.3 s;
- ``python -c "import strataml"`` -- target <= 0.3 s;
- ``strata ingest`` of the 1M-row, 7-column transactions CSV (bench/ingest_bench.py's
  data and contract) into a fresh workspace, against a whole-process DuckDB
  ``COPY (SELECT * FROM read_csv(...)) TO '....parquet'`` of the same file -- target <= 1.5x;
- the floor of any ingest built on strataml's stack: the same copy in a process that first
  imports Typer, rich, pydantic, SQLAlchemy and Arrow and opens a SQLite catalog (no
  validation, no counting, no hashing, no commit).

Run from the repository root::

    PYTHONPATH=src python bench/startup_bench.py
"""

from __future__ import annotations

import argparse
import datetime as dt
import inspect
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ingest_bench

TARGET_SECONDS = 0.3
TARGET_INGEST_RATIO = 1.5
STRATA = [sys.executable, "-m", "strataml.cli.main"]


def timed(cmd: list[str], cwd: Path | None = None, before: Callable[[], None] | None = None) -> float:
    """Wall seconds of one whole process (``before`` runs untimed first)."""
    if before is not None:
        before()
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def median_of(reps: int, cmd: list[str], cwd: Path | None = None, before: Callable[[], None] | None = None) -> float:
    timed(cmd, cwd, before)
    return statistics.median(timed(cmd, cwd, before) for _ in range(reps))


def definitions() -> str:
    """definitions.py declaring the ingest benchmark's contract."""
    return (
        "import datetime as dt\n\nimport strataml as st\n\n\n"
        + inspect.getsource(ingest_bench.contract)
        + "\n\ntransactions = contract()\n"
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--ingest-reps", type=int, default=3)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--no-record", action="store_true")
    args = p.parse_args(argv)

    duck = median_of(args.reps, [sys.executable, "-c", "import duckdb"])
    help_s = median_of(args.reps, [*STRATA, "--help"])
    imp = median_of(args.reps, [sys.executable, "-c", "import strataml"])

    csv = ingest_bench.ensure_csv(args.rows)
    work = Path(tempfile.mkdtemp(prefix="startup-", dir=ingest_bench.DATA))
    try:
        out = work / "copy.parquet"
        copy_sql = f"COPY (SELECT * FROM read_csv('{csv}')) TO '{out}' (FORMAT parquet)"
        copy_cmd = [sys.executable, "-c", f"import duckdb; duckdb.connect().execute({copy_sql!r})"]
        floor_cmd = [sys.executable, "-c", (
            "import typer, rich, pydantic, duckdb, pyarrow, pyarrow.parquet, sqlalchemy as sa\n"
            f"e = sa.create_engine('sqlite:///{work / 'floor.db'}'); c = e.connect(); c.execute(sa.text('SELECT 1')); c.close()\n"
            f"duckdb.connect().execute({copy_sql!r})"
        )]
        ws = work / "ws"

        def fresh_workspace() -> None:
            shutil.rmtree(ws, ignore_errors=True)
            subprocess.run([*STRATA, "init", str(ws)], check=True, stdout=subprocess.DEVNULL)
            (ws / "definitions.py").write_text(definitions())

        copies, ingests, floors = [], [], []
        for i in range(args.ingest_reps + 1):  # the first round warms the page cache
            c = timed(copy_cmd)
            f = timed(floor_cmd)
            g = timed([*STRATA, "ingest", str(csv), "--contract", "transactions", "--workspace", str(ws)],
                      before=fresh_workspace)
            if i:
                copies.append(c)
                floors.append(f)
                ingests.append(g)
        copy_s, ingest_s, floor_s = statistics.median(copies), statistics.median(ingests), statistics.median(floors)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    ratio = ingest_s / copy_s
    lines = [
        f"python -c 'import duckdb' (baseline)  {duck:.3f} s",
        f"strata --help                          {help_s:.3f} s  ({help_s / duck:.2f}x the baseline; target <= {TARGET_SECONDS} s)",
        f"python -c 'import strataml'            {imp:.3f} s  ({imp / duck:.2f}x the baseline; target <= {TARGET_SECONDS} s)",
        f"DuckDB CSV->Parquet copy, whole process {copy_s:.2f} s",
        f"the copy after strataml's imports       {floor_s:.2f} s  ({floor_s / copy_s:.2f}x the copy: the floor of an ingest on this stack)",
        f"strata ingest, whole process            {ingest_s:.2f} s  ({ratio:.2f}x the copy; target <= {TARGET_INGEST_RATIO}x)",
    ]
    print("\n".join(lines))
    if args.no_record:
        return
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    entry = (
        f"### {dt.date.today().isoformat()}: start-up and whole-process ingest\n\n"
        f"Machine: {os.cpu_count()} cores ({platform.machine()}), DuckDB {duckdb.__version__}, "
        f"Python {platform.python_version()}; load average at the end {load}. "
        f"Medians of {args.reps} (start-up) and {args.ingest_reps} (ingest, {args.rows} rows) runs.\n\n"
        + "\n".join(f"    {ln}" for ln in lines)
        + "\n\nCommand: `PYTHONPATH=src python bench/startup_bench.py"
        + ("" if argv is None and len(sys.argv) == 1 else " " + shlex.join(argv if argv is not None else sys.argv[1:]))
        + "`\n"
    )
    from record import record

    record("Start-up", entry)


if __name__ == "__main__":
    main()
