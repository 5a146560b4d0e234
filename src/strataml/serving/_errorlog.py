"""The durable record of requests the gateway answered with an error.

Successful predictions are in the prediction log; a request that failed (bad input,
auth, rate limit, overload, an internal error) leaves one JSON line here, so error
rates over time come from a record rather than from sampled metrics. Only the error
path writes: one ``O_APPEND`` write per failed request (whole lines, never interleaved
between processes), one file per gateway process under ``<state>/requests/``.

A line's ``kind`` says what failed: ``request``, a request answered with an error; or
``arm``, a canary or A/B arm's model version that failed on a request the gateway then
answered otherwise (its champion, a fallback). An arm failure counts against its
version, not against the deployment's answered requests. Lines written before kinds
existed read as requests.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Literal

import orjson

from strataml.spine import quote_literal

COLUMNS = {"request_id": "VARCHAR", "ts": "TIMESTAMPTZ", "scope": "VARCHAR", "model": "VARCHAR",
           "version": "VARCHAR", "status": "INTEGER", "error": "VARCHAR", "kind": "VARCHAR"}

#: the kinds of failure a line records (see the module's text)
Kind = Literal["request", "arm"]


def error_log_dir(state_dir: Path) -> Path:
    """Where a workspace's failed-request log lives."""
    return state_dir / "requests"


class ErrorLog:
    """Appends one line per failed request (opened on the first error)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._fd: int | None = None

    def record(self, request_id: str, scope: str | None, labels: dict[str, str], status: int, error: str, kind: Kind = "request") -> None:
        """Append the failure; never raises (a full disk must not turn an error into a crash)."""
        try:
            if self._fd is None:
                self.directory.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.directory / f"errors-{os.getpid()}.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            line = orjson.dumps({"request_id": request_id, "ts": dt.datetime.now(dt.UTC).isoformat(), "scope": scope,
                                 "model": labels.get("model", "-"), "version": labels.get("version", "-"), "status": status,
                                 "error": error, "kind": kind}, option=orjson.OPT_APPEND_NEWLINE)
            os.write(self._fd, line)
        except OSError:
            pass

    def close(self) -> None:
        """Close the file."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def error_log_sql(directory: Path) -> str:
    """A DuckDB table expression over the failed-request log (torn lines skipped)."""
    cols = "{" + ", ".join(f"'{k}': '{v}'" for k, v in COLUMNS.items()) + "}"
    glob = quote_literal(str(directory / "*.jsonl"))
    return f"(SELECT * FROM read_json({glob}, format='newline_delimited', ignore_errors=true, columns={cols}) WHERE request_id IS NOT NULL)"
