"""Chapter 6: the champion behind the HTTP gateway, with traffic whose distribution shifts midway."""

from __future__ import annotations

from typing import Any

import strataml as st
from strataml.demo._show import console


def start_gateway(app: Any, port: int = 0) -> tuple[Any, Any, int]:
    """Run an ASGI app with uvicorn on loopback in a thread; returns (server, thread, port)."""
    import socket
    import threading
    import time

    import uvicorn

    if not port:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    return server, thread, port


def shifted(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The second half of the demo's traffic: amounts three times larger, a country never seen in training."""
    return [{**r, "amount": float(r["amount"]) * 3.0, "country": "JP" if i % 3 == 0 else r["country"]} for i, r in enumerate(rows)]


def demo_serving(ws: st.Workspace) -> tuple[list[tuple[str, int]], str, list[dict[str, Any]], list[int]]:
    """Serve the champion on a free loopback port and send real HTTP traffic whose distribution shifts midway.

    Returns the request id and true label of each prediction of the first half (their labels
    arrive later, in :func:`demo_monitoring`), the key, the shifted rows (for the queue and the
    loop) and the labels of the rows they were made from."""
    import asyncio
    import time

    import httpx

    console.print("\n[bold]6. serving[/] the fraud champion behind the gateway (auth, rate limits, audit log, metrics)")
    key_rec, key = st.create_key(ws.catalog, ["predict:fraud"], name="demo")
    st.set_traffic(ws.catalog, "fraud", {"rate": 2000, "burst": 2000, "default": 0.0}, reason="demo launch")
    server, thread, port = start_gateway(st.create_app(ws))
    base = f"http://127.0.0.1:{port}"
    firsts: list[tuple[str, int]] = []
    later: list[dict[str, Any]] = []
    try:
        model = ws.definitions.get("model", "fraud")
        fields = (["user_id"] if model.features else []) + list(model.columns)
        labelled = st.dataset(model.labels, ws).to_arrow().slice(0, 300)  # the model's own labelled rows
        rows = labelled.select(fields).to_pylist()
        truth = labelled["is_fraud"].to_pylist()
        half = len(rows) // 2
        headers = {"authorization": f"Bearer {key}"}

        async def traffic(batch: list[dict[str, Any]]) -> list[tuple[int, str]]:
            limits = httpx.Limits(max_connections=8)
            async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=10) as client:
                sem = asyncio.Semaphore(8)

                async def one(row: dict[str, Any]) -> tuple[int, str]:
                    async with sem:
                        r = await client.post("/v1/models/fraud/predict", json={"instances": [row]})
                        return r.status_code, (r.json().get("request_id", "") if r.status_code == 200 else "")

                return list(await asyncio.gather(*(one(r) for r in batch)))

        t0 = time.perf_counter()
        before = asyncio.run(traffic(rows[:half]))
        later = shifted(rows[half:])
        after = asyncio.run(traffic(later))
        took = time.perf_counter() - t0
        codes = [c for c, _ in before + after]
        firsts = [(rid, int(y)) for (c, rid), y in zip(before, truth[:half], strict=True) if c == 200]
        console.print(f"sent {len(codes)} predictions over 8 connections in {took:.2f}s: " + ", ".join(f"{c}: {codes.count(c)}" for c in sorted(set(codes))))
        console.print(f"midway the traffic shifts: the last {len(after)} have amounts three times larger and a third come from JP, a country training never saw")
        sample = httpx.post(f"{base}/v1/models/fraud/predict", json={"instances": rows[:3]}, headers=headers).json()
        console.print(f"POST /v1/models/fraud/predict → v{sample['version']}: " + ", ".join(f"{p:.3f}" for p in sample["predictions"]) + f"  (request {sample['request_id'][:12]}…)")
        anon = httpx.post(f"{base}/v1/models/fraud/predict", json={"instances": rows[:1]})
        bad = httpx.post(f"{base}/v1/models/fraud/predict", json={"instances": [{**rows[0], "amount": "lots"}]}, headers=headers)
        console.print(f"without a key → {anon.status_code}; amount as text → {bad.status_code}: {bad.json()['error']['message']}")
        metrics = [ln for ln in httpx.get(f"{base}/metrics").text.splitlines() if ln.startswith("strata_requests_total")]
        console.print("metrics: " + "; ".join(metrics[:3]))
        console.print(f"key {key_rec.id} (predict:fraud)")
    finally:
        server.should_exit = True
        thread.join(30)
    return firsts, key, later, [int(y) for y in truth[len(truth) - len(later):]]


def serve_forever(ws: st.Workspace, port: int) -> None:
    """Keep the gateway with the dashboard at /ui, and the scheduler, running until Ctrl-C or SIGTERM."""
    import threading

    import uvicorn

    _, key = st.create_key(ws.catalog, ["read"], name="demo-dashboard")
    app = st.create_app(ws, mounts=st.dashboard_mounts(ws))
    scheduler = st.Scheduler(ws)
    beat = threading.Thread(target=scheduler.run, name="demo-scheduler", daemon=True)
    beat.start()
    console.print(f"\n[bold]dashboard[/] http://127.0.0.1:{port}/ui  log in with the key (scope read):\n{key}")
    console.print("the gateway and the scheduler keep running; Ctrl-C or SIGTERM stops them", highlight=False)
    try:
        uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)).run()
    finally:
        scheduler.stop()
        beat.join(60)
