"""Pipelines: what a step costs, and what the cache saves.

A pipeline of ``--steps`` small steps (a chain; each sums a column of a 200,000-row
DataFrame returned by its upstream step) is run three ways in one workspace:

* cold — every step runs in its own worker process and its output is stored;
* cached — the same run again: every step's key matches, nothing runs;
* direct — the same functions called in this process (the baseline: no processes,
  no catalog, no storage).

Reports medians of ``--reps`` runs and the ratios cold/direct (the per-step overhead
of isolation and recording) and cached/cold (what a no-op re-run costs).

    PYTHONPATH=src python bench/pipelines_bench.py [--steps 4] [--reps 3] [--no-record]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

DEFINITIONS = """
import strataml as st


@st.step
def s0(rows: int, salt: int):
    import pandas as pd

    return pd.DataFrame({{"x": range(rows)}})
{chain}

bench = st.Pipeline("bench", [s0{names}], params={{"rows": 200_000, "salt": 0}})
"""
LINK = """

@st.step(inputs={{"df": "step:s{prev}"}})
def s{i}(df):
    return df.assign(x=df["x"] + 1)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    import strataml as st

    chain = "".join(LINK.format(i=i, prev=i - 1) for i in range(1, args.steps))
    names = "".join(f", s{i}" for i in range(1, args.steps))
    root = Path(tempfile.mkdtemp(prefix="strata-pipes-bench-")) / "ws"
    st.Workspace.init(root, example=False).close()
    (root / "definitions.py").write_text(
        textwrap.dedent(DEFINITIONS.format(chain=chain, names=names))
    )
    ws = st.Workspace.open(root)
    pipeline = ws.definitions.get("pipeline", "bench")

    def direct() -> None:
        out = pipeline.steps["s0"].fn(200_000, 0)
        for i in range(1, args.steps):
            out = pipeline.steps[f"s{i}"].fn(out)

    cold, cached, base = [], [], []
    for rep in range(args.reps):
        t = time.perf_counter()
        run = st.run_pipeline(ws, "bench", params={"salt": rep + 1})  # a new salt: nothing cached
        cold.append(time.perf_counter() - t)
        assert run.state == "succeeded", run.error
        t = time.perf_counter()
        again = st.run_pipeline(ws, "bench", params={"salt": rep + 1})
        cached.append(time.perf_counter() - t)
        assert all(s.state == "cached" for s in again.steps)
        t = time.perf_counter()
        direct()
        base.append(time.perf_counter() - t)
    ws.close()
    c, k, b = statistics.median(cold), statistics.median(cached), statistics.median(base)
    lines = [
        f"### {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC — {args.steps}-step chain, 200,000-row DataFrames",
        "",
        f"Machine: {os.cpu_count()} cores. Medians of {args.reps} runs.",
        "",
        "| run | seconds | per step |",
        "|---|---|---|",
        f"| direct calls (baseline) | {b:.3f} | {b / args.steps:.3f} |",
        f"| cold run (worker processes, stored outputs) | {c:.3f} | {c / args.steps:.3f} |",
        f"| re-run, nothing changed (all cached) | {k:.3f} | {k / args.steps:.3f} |",
        "",
        f"cold / direct = {c / b:.1f} times; cached / cold = {k / c:.3f}.",
        "",
        f"    PYTHONPATH=src python bench/pipelines_bench.py --steps {args.steps} --reps {args.reps}",
    ]
    print("\n".join(lines))
    if not args.no_record:
        from record import record

        record("Pipelines", "\n".join(lines))


if __name__ == "__main__":
    main()
