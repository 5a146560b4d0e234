"""``strata queue dlq list|replay|drop`` on the workspace's SQLite queue, as a user runs them."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

from strataml.spine import open_queue


def run(python: str, env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([python, "-m", "strataml", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def poison(url: str, queue: str, ids: list[str]) -> None:
    async def go() -> None:
        q = open_queue(url, max_deliveries=1)
        for i in ids:
            await q.publish(queue, f"body-{i}".encode(), id=i)
        for d in await q.fetch(queue, len(ids), wait=1):
            await q.reject(d, f"cannot handle {d.id}")
        await q.close()

    asyncio.run(go())


def test_dlq_list_replay_drop(tmp_path: Path, python: str, cli_env: dict[str, str]) -> None:
    assert run(python, cli_env, "init", str(tmp_path / "ws"), cwd=tmp_path).returncode == 0
    ws = tmp_path / "ws"
    url = f"sqlite:///{ws.resolve()}/.strata/queue.db"
    poison(url, "jobs", ["a", "b", "c"])

    r = run(python, cli_env, "queue", "dlq", "list", "jobs", "--json", cwd=ws)
    assert r.returncode == 0, r.stderr
    listed = json.loads(r.stdout)
    assert [(d["id"], d["attempts"], d["error"], d["body"]) for d in listed] == [
        ("a", 1, "cannot handle a", "body-a"), ("b", 1, "cannot handle b", "body-b"), ("c", 1, "cannot handle c", "body-c")]
    human = run(python, cli_env, "queue", "dlq", "list", "jobs", cwd=ws)
    assert "cannot handle b" in human.stdout

    refused = run(python, cli_env, "queue", "dlq", "drop", "jobs", cwd=ws)
    assert refused.returncode != 0 and "--all" in refused.stderr  # nothing named: nothing dropped
    r = run(python, cli_env, "queue", "dlq", "replay", "jobs", "--id", "a", "--json", cwd=ws)
    assert json.loads(r.stdout) == {"queue": "jobs", "replayed": 1}
    r = run(python, cli_env, "queue", "dlq", "drop", "jobs", "--id", "b", "--json", cwd=ws)
    assert json.loads(r.stdout) == {"queue": "jobs", "dropped": 1}
    assert [d["id"] for d in json.loads(run(python, cli_env, "queue", "dlq", "list", "jobs", "--json", cwd=ws).stdout)] == ["c"]

    async def replayed() -> list[tuple[str, int]]:
        q = open_queue(url)
        got = await q.fetch("jobs", 10, wait=0)
        await q.close()
        return [(d.id, d.attempts) for d in got]

    assert asyncio.run(replayed()) == [("a", 1)]
    bad = run(python, cli_env, "queue", "dlq", "list", "no/such", cwd=ws)
    assert bad.returncode == 2 and "invalid queue name" in bad.stderr
