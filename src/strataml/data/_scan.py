"""What a source is (:class:`SourceSpec`) and what opening it registered (:class:`Scan`),
with the checks every reader shares: headers that name a column twice, sources too wide
to read, and lines too long for the engine's reader (found apart from it, so none is lost).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import duckdb
from pyarrow.lib import ArrowException

from strataml.data._records import compressed
from strataml.errors import SourceError
from strataml.spine import quote_literal

if TYPE_CHECKING:
    from strataml.data._records import RecordCount

#: DuckDB's CSV reader skips, without a reject or an error, a line longer than its read
#: buffer (32 MiB): such lines are found by :func:`long_lines` and quarantined here.
_READER_BUFFER = 32 * 1024 * 1024
#: a longer line is quarantined as a parse error, whatever the format (DuckDB's default)
_MAX_LINE = 2 * 1024 * 1024
#: the longest JSON Lines line read (longer ones make the reader fail: refused up front)
_JSON_LINE_MAX = 64 * 1024 * 1024
#: a source with more columns than this is refused before the engine runs out of memory
MAX_COLUMNS = 2000
_SQL_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "mssql", "oracle", "duckdb")
_REMOTE_SCHEMES = ("s3", "s3a", "gs", "gcs", "az", "abfs", "memory")


@dataclass
class SourceSpec:
    """Where to read from and how.

    ``format`` overrides detection by extension; ``delimiter`` and ``encoding`` apply to
    CSV; ``query`` is required for a database URL.
    """

    uri: str
    format: str | None = None
    query: str | None = None
    delimiter: str | None = None
    encoding: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """``file``, ``sql`` or ``http``."""
        scheme = (
            self.uri.split("://", 1)[0].split("+", 1)[0].lower() if "://" in self.uri else "file"
        )
        if scheme in ("http", "https"):
            return "http"
        if scheme in _SQL_SCHEMES:
            return "sql"
        if scheme in ("file", *_REMOTE_SCHEMES):
            return "file"
        raise SourceError(
            f"unsupported source scheme {scheme!r} in {self.display}",
            hint="use a file path or glob, an fsspec URL (s3://…), a database URL with --query, or an http(s):// URL",
        )

    @property
    def display(self) -> str:
        """The URI with any password hidden (for reports, lineage and logs)."""
        if "://" in self.uri and "@" in self.uri.split("://", 1)[1].split("/", 1)[0]:
            scheme, rest = self.uri.split("://", 1)
            creds, host = rest.split("@", 1)
            user = creds.split(":", 1)[0]
            return f"{scheme}://{user}:***@{host}" if ":" in creds else self.uri
        return self.uri


@dataclass(frozen=True)
class CsvDialect:
    """How a CSV file is written: separators and the header's column names."""

    delim: str
    quote: str
    escape: str
    columns: list[str]


@dataclass
class Scan:
    """What a source registered: its columns and whether they are raw text."""

    columns: list[str]
    text: bool
    files: list[str]
    cleanup: list[str] = field(default_factory=list)
    csv: bool = False
    dialect: CsvDialect | None = None
    common: list[str] = field(default_factory=list)
    #: lines the reader skips unreported: (file, line number, length in bytes, first bytes)
    skipped: list[tuple[str, int, int, str]] = field(default_factory=list)
    #: the number of records in the source, counted without the reader (None when unknown)
    expected: int | None = None
    #: for a streamed source: how many records it yielded so far
    streamed: Callable[[], int] | None = None
    #: for local CSV files: their records, being counted meanwhile
    counting: RecordCount | None = None

    def source_rows(self, read: int) -> int | None:
        """The records in the source as counted apart from the engine (None when unknown),
        which read ``read`` (see :mod:`strataml.data._records` for the two counts)."""
        if self.counting is not None:
            try:
                return self.counting.records(read)
            except ArrowException:
                return None  # a record too long for the counter's block: long_lines covers it
        return self.streamed() if self.streamed is not None else self.expected

    def finish(self, con: duckdb.DuckDBPyConnection) -> None:
        """Call once ``_src`` has been scanned: CSV rejects are known only then."""
        if self.csv:
            _finish_csv_rejects(con, self.skipped)

    def close(self) -> None:
        """Remove temporary files the source created."""
        for path in self.cleanup:
            with contextlib.suppress(OSError):
                os.unlink(path)


