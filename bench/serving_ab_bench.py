"""The serving bench for a change to the request path: two gateways (this tree and another
checkout of strataml) and the bare Starlette endpoint on one workspace, measured in turn in
the same run, each gateway's throughput a ratio of the bare endpoint's, and the server
process's own CPU time per request (from /proc: steadier than throughput on a busy machine).

Setup, load and bare endpoint are :mod:`serving_bench`'s (100-tree LightGBM over 10 features
looked up in the SQLite online store, auth, rate limits, metrics, fsync'ed prediction log).

    PYTHONPATH=src python bench/serving_ab_bench.py --other /path/to/other/checkout [--seconds 10] [--repeats 6] [--append "what changed"]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from serving_bench import (
    BARE_APP,
    BODIES,
    ENV,
    ROOT,
    USERS,
    WRK_LUA,
    free_port,
    make_workspace,
    wait_ready,
    wrk,
)

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--other",
        type=Path,
        required=True,
        help="another checkout of strataml (its src/ is served as 'other')",
    )
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=6, help="runs; even, so that each gateway goes first as often")
    ap.add_argument(
        "--append",
        metavar="TITLE",
        help="add the figures to BENCHMARKS.md's Serving section under this title",
    )
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="strata-ab-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        ws, key = make_workspace(root, 20_000)
        ws_root = ws.root  # type: ignore[attr-defined]
        ws.close()  # type: ignore[attr-defined]
        script = root / "bench.lua"
        script.write_text(
            WRK_LUA.replace("BODY", BODIES["online"])
            .replace("USERS", str(USERS))
            .replace("KEY", key)
        )
        (root / "bare.py").write_text(BARE_APP)
        bare_port = free_port()
        procs.append(
            subprocess.Popen([sys.executable, str(root / "bare.py"), str(bare_port)], env=ENV)
        )
        gateways = {}
        for label, src in (("this", ROOT / "src"), ("other", args.other.resolve() / "src")):
            port = free_port()
            p = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "strataml",
                    "serve",
                    "--port",
                    str(port),
                    "-m",
                    "bench_online",
                    "--rate",
                    "1000000",
                    "--burst",
                    "1000000",
                    "--log-level",
                    "warning",
                    "-w",
                    str(ws_root),
                ],
                env={**ENV, "PYTHONPATH": str(src)},
            )
            procs.append(p)
            gateways[label] = (
                f"http://127.0.0.1:{port}/v1/models/bench_online/predict",
                p.pid,
                port,
            )
        bare_url = f"http://127.0.0.1:{bare_port}/v1/models/bench/predict"
        wait_ready(bare_url)
        for _, _, port in gateways.values():
            wait_ready(f"http://127.0.0.1:{port}/readyz")
        for url in (bare_url, *(g[0] for g in gateways.values())):
            wrk(url, script, 2)  # warm up
        rows: dict[str, list[tuple[float, float]]] = {k: [] for k in gateways}
        table: list[str] = []
        for i in range(args.repeats):
            order = list(gateways) if i % 2 == 0 else list(reversed(gateways))
            base = wrk(bare_url, script, args.seconds)
            line = [f"run {i + 1}: bare {base['rps']:,.0f}/s"]
            for label in order:
                url, pid, _ = gateways[label]
                c0 = cpu_seconds(pid)
                got = wrk(url, script, args.seconds)
                cpu_us = 1e6 * (cpu_seconds(pid) - c0) / max(1, got["requests"])
                rows[label].append((got["rps"] / base["rps"], cpu_us))
                line.append(
                    f"{label} {got['rps']:,.0f}/s = {got['rps'] / base['rps']:.1%}, {cpu_us:.0f} us CPU/request"
                )
            print("; ".join(line) + f"; load {os.getloadavg()[0]:.1f}", flush=True)
            (t_ratio, t_cpu), (o_ratio, o_cpu) = rows["this"][-1], rows["other"][-1]
            table.append(
                f"| {i + 1} | {base['rps']:,.0f} | {t_ratio:.1%} | {t_cpu:.0f} | {o_ratio:.1%} | {o_cpu:.0f} | "
                f"{os.getloadavg()[0]:.1f} |"
            )
        summary = {
            label: (statistics.median(r for r, _ in got), statistics.median(c for _, c in got))
            for label, got in rows.items()
        }
        for label, (ratio, cpu) in summary.items():
            print(f"{label}: median ratio {ratio:.1%}, median CPU {cpu:.0f} us/request")
        paired = paired_difference(rows)
        print(f"this - other, paired by run: {paired[0] * 100:+.1f} points of ratio, {paired[1]:+.0f} us CPU/request")
        if args.append:
            append(args, table, summary, paired)
    finally:
        for p in procs:
            p.terminate()
            p.wait(60)
        shutil.rmtree(root, ignore_errors=True)


def paired_difference(rows: dict[str, list[tuple[float, float]]]) -> tuple[float, float]:
    """The mean over runs of this gateway's ratio and CPU minus the other's in the same run.

    The gateway measured first after the bare endpoint tends to do better (by a few points
    here); the order alternates, so over an even number of runs this cancels, which the
    medians of each gateway's own runs do not guarantee."""
    pairs = list(zip(rows["this"], rows["other"], strict=True))
    return (statistics.fmean(t[0] - o[0] for t, o in pairs), statistics.fmean(t[1] - o[1] for t, o in pairs))


def append(
    args: argparse.Namespace, table: list[str], summary: dict[str, tuple[float, float]], paired: tuple[float, float]
) -> None:
    import time

    from record import record

    (t_ratio, t_cpu), (o_ratio, o_cpu) = summary["this"], summary["other"]
    lines = [
        f"### {args.append} ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        "",
        f'On this machine ({os.cpu_count()} cores, shared): the bare endpoint and two gateways, this tree ("this") and',
        f'`{args.other.name}` ("other"), on one workspace, {args.seconds} s of wrk each in turn, the gateways\' order',
        "alternating; each gateway's throughput as a share of the bare endpoint's in the same turn, and the server",
        "process's own CPU time per request. Setup as in `serving_bench.py` (online features, auth, limits, metrics, log).",
        "",
        "| run | bare req/s | this ratio | this CPU us/request | other ratio | other CPU us/request | load avg |",
        "|---|---|---|---|---|---|---|",
        *table,
        "",
        f"Medians: this **{t_ratio:.1%}** of the bare endpoint, {t_cpu:.0f} us CPU a request; other **{o_ratio:.1%}**, "
        f"{o_cpu:.0f} us CPU a request. Paired by run (this minus other, the order alternating): "
        f"**{paired[0] * 100:+.1f} points** of ratio, {paired[1]:+.0f} us CPU a request.",
        "",
        f"Reproduce: `PYTHONPATH=src python bench/serving_ab_bench.py --other OTHER_CHECKOUT --seconds {args.seconds} "
        f"--repeats {args.repeats} --append TITLE`",
    ]
    record("Serving", "\n".join(lines))


if __name__ == "__main__":
    main()
