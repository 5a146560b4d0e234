"""Chapter 6b: asynchronous scoring through a durable queue, on the gateway's own path."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import orjson

import strataml as st
from strataml.demo._show import console


def demo_queue(ws: st.Workspace, key: str, rows: list[dict[str, Any]]) -> list[str]:
    """Publish scoring requests to the embedded SQLite queue, let a worker answer them and read the replies.

    Returns the request ids answered (each one logged in the prediction log with route ``queue``)."""
    url = f"sqlite:///{ws.state_dir / 'demo-queue.db'}"
    console.print(
        f"\n[bold]6b. queue[/] {len(rows)} scoring requests through a durable queue ({url.split(':///')[0]}), "
        "answered by a worker on the gateway's path (auth, features, prediction log)"
    )
    messages = [
        st.Outgoing(orjson.dumps({"model": "fraud", "instances": [row]}), uuid.uuid4().hex, {"authorization": f"Bearer {key}"})
        for row in rows
    ]

    async def go() -> tuple[list[dict[str, Any]], float]:
        q = st.open_queue(url)
        t0 = time.perf_counter()
        await q.publish_many("fraud-requests", messages)
        worker = st.Worker(ws, st.open_queue(url), st.WorkerConfig(queue="fraud-requests", idle_exit_s=0.3, audit_fsync=False))
        try:
            await worker.run()
        finally:
            await worker.close()
        replies: list[dict[str, Any]] = []
        while got := await q.fetch("fraud-requests-results", 500, wait=0.2):
            replies += [orjson.loads(d.body) for d in got]
            await q.ack(got)
        await q.close()
        return replies, time.perf_counter() - t0

    replies, took = asyncio.run(go())
    answered = [r for r in replies if "predictions" in r]
    versions = sorted({r["version"] for r in answered})
    console.print(
        f"{len(answered)}/{len(messages)} answered in {took:.2f}s (publish → worker → reply queue) by "
        + ", ".join(f"v{v}" for v in versions)
        + f"; errors: {len(replies) - len(answered)}"
    )
    return [r["request_id"] for r in answered]
