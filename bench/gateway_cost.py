"""What one prediction costs the gateway itself, without a server or a load generator.

Drives the gateway's ASGI application in-process with 16 concurrent clients (the same
request as ``serving_bench.py``: one user whose 10 features come from the online store,
API-key auth, rate limits set high, metrics and the fsync'ed prediction log on) and
prints the CPU time per request, the minimum over ``--reps`` runs: other work on a
shared machine only ever adds to it. uvicorn's own share, the same for any app, is not
included.

``--callgrind`` runs the same measurement under valgrind's callgrind and prints the
instructions per request instead: the same figure from run to run whatever else the
machine does (to about 0.3%), so that a change of a percent can be told from noise.
Under valgrind every call is slow, so the gateway is told that its calls are quick,
keeping the path it takes on a real machine (feature lookup and model on the loop), and
its timed housekeeping (catalog change checks every 10 ms, the refresh loop) is spaced
out by the same factor, so that it falls on as few requests as on a real machine.

    PYTHONPATH=src python bench/gateway_cost.py [--requests 6000] [--reps 5] [--no-audit]
    PYTHONPATH=src python bench/gateway_cost.py --callgrind [--requests 2000]

A diagnostic for work on the gateway's request path; it records nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

MODEL = "bench_online"
CLIENTS = 16
#: how much slower a request runs under callgrind (about 12 ms against 0.23 ms)
SLOWDOWN = 50


def drive(ws_root: Path, key: str, requests: int, reps: int, audit: bool, marks: Path | None) -> list[float]:
    """CPU seconds per request of each run (``marks``: files that bracket the measured run, for callgrind)."""
    import uvloop

    import strataml as st
    from strataml.serving import GatewayConfig, create_app

    refresh_s = GatewayConfig.refresh_interval_s
    if marks is not None:
        # Under valgrind every call looks slow: keep the path a real machine takes. And a
        # request takes about 50 times as long, so work done every so many milliseconds
        # (catalog change checks, the refresh loop, a rate-limit lease's renewal) would
        # fall on many more requests: stretch it.
        from strataml.serving import _batching as batching
        from strataml.serving import _ratelimit as ratelimit
        from strataml.spine import _data_version as data_version

        batching.CallCost.quick = property(lambda self: True)  # type: ignore[assignment,method-assign]
        data_version.DataVersion.__init__.__defaults__ = (SLOWDOWN * data_version.RECHECK_NS,)
        ratelimit.RateLimiter.lease_s *= SLOWDOWN
        refresh_s *= SLOWDOWN
    ws = st.Workspace.open(ws_root)
    app = create_app(ws, config=GatewayConfig(preload=(MODEL,), rate=1e9, burst=1e9, freeze_gc=True, log_requests=False, audit=audit,
                                              refresh_interval_s=refresh_s))
    rng = random.Random(7)
    bodies = [b'{"instances": [{"user_id": "u%d"}]}' % rng.randrange(10_000) for _ in range(1000)]
    headers = [(b"host", b"bench"), (b"content-type", b"application/json"), (b"authorization", b"Bearer " + key.encode())]
    path = f"/v1/models/{MODEL}/predict"

    async def one(i: int) -> None:
        body = bodies[i % len(bodies)]
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
                 "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
                 "headers": [*headers, (b"content-length", str(len(body)).encode())], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000)}
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        status: list[int] = []

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop()
            await asyncio.Event().wait()  # the client stays connected
            raise AssertionError

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await app(scope, receive, send)
        if status != [200]:
            raise RuntimeError(f"the gateway answered {status}")

    async def clients(n: int) -> None:
        async def client(c: int) -> None:
            for i in range(n // CLIENTS):
                await one(c * 100_003 + i)

        await asyncio.gather(*(client(c) for c in range(CLIENTS)))

    async def main() -> list[float]:
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        await inbox.put({"type": "lifespan.startup"})
        lifespan = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, outbox.put))
        await outbox.get()
        await clients(3200)  # warm up: caches, the model's fast path, the log's writer
        per_request = []
        for _ in range(reps):
            if marks is not None:
                (marks / "ready").touch()
                while (marks / "ready").exists():  # the driver switches callgrind on
                    time.sleep(0.05)
            c0 = time.process_time()
            await clients(requests)
            per_request.append((time.process_time() - c0) / requests)
            if marks is not None:
                (marks / "done").touch()
                while (marks / "done").exists():
                    time.sleep(0.05)
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await lifespan
        return per_request

    return uvloop.run(main())


def callgrind(args: argparse.Namespace, ws_root: Path, key: str, tmp: Path) -> int:
    """Instructions per request: this script under callgrind, instrumented only while it measures."""
    if not shutil.which("valgrind"):
        sys.exit("valgrind is not installed (apt-get install -y valgrind)")
    out = tmp / "callgrind.out"
    cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
           sys.executable, __file__, "--workspace", str(ws_root), "--key", key, "--requests", str(args.requests),
           "--reps", "1", "--marks", str(tmp), *([] if args.audit else ["--no-audit"])]
    proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONHASHSEED": "0"}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for mark, command in (("ready", "on"), ("done", "off")):
        while not (tmp / mark).exists():
            if proc.poll() is not None:
                sys.exit(f"the measured run failed:\n{proc.stderr.read().decode() if proc.stderr else ''}")
            time.sleep(0.2)
        subprocess.run(["callgrind_control", "-i", command, str(proc.pid)], check=True, capture_output=True)
        if command == "off":
            subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True)
        (tmp / mark).unlink()
    proc.wait()
    dumps = sorted(tmp.glob("callgrind.out.*"), key=lambda p: p.stat().st_size)  # the dump taken while measuring
    totals = re.search(r"^totals:\s+(\d+)", dumps[-1].read_text(errors="replace"), re.M)
    if totals is None:
        sys.exit(f"no instruction count in {dumps[-1]}")
    return int(totals.group(1)) // int(args.requests)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=6000, help="requests per measured run")
    ap.add_argument("--reps", type=int, default=5, help="measured runs (the minimum is reported)")
    ap.add_argument("--no-audit", dest="audit", action="store_false", help="turn the prediction log off")
    ap.add_argument("--callgrind", action="store_true", help="count instructions under valgrind instead of timing")
    ap.add_argument("--workspace", type=Path, help=argparse.SUPPRESS)  # set when this script runs itself under valgrind
    ap.add_argument("--key", help=argparse.SUPPRESS)
    ap.add_argument("--marks", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.workspace is not None:  # the measured child of --callgrind
        drive(args.workspace, args.key, args.requests, args.reps, args.audit, args.marks)
        return
    from serving_bench import make_workspace

    tmp = Path(tempfile.mkdtemp(prefix="strata-cost-"))
    try:
        ws, key = make_workspace(tmp, 20_000)
        ws_root = ws.root  # type: ignore[attr-defined]
        ws.close()  # type: ignore[attr-defined]
        log = "on" if args.audit else "off"
        if args.callgrind:
            print(f"instructions per request (prediction log {log}): {callgrind(args, ws_root, key, tmp):,}")
        else:
            runs = drive(ws_root, key, args.requests, args.reps, args.audit, None)
            print(f"CPU per request (prediction log {log}): min {min(runs) * 1e6:.1f} µs over {len(runs)} runs "
                  f"({', '.join(f'{r * 1e6:.1f}' for r in runs)})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
