"""A request found pending after a worker died is looked up in the prediction log: only
whole lines of queued requests written since the pending record count."""

from __future__ import annotations

import os
import time
from pathlib import Path

import orjson

from strataml.pipelines._logged import logged_replies


def line(rid: str, instance: int, output: float, route: str = "queue") -> bytes:
    rec = {"request_id": rid, "ts": "2026-01-01T00:00:00+00:00", "instance": instance, "features": {"x": 1.0}, "output": output,
           "latency_ms": 1.0, "deployment": "fraud", "model": "fraud", "version": 3, "key_id": "k", "degraded": False, "mode": "live",
           "route": route}
    return orjson.dumps(rec) + b"\n"


def test_whole_queue_lines_written_since_count(tmp_path: Path) -> None:
    since = time.time()
    new = tmp_path / "predictions-new-0000.jsonl"
    # two instances of one request (out of order), a request over HTTP, a torn last line, then the zeros ahead of the data
    new.write_bytes(line("a", 1, 0.25) + line("a", 0, 0.75) + line("b", 0, 0.5, route="http") + line("c", 0, 0.1)[:-9] + bytes(64))
    old = tmp_path / "predictions-old-0000.jsonl"
    old.write_bytes(line("d", 0, 0.9))
    os.utime(old, (since - 3600, since - 3600))  # written long before the pending record: not read
    (tmp_path / "predictions-empty-0000.jsonl").write_bytes(b"")

    found = logged_replies(tmp_path, {"a", "b", "c", "d", "e"}, since)
    assert set(found) == {"a"}
    assert orjson.loads(found["a"]) == {"request_id": "a", "model": "fraud", "version": 3, "predictions": [0.75, 0.25], "degraded": False}
    assert set(logged_replies(tmp_path, {"d"}, since - 7200)) == {"d"}  # a pending record that old reads that file too
    assert logged_replies(tmp_path / "missing", {"a"}, since) == {}
