"""Replies recovered from the prediction log, for requests a worker died handling.

A scoring request is recorded as ``pending`` in the ledger before its prediction goes to
the log. When a redelivered request is found pending, the worker that had it died
somewhere between the two: if the log holds the request's lines (written whole, in one
flushed append), the prediction took effect and its reply is rebuilt from them; if not,
it never did and the request is handled afresh. Only log files written since the
pending record was made can hold the lines, so only those are read.
"""

from __future__ import annotations

import mmap
import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

import orjson

#: a complete log line of a request (lines start with the request id; a torn last line has no newline)
_LINE = re.compile(rb'^\{"request_id":"([^"\n]{1,200})"[^\n]*\n', re.MULTILINE)
#: modification times are coarse on some file systems, and clocks step: read files a little older too
_SLACK_S = 2.0


def logged_replies(directory: Path, ids: Collection[str], since: float) -> dict[str, bytes]:
    """The replies of those of ``ids`` whose predictions the log under ``directory`` holds,
    reading the files written at ``since`` (seconds since the epoch) or later."""
    wanted = {i.encode() for i in ids}
    lines: dict[str, list[dict[str, Any]]] = {}
    if not wanted or not directory.is_dir():
        return {}
    for path in sorted(directory.glob("*.jsonl")):
        try:
            if path.stat().st_mtime < since - _SLACK_S:
                continue
            with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                for m in _LINE.finditer(mm):  # type: ignore[call-overload]
                    if m.group(1) in wanted:
                        try:
                            rec = orjson.loads(m.group(0))
                        except orjson.JSONDecodeError:
                            continue
                        if rec.get("route") == "queue":
                            lines.setdefault(rec["request_id"], []).append(rec)
        except (FileNotFoundError, ValueError):  # rotated away, or empty (mmap refuses empty files)
            continue
    return {rid: _reply(rid, recs) for rid, recs in lines.items()}


def _reply(request_id: str, records: list[dict[str, Any]]) -> bytes:
    """The reply the worker sent (or meant to) for the request these log lines record."""
    by_instance = {r.get("instance", 0): r for r in records}  # a line found twice counts once
    records = [by_instance[i] for i in sorted(by_instance)]
    first = records[0]
    out: dict[str, Any] = {
        "request_id": request_id,
        "model": first["model"],
        "version": first["version"],
        "predictions": [r["output"] for r in records],
        "degraded": bool(first.get("degraded")),
    }
    if out["degraded"]:
        out["fallback"] = None  # how the fallback answered is not in the log
    return orjson.dumps(out)
