"""Queue benchmark: scoring through a queue and a worker against the HTTP gateway, end to end.

The same workspace and model as the serving benchmark (``bench_online``: a 100-tree
LightGBM classifier over 10 features looked up in the SQLite online store for 10,000
users; each request names one user). Baseline: ``strata serve`` (one worker, auth, the
fsync'ed prediction log) loaded by ``wrk`` (16 connections), as in
``bench/serving_bench.py``. Queue: one ``strata worker`` process consumes requests (one
instance each, the caller's key in a header) and publishes replies; this process
publishes N requests in batches and receives the N replies concurrently; throughput is
N over the time from the first publish to the last reply. Both run in the same
invocation, alternating, on the same machine.

    PYTHONPATH=src python bench/queue_bench.py [--messages 40000] [--seconds 10] [--backends sqlite,amqp] [--append]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving_bench import BODIES, ENV, USERS, WRK_LUA, free_port, make_workspace, wait_ready, wrk

URLS = {"sqlite": None, "amqp": "amqp://guest:guest@127.0.0.1:5672/", "redis": os.environ.get("STRATA_BENCH_REDIS", "redis://127.0.0.1:6379/8"), "nats": "nats://127.0.0.1:4222"}


def http_baseline(ws_root: Path, key: str, seconds: int) -> dict[str, float]:
    script = ws_root.parent / "bench.lua"
    script.write_text(WRK_LUA.replace("BODY", BODIES["online"]).replace("USERS", str(USERS)).replace("KEY", key))
    port = free_port()
    gw = subprocess.Popen([sys.executable, "-m", "strataml", "serve", "--port", str(port), "-m", "bench_online", "--rate", "1000000",
                           "--burst", "1000000", "--log-level", "warning", "-w", str(ws_root)], env=ENV)
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz")
        wrk(f"http://127.0.0.1:{port}/v1/models/bench_online/predict", script, 2)
        return wrk(f"http://127.0.0.1:{port}/v1/models/bench_online/predict", script, seconds)
    finally:
        gw.terminate()
        gw.wait(60)


async def round_trip(url: str, queue: str, key: str, n: int, batch: int = 500) -> float:
    """Seconds from the first publish of ``n`` requests to the last reply."""
    from strataml.spine import Outgoing, open_queue

    pub, sub = open_queue(url), open_queue(url)
    import random

    rnd = random.Random(7)
    headers = {"authorization": f"Bearer {key}"}
    bodies = [orjson.dumps({"model": "bench_online", "instances": [{"user_id": f"u{rnd.randrange(USERS)}"}]}) for _ in range(1000)]
    seen: set[str] = set()
    errors = 0

    async def consume() -> None:
        nonlocal errors
        while len(seen) < n:
            got = await sub.fetch(f"{queue}-results", 1000, wait=1.0)
            for d in got:
                if b'"error"' in d.body[:200]:
                    errors += 1
                seen.add(d.id)
            await sub.ack(got)

    t0 = time.perf_counter()
    reader = asyncio.create_task(consume())
    for i in range(0, n, batch):
        await pub.publish_many(queue, [Outgoing(bodies[j % 1000], uuid.uuid4().hex, headers) for j in range(i, min(n, i + batch))])
        await asyncio.sleep(0)
    await reader
    elapsed = time.perf_counter() - t0
    await pub.close()
    await sub.close()
    if errors:
        raise RuntimeError(f"{errors} requests were answered with an error")
    return elapsed


def through_queue(ws_root: Path, key: str, backend: str, messages: int) -> dict[str, float]:
    url = URLS[backend] or f"sqlite:///{ws_root.parent}/bench-queue.db"
    queue = f"{os.environ.get('STRATA_BENCH_PREFIX', 'bench')}-{uuid.uuid4().hex[:8]}"
    worker = subprocess.Popen([sys.executable, "-m", "strataml", "worker", "--queue", queue, "--url", url, "--batch", "256", "-m", "bench_online",
                               "-w", str(ws_root)], env={**ENV, "STRATA_LOG_LEVEL": "warning"})
    try:
        asyncio.run(round_trip(url, queue, key, 2000))  # warm: the model loaded, the queues declared
        secs = asyncio.run(round_trip(url, queue, key, messages))
    finally:
        worker.terminate()
        worker.wait(60)
    return {"messages": messages, "seconds": round(secs, 2), "rps": messages / secs}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=40_000)
    ap.add_argument("--seconds", type=int, default=10, help="wrk duration for the HTTP baseline")
    ap.add_argument("--backends", default="sqlite,amqp")
    ap.add_argument("--append", action="store_true")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install -y wrk)")
    root = Path(tempfile.mkdtemp(prefix="strata-qbench-"))
    try:
        ws, key = make_workspace(root, 20_000)
        ws_root = ws.root  # type: ignore[attr-defined]
        ws.close()  # type: ignore[attr-defined]
        # the machine's load drifts: each queue run sits between two HTTP runs, and is compared with their mean
        res: dict[str, Any] = {"load_before": os.getloadavg()[0], "http": [http_baseline(ws_root, key, args.seconds)]}
        print(f"HTTP gateway: {res['http'][0]['rps']:,.0f} req/s", flush=True)
        for b in args.backends.split(","):
            r = through_queue(ws_root, key, b, args.messages)
            res["http"].append(http_baseline(ws_root, key, args.seconds))
            r["baseline"] = (res["http"][-2]["rps"] + res["http"][-1]["rps"]) / 2
            r["ratio"] = r["rps"] / r["baseline"]
            res[b] = r
            print(f"{b}: {r['rps']:,.0f} msg/s end to end = {r['ratio']:.0%} of the gateway around it "
                  f"({res['http'][-1]['rps']:,.0f} req/s after)", flush=True)
        res["load_after"] = os.getloadavg()[0]
        print(json.dumps(res, indent=2, default=float))
        if args.append:
            append(res, args)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def append(res: dict[str, Any], args: argparse.Namespace) -> None:
    names = {"sqlite": "SQLite queue", "amqp": "RabbitMQ", "redis": "Redis Streams", "nats": "NATS JetStream"}
    lines = [
        "",
        f"### Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"On this machine ({os.cpu_count()} cores, shared). Model: `bench_online` (100-tree LightGBM over 10 features looked up in",
        "the SQLite online store, 10,000 users, one instance per request), API-key auth and the fsync'ed prediction log in both paths.",
        f"HTTP: `strata serve` (one worker) under wrk, 16 connections, {args.seconds}s, before the first queue run and after each;",
        "a queue run is compared with the mean of the HTTP runs on either side of it.",
        f"Queue: one `strata worker --batch 256 -m bench_online`; the benchmark publishes {args.messages:,} requests in batches of 500 and",
        "receives every reply on the reply queue; throughput = messages / (first publish → last reply).",
        f"Load average (1 min) before / after the run: {res['load_before']:.1f} / {res['load_after']:.1f}.",
        "",
        "| path | throughput | HTTP gateway around it | vs HTTP gateway |",
        "|---|---|---|---|",
    ]
    for i, b in enumerate(args.backends.split(",")):
        r, h0, h1 = res[b], res["http"][i], res["http"][i + 1]
        lines.append(f"| {names[b]} + worker | {r['rps']:,.0f} msg/s ({r['seconds']} s) | {h0['rps']:,.0f} / {h1['rps']:,.0f} req/s "
                     f"| **{r['ratio']:.0%}** (target ≥ 50%) |")
    lines += ["", f"Reproduce: `PYTHONPATH=src python bench/queue_bench.py --messages {args.messages} --seconds {args.seconds} --backends {args.backends} --append`", ""]
    from record import record

    record("Queues", "\n".join(lines))


if __name__ == "__main__":
    main()