def _finish_csv_rejects(
    con: duckdb.DuckDBPyConnection, skipped: list[tuple[str, int, int, str]]
) -> None:
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _skipped (file VARCHAR, line BIGINT, raw VARCHAR, error VARCHAR)"
    )
    if skipped:
        con.executemany(
            "INSERT INTO _skipped VALUES (?, ?, ?, ?)",
            [
                [
                    f,
                    n,
                    head + "…",
                    f"LINE SIZE OVER MAXIMUM: the line is {size:,} bytes, longer than the reader's {_READER_BUFFER:,}",
                ]
                for f, n, size, head in skipped
            ],
        )
    try:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _rej_lines AS SELECT s.file_path AS file, r.line, r.error_type, r.csv_line, r.error_message "
            "FROM _rej r JOIN _rej_scan s USING (scan_id, file_id)"
        )
        reader = (
            "SELECT min(line)::BIGINT AS line, any_value(csv_line) AS raw, "
            "string_agg(DISTINCT error_type || ': ' || error_message, '; ') AS error FROM _rej_lines GROUP BY file, line "
            "HAVING NOT bool_and(error_type = 'CAST')"
        )
        # a line the reader did report is not counted twice
        unreported = "WHERE NOT EXISTS (SELECT 1 FROM _rej_lines r WHERE r.file = k.file AND r.line = k.line)"
    except duckdb.Error:
        reader = (
            "SELECT NULL::BIGINT AS line, NULL::VARCHAR AS raw, NULL::VARCHAR AS error WHERE false"
        )
        unreported = ""
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW _src_rejects AS {reader} UNION ALL SELECT line, raw, error FROM _skipped k {unreported}"
    )


def long_lines(path: str, limit: int) -> list[tuple[int, int, str]]:
    """The physical lines of a local file longer than ``limit`` bytes: (line number, length, first characters).

    Counted without the engine's reader (which may skip such a line unreported). A window
    of ``limit`` bytes after each newline is searched backwards for the next one, so only
    a few pages per window are read: the scan costs little even for large files.
    """
    import mmap

    if "://" in path or compressed(path) or os.path.getsize(path) <= limit:
        return []
    hits: list[tuple[int, int, str]] = []
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        size = len(mm)
        start = 0  # where the current line starts
        counted, newlines = 0, 0  # newlines before `counted`
        while size - start > limit:
            end = mm.rfind(b"\n", start, start + limit + 1)
            if end != -1:
                start = end + 1
                continue
            end = mm.find(b"\n", start + limit + 1)
            end = size if end == -1 else end
            for at in range(counted, start, 1 << 24):
                newlines += mm[at : min(start, at + (1 << 24))].count(b"\n")
            counted = start
            length = end - start - (1 if end > start and mm[end - 1 : end] == b"\r" else 0)
            hits.append((newlines + 1, length, mm[start : start + 200].decode("utf-8", "replace")))
            start = end + 1
    return hits


def check_header(path: str, columns: list[str]) -> None:
    """Refuse a header that names a column twice (a reader would rename or drop one)."""
    seen: dict[str, int] = {}
    for i, name in enumerate(columns, 1):
        if name in seen:
            raise SourceError(
                f"{path} names column {name!r} twice (columns {seen[name]} and {i} of its header)",
                hint="rename one of them in the file; no column is ever dropped unannounced",
            )
        seen[name] = i


def check_width(path: str, columns: list[str]) -> None:
    """Refuse a source wider than :data:`MAX_COLUMNS` before its rows are read."""
    if len(columns) > MAX_COLUMNS:
        raise SourceError(
            f"{path} has {len(columns):,} columns; at most {MAX_COLUMNS:,} are supported",
            hint="select the columns the contract needs into a narrower file (or a Parquet file) and ingest that",
        )


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]


def _file_list(files: list[str]) -> str:
    return "[" + ", ".join(quote_literal(f) for f in files) + "]"
